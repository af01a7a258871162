//! The rooms: those with people in them, then those with recent messages,
//! and a field to join or create one by name.

use std::{collections::BTreeSet, time::Duration};

use leptos::{ev::SubmitEvent, html, prelude::*, task::spawn_local};

use crate::{
    client::{
        location::room_path,
        rooms_api::{ListedRoom, fetch_rooms},
    },
    protocol::{MAX_ROOM_CHARS, parse_room},
};

/// How often the list is refreshed while the page is open.
const REFRESH: Duration = Duration::from_secs(15);

#[component]
pub(crate) fn RoomList(
    current: String,
    /// Who is in the current room right now, known live from its socket
    /// (the fetched list may be seconds old).
    here: RwSignal<BTreeSet<String>>,
    #[prop(into)] on_switch: Callback<String>,
) -> impl IntoView {
    let rooms = RwSignal::new(Vec::<ListedRoom>::new());
    let error = RwSignal::new(None::<String>);
    let refresh = move || {
        spawn_local(async move {
            if let Some(list) = fetch_rooms().await {
                rooms.try_set(list);
            }
        });
    };
    // At once, not in an effect: the chat (and so this list) only ever
    // renders in the browser, after hydration (the ticker below relies on
    // that too), and an effect that tracks nothing cost ~250 B of brotli.
    refresh();
    if let Ok(ticker) = set_interval_with_handle(refresh, REFRESH) {
        on_cleanup(move || ticker.clear());
    }

    let current = StoredValue::new(current);
    // The current room is listed even before anyone has written in it,
    // with its live head count.
    let shown = move || {
        let mut list = rooms.get();
        let online = here.with(|users| users.len());
        current.with_value(
            |current| match list.iter_mut().find(|r| r.name == *current) {
                Some(room) => room.online = online,
                None => list.insert(
                    0,
                    ListedRoom {
                        name: current.clone(),
                        online,
                    },
                ),
            },
        );
        list
    };

    let input: NodeRef<html::Input> = NodeRef::new();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(field) = input.get() else { return };
        match parse_room(field.value().trim()) {
            Ok(room) => {
                error.set(None);
                field.set_value("");
                on_switch.run(room);
            }
            Err(err) => error.set(Some(err.to_string())),
        }
    };

    view! {
        <nav class="rooms" aria-labelledby="rooms-heading">
            <h2 id="rooms-heading">"Rooms"</h2>
            <ul data-testid="room-list">
                // Rebuilt whole on change rather than keyed: a few dozen rows
                // refreshed every 15 s do not need <For>'s diffing, and
                // leaving it out keeps kilobytes out of the WASM.
                {move || shown().into_iter().map(|room| {
                    let is_current = current.with_value(|c| *c == room.name);
                    let name = room.name.clone();
                    let go = move |ev: leptos::ev::MouseEvent| {
                        // Plain clicks switch in place; modified clicks
                        // (new tab, new window) keep the browser's way.
                        if !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0) {
                            ev.prevent_default();
                            on_switch.run(name.clone());
                        }
                    };
                    view! {
                        <li class:current=is_current>
                            <a href=room_path(&room.name) on:click=go
                                aria-current=if is_current { Some("page") } else { None }>
                                "#" {room.name.clone()}
                            </a>
                            {(room.online > 0).then(|| view! {
                                <span class="online" title="online">{room.online}</span>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="room-form" on:submit=submit>
                <input node_ref=input type="text" aria-label="Join or create a room"
                    placeholder="Go to room…" maxlength=MAX_ROOM_CHARS autocomplete="off"/>
            </form>
            <p class="room-error" role="alert">{move || error.get()}</p>
        </nav>
    }
}
