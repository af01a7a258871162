//! The plain-HTTP surface: 426 on the socket path, health, the page.

use crate::support::*;

#[tokio::test]
async fn a_plain_get_on_the_socket_path_is_426_with_a_one_line_body() {
    let server = Server::start().await;
    let (status, response) = server.http_get("/start_web_socket?username=alice").await;
    assert_eq!(status, 426, "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(body.trim_end().lines().count(), 1, "{body:?}");
    assert!(body.contains("WebSocket"), "{body:?}");
}

#[tokio::test]
async fn healthz_counts_connected_clients() {
    let server = Server::start().await;
    let (status, response) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
    assert!(response.contains(r#""clients":0"#), "{response}");
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    let (_, response) = server.http_get("/healthz").await;
    assert!(
        response.contains(r#"{"status":"ok","clients":1}"#),
        "{response}"
    );
}

#[tokio::test]
async fn the_page_is_server_rendered_with_the_join_form() {
    let server = Server::start().await;
    let (status, response) = server.http_get("/").await;
    assert_eq!(status, 200);
    assert!(response.contains("<title>Banter</title>"), "{response}");
    assert!(response.contains("Your name"), "{response}");
}

#[tokio::test]
async fn an_unknown_path_is_404() {
    let server = Server::start().await;
    let (status, _) = server.http_get("/no/such/page").await;
    assert_eq!(status, 404);
}
