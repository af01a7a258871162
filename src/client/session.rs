//! What this tab remembers: its username, so a reload rejoins as the same
//! person, and the server's access token, if it needs one.
//!
//! Kept in `sessionStorage`: per tab (two tabs can be two users) and gone
//! when the tab closes. Both arrive in the page's own URL and are taken out
//! of the address bar:
//! - The join form also works before the WASM has loaded, as a plain GET to
//!   `/?name=NAME`; that name is taken over here, so the URL never becomes a
//!   shareable "log in as".
//! - `?accessToken=T` is the link a server's owner hands out. A script in
//!   the page's head ([`take_token_script`]) moves it into storage before
//!   anything else runs: the secret is out of the address bar (history,
//!   bookmarks, screenshots) while the WASM is still loading, and a join
//!   form sent before then (a GET, which replaces the query) cannot lose it.
//!   Its few bytes of JavaScript also cost the WASM budget nothing.

use leptos::prelude::window;

use crate::protocol::ACCESS_TOKEN_PARAM;

const KEY: &str = "banter.username";
const QUERY_PARAM: &str = "name";
/// Where the access token is kept.
const TOKEN_KEY: &str = "banter.accessToken";

fn storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

/// The name this tab joined with, if any.
pub(crate) fn load() -> Option<String> {
    if let Some(name) = take_from_url() {
        save(&name);
        return Some(name);
    }
    storage()?.get_item(KEY).ok().flatten()
}

/// The access token this tab was given, if any.
pub(crate) fn access_token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok().flatten()
}

/// `url` (this server's, relative, perhaps with a query already) with the
/// access token added as a query parameter, if this tab has one.
pub(crate) fn with_access_token(mut url: String) -> String {
    if let Some(token) = access_token() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(ACCESS_TOKEN_PARAM);
        url.push('=');
        url.push_str(&String::from(js_sys::encode_uri_component(&token)));
    }
    url
}

pub(crate) fn save(name: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(KEY, name);
    }
}

pub(crate) fn clear() {
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

/// The head script that moves `?accessToken=` from the address bar into
/// `sessionStorage` (keeping the path, the other parameters and the
/// fragment, without a new history entry). An empty token is dropped from
/// the URL but not stored. Rendered by the server only.
#[cfg(feature = "ssr")]
pub(crate) fn take_token_script() -> String {
    format!(
        "try{{var u=new URL(location.href),t=u.searchParams.get('{ACCESS_TOKEN_PARAM}');\
         if(t!==null){{if(t)sessionStorage.setItem('{TOKEN_KEY}',t);\
         u.searchParams.delete('{ACCESS_TOKEN_PARAM}');\
         history.replaceState(history.state,'',u.pathname+u.search+u.hash)}}}}catch(e){{}}"
    )
}
