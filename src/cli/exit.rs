//! `banter-cli`'s exit codes: one per way a chat can end, so scripts can
//! tell "the server is down" from "pick another name".

use std::process::ExitCode;

use crate::native::{Failure, NetError};

/// How `banter-cli` ended. The numbers are documented in `--help`
/// ([`EXIT_CODES`]) and never reused for something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    /// Closed as asked (or, scripted, once every line was echoed).
    Done = 0,
    /// Some input lines could not be sent (too long); the rest were.
    NotAllSent = 1,
    /// Bad arguments (clap uses 2 too), or a name or room the rules refuse.
    Usage = 2,
    /// The server could not be reached (or did not speak WebSocket).
    Unreachable = 3,
    /// The server refused the name: someone has it.
    NameTaken = 4,
    /// No access token, or the wrong one (or the origin was refused).
    AuthRefused = 5,
    /// The TLS handshake failed (certificate, protocol).
    Tls = 6,
    /// The server closed the connection and did not come back in time.
    ServerClosed = 7,
}

/// For `--help`.
pub(super) const EXIT_CODES: &str = "\
Exit codes:
  0  closed as asked (scripted: every line was sent and echoed)
  1  some lines were not sent (too long); the others were
  2  bad arguments, or a name or room the server's rules refuse
  3  the server could not be reached
  4  the name is taken
  5  the access token was missing or refused
  6  the TLS handshake failed
  7  the server closed the connection and did not come back";

impl Exit {
    pub(super) fn of(failure: &Failure) -> Exit {
        match failure {
            Failure::Net(NetError::Tls(..)) => Exit::Tls,
            Failure::Net(_) | Failure::Rejected(..) => Exit::Unreachable,
            Failure::Refused(_) => Exit::NameTaken,
            Failure::Unauthorized(_) => Exit::AuthRefused,
            Failure::Gone(..) => Exit::ServerClosed,
        }
    }

    pub(super) fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// Says why on stderr, in one line, and gives the exit code for it.
pub(super) fn fail(failure: &Failure) -> ExitCode {
    let exit = Exit::of(failure);
    let hint = match exit {
        Exit::AuthRefused => " (pass --token, or set BANTER_TOKEN)",
        Exit::NameTaken => " (pick another --name)",
        _ => "",
    };
    eprintln!("banter-cli: {failure}{hint}");
    exit.code()
}
