//! The page shell (server-rendered once per request) and the component tree.

use crate::{
    client::{
        location::{self, Page},
        session,
    },
    components::{ChatRoom, JoinForm},
};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos_meta::HashedStylesheet;

/// The HTML document around the app. Only the server renders this, so the
/// head is plain markup: the page has one title, and keeping leptos_meta's
/// reactive head out of the component tree keeps it out of the WASM.
#[cfg(feature = "ssr")]
pub(crate) fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                // First, so the access token leaves the address bar at once.
                <script inner_html=session::take_token_script()></script>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"Banter"</title>
                <meta name="description" content="Banter: real-time chat"/>
                <meta name="theme-color" content="#4f46e5"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options=options.clone()/>
                <HashedStylesheet options id="leptos"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// A room's page (`/` or `/r/ROOM`), and a 404 for every other path. No
/// router: leptos_router was 43 KB of a 181 KB brotli bundle for what is
/// one pattern, matched in [`location::page_for`].
#[component]
pub(crate) fn App() -> impl IntoView {
    match location::page_for(&location::current_path()) {
        Page::Room(room) => view! { <Home room/> }.into_any(),
        Page::NotFound => view! { <NotFound/> }.into_any(),
    }
}

/// The join screen until this tab has a name, then the chat in `room`;
/// switching rooms changes the address without reloading the page.
#[component]
fn Home(room: String) -> impl IntoView {
    // `None` on the server and at hydration, so both render the join form;
    // the effect below then rejoins with the name this tab used before.
    let username = RwSignal::new(None::<String>);
    let join_error = RwSignal::new(None::<String>);
    let room = RwSignal::new(room);
    Effect::new(move |_| {
        if let Some(name) = session::load() {
            username.set(Some(name));
        }
    });
    // Back and forward move between rooms too.
    let popstate = window_event_listener(leptos::ev::popstate, move |_| {
        if let Page::Room(to) = location::page_for(&location::current_path()) {
            room.set(to);
        }
    });
    on_cleanup(move || popstate.remove());

    let join = move |name: String| {
        session::save(&name);
        join_error.set(None);
        username.set(Some(name));
    };
    let leave = move |refusal: Option<String>| {
        session::clear();
        join_error.set(refusal);
        username.set(None);
    };
    let switch = move |to: String| {
        if to != room.get_untracked() {
            location::push_room(&to);
            room.set(to);
        }
    };

    move || match username.get() {
        Some(name) => {
            let room = room.get();
            view! { <ChatRoom name room on_leave=leave on_switch=switch/> }.into_any()
        }
        None => view! { <JoinForm on_join=join error=join_error/> }.into_any(),
    }
}

#[component]
fn NotFound() -> impl IntoView {
    location::mark_not_found();
    view! {
        <main class="join">
            <div class="card">
                <h1 class="brand">"Banter"</h1>
                <p>"There is nothing at this address."</p>
                <a href="/">"Go to the chat"</a>
            </div>
        </main>
    }
}
