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
    let (status, response) = server.http_get("/no/such/page").await;
    assert_eq!(status, 404);
    assert!(
        response.contains("There is nothing at this address"),
        "{response}"
    );
    assert!(
        !response.contains("Your name"),
        "the join form is for / only"
    );
}

#[tokio::test]
async fn the_bundle_is_served_precompressed_with_cache_headers() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let js = "export function hydrate() { /* banter */ }\n".repeat(200);
    std::fs::write(pkg.join("app.js"), &js).unwrap();
    let server = Server::start_with(&["--site-root", site.path().to_str().unwrap()]).await;

    // Precompression runs in the background at start; wait for its file.
    let brotli_file = pkg.join("app.js.br");
    for _ in 0..100 {
        if brotli_file.exists() && pkg.join("app.js.gz").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let expected = std::fs::read(&brotli_file).expect("app.js.br written at start");
    assert!(expected.len() < js.len() / 10);

    let (status, head, body) = server.http_get_bytes("/pkg/app.js", "br").await;
    assert_eq!(status, 200, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-encoding: br"), "{head}");
    assert!(head.contains("cache-control:"), "{head}");
    assert_eq!(body, expected, "the precompressed file is sent as is");
}

#[tokio::test]
async fn metrics_count_clients_messages_deliveries_and_refusals() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    say(&mut alice, "hello").await;
    expect_event(&mut alice, "send-message", |_| true).await;
    let refused = server
        .try_connect("username=mallory", &[("origin", "https://evil.example")])
        .await;
    assert!(refused.is_err());
    let (status, response) = server.http_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(response.contains("text/plain; version=0.0.4"), "{response}");
    for line in [
        "banter_connected_clients 1",
        "banter_messages_accepted_total 1",
        r#"banter_refusals_total{reason="origin"} 1"#,
        "banter_storage_commit_seconds_count 1",
        "banter_fan_out_seconds_count 1",
    ] {
        assert!(response.contains(line), "no {line:?} in\n{response}");
    }
    // The user list, the history page and the message itself at least.
    let delivered = response
        .lines()
        .find_map(|l| l.strip_prefix("banter_frames_delivered_total "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("a delivered count");
    assert!(delivered >= 3, "{delivered}");
}
