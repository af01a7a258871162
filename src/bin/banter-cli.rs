//! `banter-cli`: the chat from a terminal. See `banter::cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    banter::cli::main().await
}
