//! Who may open a socket: the Origin check and the shared-secret tokens.
//!
//! Both are answered with an HTTP status *before* the upgrade. A browser
//! cannot read that answer from its `WebSocket` (it only sees code 1006), so
//! the page asks again with a plain `fetch` of the same URL, which gets the
//! same status and sentence: 426 then means the server would have taken it.
//!
//! # Why check Origin
//!
//! A WebSocket is not subject to the same-origin policy: any page the user
//! visits may open one to Banter, and the browser attaches Banter's cookies
//! and, with a token in the page's own storage out of reach, nothing else.
//! Refusing foreign origins stops such a page from chatting in the user's
//! name (cross-site WebSocket hijacking). Requests without an Origin header
//! are not from a browser page and are allowed: the tutorial's clients,
//! bots, the benchmark.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

pub(crate) use super::refusal::Refusal;
use crate::server::config::AccessSettings;

/// The header the Deno tutorial's clients may use instead of Authorization.
const TOKEN_HEADER: &str = "x-ws-auth-key";

/// The token as a query parameter, for endpoints that take nothing else.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default, rename = "accessToken")]
    pub(crate) access_token: Option<String>,
}

/// The access rules, checked on every socket handshake and API call.
#[derive(Debug)]
pub(crate) struct Access {
    settings: AccessSettings,
}

impl Access {
    pub(crate) fn new(settings: AccessSettings) -> Self {
        Access { settings }
    }

    /// Whether clients must present a token.
    pub(crate) fn needs_token(&self) -> bool {
        !self.settings.tokens.is_empty()
    }

    /// The origin check, then the token check. `stated_origin` is the
    /// `origin` query parameter, which the page sends when it asks why its
    /// socket was refused (a same-origin GET has no Origin header); it
    /// counts only without the header, which browsers always send on a
    /// socket, so it cannot be used to pass the check. `query_token` is the
    /// `accessToken` query parameter.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        stated_origin: Option<&str>,
        query_token: Option<&str>,
    ) -> Result<(), Refusal> {
        let origin = match headers.get(header::ORIGIN) {
            Some(origin) => Some(origin.to_str().unwrap_or("")),
            None => stated_origin,
        };
        if let Some(origin) = origin {
            self.check_origin(headers, origin)?;
        }
        self.check_token(headers, query_token)
    }

    /// Allowed: an `origin` whose host (and port) is the request's own
    /// Host, whatever the scheme (a TLS proxy in front changes it, and may
    /// add the default port to Host); an origin listed in the settings;
    /// anything if `*` is listed. Requests with no origin at all are not
    /// from a browser page and never get here.
    fn check_origin(&self, headers: &HeaderMap, origin: &str) -> Result<(), Refusal> {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let same_host = host.is_some_and(|host| {
            origin.split_once("://").is_some_and(|(_, rest)| {
                without_default_port(rest).eq_ignore_ascii_case(without_default_port(host))
            })
        });
        let listed = self.settings.allowed_origins.iter().any(|allowed| {
            allowed == "*" || allowed.trim_end_matches('/').eq_ignore_ascii_case(origin)
        });
        if same_host || listed {
            Ok(())
        } else {
            Err(Refusal::ForeignOrigin(printable(origin)))
        }
    }

    /// The token, from (in this order) `Authorization: Bearer`, the
    /// `X-WS-Auth-Key` header or the query. A present but wrong token is 403
    /// whichever carried it; none at all is 401.
    pub(crate) fn check_token(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<(), Refusal> {
        if !self.needs_token() {
            return Ok(());
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token));
        let header_key = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
        let presented = bearer.or(header_key).or(query_token).map(str::trim);
        match presented {
            None | Some("") => Err(Refusal::MissingToken),
            Some(token) if self.is_known(token) => Ok(()),
            Some(_) => Err(Refusal::WrongToken),
        }
    }

    /// Compares against every configured token without stopping early, so
    /// the answer's timing does not say how much of a guess was right.
    fn is_known(&self, presented: &str) -> bool {
        self.settings.tokens.iter().fold(false, |found, token| {
            found | bool::from(token.as_bytes().ct_eq(presented.as_bytes()))
        })
    }
}

/// `host:80` and `host:443` as `host`: an Origin never names its
/// scheme's default port, and some proxies put it in Host.
fn without_default_port(host: &str) -> &str {
    host.strip_suffix(":443")
        .or_else(|| host.strip_suffix(":80"))
        .unwrap_or(host)
}

/// An origin as it may appear in a log line or a response: printable ASCII
/// only, and not too long.
fn printable(origin: &str) -> String {
    let mut shown: String = origin
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(100)
        .collect();
    if shown.is_empty() {
        shown.push_str("this origin");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(tokens: &[&str], origins: &[&str]) -> Access {
        Access::new(AccessSettings {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
        })
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, axum::http::HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn origins() {
        let open = access(&[], &[]);
        assert_eq!(
            open.check(&headers(&[("host", "chat.test:3000")]), None, None),
            Ok(())
        );
        let own = headers(&[
            ("host", "chat.test:3000"),
            ("origin", "http://chat.test:3000"),
        ]);
        assert_eq!(open.check(&own, None, None), Ok(()));
        let foreign = headers(&[("host", "chat.test:3000"), ("origin", "http://evil.test")]);
        assert_eq!(
            open.check(&foreign, None, None),
            Err(Refusal::ForeignOrigin("http://evil.test".into()))
        );
        let other_port = headers(&[
            ("host", "chat.test:3000"),
            ("origin", "http://chat.test:4000"),
        ]);
        assert!(open.check(&other_port, None, None).is_err());
        assert_eq!(
            access(&[], &["http://evil.test/"]).check(&foreign, None, None),
            Ok(())
        );
        assert_eq!(access(&[], &["*"]).check(&foreign, None, None), Ok(()));
        // A stated origin counts only without the header (the page's probe).
        let bare = headers(&[("host", "chat.test:3000")]);
        assert!(open.check(&bare, Some("http://evil.test"), None).is_err());
        assert_eq!(open.check(&own, Some("http://evil.test"), None), Ok(()));
        // Default ports: Host may name one, Origin never does.
        let https = headers(&[("host", "chat.test:443"), ("origin", "https://chat.test")]);
        assert_eq!(open.check(&https, None, None), Ok(()));
    }

    #[test]
    fn tokens_from_each_place() {
        let gated = access(&["s3cret", "other"], &[]);
        assert_eq!(
            gated.check_token(&headers(&[]), None),
            Err(Refusal::MissingToken)
        );
        assert_eq!(
            gated.check_token(&headers(&[]), Some("")),
            Err(Refusal::MissingToken)
        );
        assert_eq!(gated.check_token(&headers(&[]), Some("other")), Ok(()));
        assert_eq!(
            gated.check_token(&headers(&[]), Some("s3cre")),
            Err(Refusal::WrongToken)
        );
        let bearer = headers(&[("authorization", "Bearer s3cret")]);
        assert_eq!(gated.check_token(&bearer, None), Ok(()));
        let key = headers(&[("x-ws-auth-key", "s3cret")]);
        assert_eq!(gated.check_token(&key, None), Ok(()));
        let shouting = headers(&[("authorization", "BEARER s3cret")]);
        assert_eq!(gated.check_token(&shouting, None), Ok(()));
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(gated.check_token(&wrong, None), Err(Refusal::WrongToken));
        assert_eq!(access(&[], &[]).check_token(&headers(&[]), None), Ok(()));
    }
}
