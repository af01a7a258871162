//! The connection under a native client's socket: TCP, then TLS for
//! `wss://`, each step's failure told apart (a script's exit code and the
//! person reading the error both need to know *which* step failed), and a
//! one-shot HTTP GET over the same streams.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsConnector,
    rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName},
};
use tokio_tungstenite::MaybeTlsStream;
use url::Url;

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A stream to the server, plain or TLS.
pub(crate) type Stream = MaybeTlsStream<TcpStream>;

/// Why the server could not be reached.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetError {
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, std::io::Error),
    #[error("cannot reach {0}: no answer within {CONNECT_TIMEOUT:?}")]
    Timeout(String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("HTTP request to {0} failed: {1}")]
    Http(String, String),
}

/// Connects to `url`'s host and port, with TLS for `wss` and `https`.
pub(crate) async fn open(url: &Url) -> Result<Stream, NetError> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let tls = matches!(url.scheme(), "wss" | "https");
    let port = url.port().unwrap_or(if tls { 443 } else { 80 });
    let at = format!("{host}:{port}");
    // `[::1]` in a URL is `::1` to the resolver.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let connect = async {
        let tcp = TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|err| NetError::Unreachable(at.clone(), err))?;
        let _ = tcp.set_nodelay(true);
        if !tls {
            return Ok(MaybeTlsStream::Plain(tcp));
        }
        let name = ServerName::try_from(bare.clone())
            .map_err(|err| NetError::Tls(at.clone(), err.to_string()))?;
        let connector =
            TlsConnector::from(client_config().map_err(|err| NetError::Tls(at.clone(), err))?);
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|err| NetError::Tls(at.clone(), err.to_string()))?;
        Ok(MaybeTlsStream::Rustls(stream))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| NetError::Timeout(at.clone()))?
}

/// The TLS settings: ring's crypto, named here rather than installed as a
/// process-wide default, and the platform's root certificates, loaded once.
fn client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no root certificates found on this system".to_owned());
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|err| err.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// `GET url` (with the token as a bearer), answered with its status and
/// body.
pub(crate) async fn get(url: &Url, token: Option<&str>) -> Result<(u16, String), NetError> {
    let stream = open(url).await?;
    let failed = |err: &dyn std::fmt::Display| NetError::Http(url.to_string(), err.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| failed(&err))?;
    tokio::spawn(connection);
    let mut target = url.path().to_owned();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let mut request = hyper::Request::get(target).header(hyper::header::HOST, authority);
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|err| failed(&err))?;
    let answer = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| failed(&err))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| failed(&err))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, answer)
        .await
        .map_err(|_| NetError::Timeout(url.to_string()))?
}
