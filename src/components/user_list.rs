//! Who is online.

use std::collections::BTreeSet;

use leptos::prelude::*;

#[component]
pub(crate) fn UserList(users: RwSignal<BTreeSet<String>>, me: String) -> impl IntoView {
    let me = StoredValue::new(me);
    view! {
        <aside class="users" aria-labelledby="users-heading">
            <h2 id="users-heading">
                "Online " <span class="count" data-testid="user-count">{move || users.with(|u| u.len())}</span>
            </h2>
            <ul data-testid="user-list">
                <For
                    each=move || users.get()
                    key=|name| name.clone()
                    children=move |name| {
                        let is_me = me.with_value(|me| *me == name);
                        view! {
                            <li class:me=is_me>
                                <span class="avatar" aria-hidden="true">{initial(&name)}</span>
                                <span class="name">{name}</span>
                                {is_me.then_some(view! { <span class="you">" (you)"</span> })}
                            </li>
                        }
                    }
                />
            </ul>
        </aside>
    }
}

/// First letter, for the avatar bubble. The stylesheet upper-cases it:
/// Rust's `char::to_uppercase` would bring Unicode's case tables (1.4 KB of
/// brotli) into the WASM for a cosmetic touch.
fn initial(name: &str) -> String {
    name.chars().next().map(String::from).unwrap_or_default()
}
