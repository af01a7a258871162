//! The UI, one component per file.

mod chat_room;
mod connection_status;
mod join_form;
mod message_input;
mod message_list;
mod room_list;
mod typing_indicator;
mod user_list;

pub(crate) use chat_room::ChatRoom;
pub(crate) use connection_status::ConnectionStatus;
pub(crate) use join_form::JoinForm;
pub(crate) use message_input::MessageInput;
pub(crate) use message_list::MessageList;
pub(crate) use room_list::RoomList;
pub(crate) use typing_indicator::TypingIndicator;
pub(crate) use user_list::UserList;
