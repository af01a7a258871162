//! Which page is being rendered.

/// The path of the page: from the request while the server renders it,
/// from the address bar in the browser. Both halves must agree, or
/// hydration would attach to the wrong page.
pub fn current_path() -> String {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<axum::http::request::Parts>()
            .map(|parts| parts.uri.path().to_owned())
            .unwrap_or_else(|| "/".to_owned())
    }
    #[cfg(not(feature = "ssr"))]
    {
        leptos::prelude::window()
            .location()
            .pathname()
            .unwrap_or_else(|_| "/".to_owned())
    }
}
