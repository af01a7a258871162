//! Ctrl-C / SIGTERM: every socket is closed with 1001 and the process exits
//! within five seconds.

use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_promptly() {
    let mut server = Server::start().await;
    let mut alice = server.join("alice").await;
    let mut bob = server.connect("username=bob&presence=delta").await;
    expect_users(&mut alice, &["alice", "bob"]).await;

    let pid = server.child.id().expect("server pid");
    let started = Instant::now();
    // SIGTERM to the process this test started, by its PID.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    for socket in [&mut alice, &mut bob] {
        loop {
            match next_frame(socket).await {
                Frame::Closed(Some((code, _))) => {
                    assert_eq!(code, 1001);
                    break;
                }
                Frame::Closed(None) => panic!("closed without a 1001 close frame"),
                Frame::Event(_) => continue,
            }
        }
    }
    let exit = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("server still running 5 s after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "exit status {exit}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
