//! Who is online.

use std::collections::BTreeSet;

use leptos::prelude::*;

#[component]
pub fn UserList(users: RwSignal<BTreeSet<String>>, me: String) -> impl IntoView {
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

/// First letter, upper-cased, for the avatar bubble.
fn initial(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}
