//! The page shell (server-rendered once per request) and the component tree.

use crate::{
    client::{location, session},
    components::{ChatRoom, JoinForm},
};
use leptos::prelude::*;
use leptos_meta::HashedStylesheet;

/// The HTML document around the app. Only the server renders this, so the
/// head is plain markup: the page has one title, and keeping leptos_meta's
/// reactive head out of the component tree keeps it out of the WASM.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
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

/// One page, and a 404 for every other path (the server's fallback sets
/// the status). No router: leptos_router was 43 KB of a 181 KB brotli
/// bundle for a single route.
#[component]
pub fn App() -> impl IntoView {
    if location::current_path() == "/" {
        view! { <Home/> }.into_any()
    } else {
        view! { <NotFound/> }.into_any()
    }
}

/// The join screen until this tab has a name, the chat after.
#[component]
fn Home() -> impl IntoView {
    // `None` on the server and at hydration, so both render the join form;
    // the effect below then rejoins with the name this tab used before.
    let username = RwSignal::new(None::<String>);
    let join_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(name) = session::load() {
            username.set(Some(name));
        }
    });

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

    move || match username.get() {
        Some(name) => view! { <ChatRoom name on_leave=leave/> }.into_any(),
        None => view! { <JoinForm on_join=join error=join_error/> }.into_any(),
    }
}

#[component]
fn NotFound() -> impl IntoView {
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
