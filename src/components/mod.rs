//! The UI, one component per file.

mod chat_room;
mod connection_status;
mod join_form;
mod message_input;
mod message_list;
mod room_list;
mod typing_indicator;
mod user_list;

pub use chat_room::ChatRoom;
pub use connection_status::ConnectionStatus;
pub use join_form::JoinForm;
pub use message_input::MessageInput;
pub use message_list::MessageList;
pub use room_list::RoomList;
pub use typing_indicator::TypingIndicator;
pub use user_list::UserList;
