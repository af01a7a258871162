//! Which server, as whom, in which room: the addresses a native client
//! opens.

use url::Url;

use crate::protocol::{
    PRESENCE_DELTA, PRESENCE_PARAM, ROOM_PARAM, SINCE_PARAM, USERNAME_PARAM, WS_PATH,
};

/// Why an address cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("{0:?} is not a URL: {1}")]
    NotAUrl(String, url::ParseError),
    #[error("{0:?}: the address must start with ws://, wss://, http:// or https://")]
    Scheme(String),
}

/// Where and as whom to connect. No `Debug`: it holds the access token.
#[derive(Clone)]
pub(crate) struct Target {
    /// The server, as `ws://` or `wss://`, with any path prefix a proxy
    /// serves it under (no trailing slash).
    base: Url,
    pub(crate) name: String,
    pub(crate) room: String,
    /// Sent as `Authorization: Bearer`, never in the URL (which proxies
    /// and logs keep).
    pub(crate) token: Option<String>,
}

impl Target {
    /// `server` as given on a command line: `ws://host:port`, `wss://…`;
    /// `http(s)://` (an address copied from the browser) means the same.
    pub(crate) fn new(
        server: &str,
        name: String,
        room: String,
        token: Option<String>,
    ) -> Result<Self, TargetError> {
        let mut base =
            Url::parse(server).map_err(|err| TargetError::NotAUrl(server.to_owned(), err))?;
        let scheme = match base.scheme() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            _ => return Err(TargetError::Scheme(server.to_owned())),
        };
        // Only between the special schemes, which `set_scheme` allows.
        let _ = base.set_scheme(scheme);
        base.set_query(None);
        base.set_fragment(None);
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        Ok(Target {
            base,
            name,
            room,
            token,
        })
    }

    /// The same server and name in another room.
    pub(crate) fn in_room(&self, room: String) -> Self {
        Target {
            room,
            ..self.clone()
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.base.scheme() == "wss"
    }

    /// The JSON socket, resuming after `since` when given.
    pub(crate) fn socket_url(&self, since: Option<u64>) -> Url {
        let mut url = self.at(WS_PATH);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair(USERNAME_PARAM, &self.name)
                .append_pair(ROOM_PARAM, &self.room)
                .append_pair(PRESENCE_PARAM, PRESENCE_DELTA);
            if let Some(since) = since {
                query.append_pair(SINCE_PARAM, &since.to_string());
            }
        }
        url
    }

    /// An HTTP path on the same server (`http(s)://`).
    pub(crate) fn http_url(&self, path: &str) -> Url {
        let mut url = self.at(path);
        let _ = url.set_scheme(if self.is_tls() { "https" } else { "http" });
        url
    }

    fn at(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_built_from_the_server_given() {
        let target = Target::new(
            "https://chat.example/banter/?x=1",
            "zoë b".into(),
            "ops".into(),
            None,
        )
        .unwrap();
        assert_eq!(
            target.socket_url(Some(9)).as_str(),
            "wss://chat.example/banter/start_web_socket?username=zo%C3%AB+b&room=ops&presence=delta&since=9"
        );
        assert_eq!(
            target.http_url("/api/rooms").as_str(),
            "https://chat.example/banter/api/rooms"
        );
        let plain = Target::new("ws://127.0.0.1:3000", "a".into(), "general".into(), None).unwrap();
        assert_eq!(
            plain.socket_url(None).as_str(),
            "ws://127.0.0.1:3000/start_web_socket?username=a&room=general&presence=delta"
        );
        assert!(matches!(
            Target::new("ftp://x", "a".into(), "b".into(), None),
            Err(TargetError::Scheme(_))
        ));
        assert!(Target::new("nonsense", "a".into(), "b".into(), None).is_err());
    }
}
