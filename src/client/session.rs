//! The tab's username, so a reload rejoins as the same person.
//!
//! Kept in `sessionStorage`: per tab (two tabs can be two users) and gone
//! when the tab closes. The join form also works before the WASM has loaded,
//! as a plain GET to `/?name=NAME`; that name is taken over here and removed
//! from the address bar, so the URL never becomes a shareable "log in as".

use leptos::prelude::window;

const KEY: &str = "banter.username";
const QUERY_PARAM: &str = "name";

fn storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

/// The name this tab joined with, if any.
pub fn load() -> Option<String> {
    if let Some(name) = take_from_url() {
        save(&name);
        return Some(name);
    }
    storage()?.get_item(KEY).ok().flatten()
}

pub fn save(name: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(KEY, name);
    }
}

pub fn clear() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(KEY);
    }
}

fn take_from_url() -> Option<String> {
    let location = window().location();
    let params = web_sys::UrlSearchParams::new_with_str(&location.search().ok()?).ok()?;
    let name = params.get(QUERY_PARAM)?;
    params.delete(QUERY_PARAM);
    let query = String::from(params.to_string());
    let path = location.pathname().ok()?;
    let url = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
    Some(name)
}
