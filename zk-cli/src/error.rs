//! What a command can fail with, the exit code each failure gives, and the
//! one-line message (`zkcli: NoNode: /path`) printed for it.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};
use zk_blocking::{Error, ErrorCode};

/// Success.
pub const EXIT_OK: i32 = 0;
/// A ZooKeeper error (NoNode, NodeExists, BadVersion, NoAuth, NotEmpty, ...).
pub const EXIT_ZK: i32 = 1;
/// A usage error (clap's own, and arguments found bad after parsing).
pub const EXIT_USAGE: i32 = 2;
/// Cannot connect, connection loss, session expired, timeouts.
pub const EXIT_CONNECTION: i32 = 3;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// A call failed; `path` is the node it was about, if any.
    Zk {
        /// The client's error.
        err: Error,
        /// The node.
        path: Option<String>,
    },
    /// No session could be opened.
    Connect {
        /// The connect string.
        hosts: String,
        /// Why.
        err: Error,
        /// How long connect waited.
        waited: Duration,
    },
    /// An argument clap accepted but the command cannot use (a bad ACL, ...).
    Usage(String),
    /// The server closed without answering (an unknown four-letter word).
    NoAnswer(String),
    /// Writing the output failed (other than a closed pipe, which ends quietly).
    Output(std::io::Error),
}

impl CliError {
    /// A failed call on `path`.
    pub fn at(path: &str) -> impl FnOnce(Error) -> CliError + '_ {
        move |err| CliError::Zk {
            err,
            path: Some(path.to_owned()),
        }
    }

    /// A failed call about no node in particular.
    pub fn call(err: Error) -> CliError {
        CliError::Zk { err, path: None }
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Zk { err, .. } => error_exit_code(err),
            CliError::Connect { err, .. } => match err {
                Error::InvalidArgument(_) | Error::InvalidPath { .. } => EXIT_USAGE,
                Error::AuthFailed | Error::SaslFailed(_) => EXIT_ZK,
                _ => EXIT_CONNECTION,
            },
            CliError::Usage(_) => EXIT_USAGE,
            CliError::NoAnswer(_) | CliError::Output(_) => EXIT_ZK,
        }
    }

    /// A short name for the failure: the ZooKeeper code's name where there is one.
    pub fn kind(&self) -> String {
        match self {
            CliError::Zk { err, .. } => error_kind(err),
            CliError::Connect { .. } => "ConnectionFailed".into(),
            CliError::Usage(_) => "Usage".into(),
            CliError::NoAnswer(_) => "NoAnswer".into(),
            CliError::Output(_) => "Output".into(),
        }
    }

    /// The error as a JSON document, for `--json`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "error": {
                "kind": self.kind(),
                "message": self.to_string(),
                "exit_code": self.exit_code(),
            }
        });
        if let CliError::Zk { err, path } = self {
            v["error"]["code"] = json!(err.code().code());
            if let Some(p) = path {
                v["error"]["path"] = json!(p);
            }
        }
        v
    }
}

/// 1 for what the server refused, 3 for connection trouble, 2 for arguments.
pub fn error_exit_code(err: &Error) -> i32 {
    match err {
        Error::Server(
            ErrorCode::ConnectionLoss
            | ErrorCode::SessionExpired
            | ErrorCode::OperationTimeout
            | ErrorCode::SessionMoved
            | ErrorCode::RequestTimeout
            | ErrorCode::UnknownSession,
        ) => EXIT_CONNECTION,
        Error::Server(_) => EXIT_ZK,
        Error::ConnectionLoss
        | Error::SessionExpired
        | Error::SessionClosed
        | Error::Timeout
        | Error::NotConnected
        | Error::Unreachable
        | Error::QueueFull
        | Error::OutboundFull
        | Error::Io(_) => EXIT_CONNECTION,
        Error::InvalidPath { .. } | Error::InvalidArgument(_) => EXIT_USAGE,
        Error::RetryFailed { last, .. } => error_exit_code(last),
        _ => EXIT_ZK,
    }
}

/// `NoNode`, `BadVersion`, `ConnectionLoss`, ...
pub fn error_kind(err: &Error) -> String {
    match err {
        Error::Server(code) | Error::MultiFailed { code, .. } => code_name(*code),
        Error::ConnectionLoss => "ConnectionLoss".into(),
        Error::SessionExpired => "SessionExpired".into(),
        Error::SessionClosed => "SessionClosed".into(),
        Error::AuthFailed | Error::SaslFailed(_) => "AuthFailed".into(),
        Error::Timeout => "Timeout".into(),
        Error::NotConnected => "NotConnected".into(),
        Error::InvalidPath { .. } => "InvalidPath".into(),
        Error::InvalidArgument(_) => "InvalidArgument".into(),
        Error::Unreachable => "Unreachable".into(),
        Error::Unsupported(_) => "Unsupported".into(),
        Error::Io(_) => "IoError".into(),
        Error::RetryFailed { last, .. } => error_kind(last),
        other => code_name(other.code()),
    }
}

/// The code's name as the Java client spells it (`NoNode`).
fn code_name(code: ErrorCode) -> String {
    match code {
        ErrorCode::Unknown(n) => format!("Error{n}"),
        c => format!("{c:?}"),
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Zk { err, path } => {
                f.write_str(&error_kind(err))?;
                if let Some(p) = path {
                    write!(f, ": {p}")?;
                }
                // A server code says it all; other errors have more to say.
                if !matches!(err, Error::Server(_)) {
                    write!(f, " ({err})")?;
                }
                Ok(())
            }
            CliError::Connect { hosts, err, waited } => match err {
                Error::Timeout => write!(
                    f,
                    "cannot connect to {hosts}: no session within {} ms",
                    waited.as_millis()
                ),
                e => write!(f, "cannot connect to {hosts}: {e}"),
            },
            CliError::Usage(m) | CliError::NoAnswer(m) => f.write_str(m),
            CliError::Output(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = CliError::at("/a")(Error::Server(ErrorCode::NoNode));
        assert_eq!(e.to_string(), "NoNode: /a");
        assert_eq!(e.exit_code(), EXIT_ZK);
        let e = CliError::at("/a")(Error::Server(ErrorCode::BadVersion));
        assert_eq!(e.to_string(), "BadVersion: /a");
        let e = CliError::at("/a")(Error::ConnectionLoss);
        assert!(e.to_string().starts_with("ConnectionLoss: /a ("));
        assert_eq!(e.exit_code(), EXIT_CONNECTION);
        assert_eq!(
            CliError::call(Error::SessionExpired).exit_code(),
            EXIT_CONNECTION
        );
        assert_eq!(
            CliError::at("x")(Error::InvalidPath {
                path: "x".into(),
                reason: "must start with /"
            })
            .exit_code(),
            EXIT_USAGE
        );
        let c = CliError::Connect {
            hosts: "h:1".into(),
            err: Error::Timeout,
            waited: Duration::from_secs(2),
        };
        assert_eq!(c.exit_code(), EXIT_CONNECTION);
        assert_eq!(
            c.to_string(),
            "cannot connect to h:1: no session within 2000 ms"
        );
        let j = CliError::at("/a")(Error::Server(ErrorCode::NoNode)).to_json();
        assert_eq!(j["error"]["kind"], "NoNode");
        assert_eq!(j["error"]["code"], -101);
        assert_eq!(j["error"]["path"], "/a");
    }
}
