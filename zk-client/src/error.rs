//! The one error type of the client API.

use std::fmt;

use zk_proto::{ErrorCode, UsageError, ZkError};

use crate::ops::OpResult;

/// Why a client call failed. Server answers keep their code in [`Error::Server`].
///
/// kazoo raises one exception class per server code (`NoNodeError`,
/// `NodeExistsError`, `BadVersionError`...); here they are one variant,
/// `Server(code)`, to match on:
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_client::{CreateMode, Error, ErrorCode};
/// match zk.create("/leader", "me", CreateMode::Ephemeral).await {
///     Ok(_) => println!("leading"),
///     Err(Error::Server(ErrorCode::NodeExists)) => println!("someone else leads"),
///     Err(Error::Server(ErrorCode::NoNode)) => println!("no parent: ensure_path first"),
///     Err(e) if e.outcome_unknown() => println!("may or may not exist now: {e}"),
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
///
/// The classification helpers need no server:
///
/// ```
/// use zk_client::{Error, ErrorCode};
/// let e = Error::Server(ErrorCode::NoNode);
/// assert!(e.is_no_node() && !e.is_retryable());
/// assert_eq!(e.to_string(), ErrorCode::NoNode.to_string());
/// // Connection trouble: retry later, but a write's outcome is unknown.
/// assert!(Error::ConnectionLoss.is_retryable() && Error::ConnectionLoss.outcome_unknown());
/// // Every error has the code a Java or kazoo user knows it by.
/// assert_eq!(Error::SessionExpired.code(), ErrorCode::SessionExpired);
/// assert_eq!(Error::Timeout.code(), ErrorCode::OperationTimeout);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with this code (NoNode, NodeExists, BadVersion, ...).
    Server(ErrorCode),
    /// The connection dropped before the reply. A write may or may not have been applied.
    ConnectionLoss,
    /// The session expired.
    SessionExpired,
    /// The client was closed.
    SessionClosed,
    /// The server rejected the credentials; the session is over.
    AuthFailed,
    /// SASL authentication was refused (a wrong password, an unknown user, a
    /// server reply that did not verify; with GSSAPI also no Kerberos credentials
    /// or an unknown principal): the host and the server's or the mechanism's
    /// reason. The session is over (state `AuthFailed`), so
    /// retrying with the same credentials will not help; `connect()` returns it.
    SaslFailed(String),
    /// No answer within the call's timeout. A write may or may not have been applied.
    Timeout,
    /// Not connected, and the queue policy says fail fast.
    NotConnected,
    /// A path breaks ZooKeeper's rules; nothing was sent.
    InvalidPath {
        /// The path.
        path: String,
        /// The rule.
        reason: &'static str,
    },
    /// An argument is not valid; nothing was sent.
    InvalidArgument(String),
    /// Too many requests are waiting for a connection.
    QueueFull,
    /// Too many bytes are waiting to be written to the connection (the socket is
    /// not draining; see the protocol config's `max_outbound`). Nothing was sent.
    OutboundFull,
    /// The server's reply was larger than the client accepts; it was skipped (the
    /// connection is fine). Raise the limit with `ClientBuilder::max_frame`.
    /// Not retryable: the same request gets the same reply.
    ReplyTooLarge {
        /// The reply's size in bytes.
        size: usize,
        /// The configured maximum (`max_frame`).
        max: usize,
    },
    /// The watch was removed (remove_watches or an explicit removal) before it fired.
    WatchRemoved,
    /// The server's reply could not be decoded (the connection was dropped).
    Malformed(String),
    /// A multi failed: nothing was applied. `index` is the op that failed.
    MultiFailed {
        /// Position of the failing op.
        index: usize,
        /// Its code.
        code: ErrorCode,
        /// Every op's result as the server reported it.
        results: Vec<OpResult>,
    },
    /// No server could be reached within the connection retry limit
    /// (`ClientBuilder::connection_max_tries`); the client stopped trying.
    Unreachable,
    /// A retry loop gave up (tries or deadline used up); `last` is the final attempt's error.
    RetryFailed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<Error>,
    },
    /// A retry loop was stopped by its [`Interrupt`](crate::retry::Interrupt).
    Interrupted,
    /// The server does not support this call (too old a version).
    Unsupported(&'static str),
    /// A transport error outside a session (four-letter words).
    Io(String),
    /// `connect()` reached its deadline without a session; this is the last
    /// attempt's cause (host and reason: refused, timed out, a TLS error...).
    ConnectFailed(String),
}

impl Error {
    /// The code a Java or kazoo user knows this error by.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Server(c) | Error::MultiFailed { code: c, .. } => *c,
            Error::ConnectionLoss | Error::NotConnected | Error::Io(_) => ErrorCode::ConnectionLoss,
            Error::SessionExpired | Error::SessionClosed => ErrorCode::SessionExpired,
            Error::AuthFailed | Error::SaslFailed(_) => ErrorCode::AuthFailed,
            Error::Timeout => ErrorCode::OperationTimeout,
            Error::InvalidPath { .. } | Error::InvalidArgument(_) => ErrorCode::BadArguments,
            Error::QueueFull | Error::OutboundFull => ErrorCode::ConnectionLoss,
            Error::Malformed(_) | Error::ReplyTooLarge { .. } => ErrorCode::MarshallingError,
            Error::Unsupported(_) => ErrorCode::Unimplemented,
            Error::RetryFailed { last, .. } => last.code(),
            Error::Interrupted => ErrorCode::OperationTimeout,
            Error::Unreachable | Error::ConnectFailed(_) => ErrorCode::ConnectionLoss,
            Error::WatchRemoved => ErrorCode::NoWatcher,
        }
    }

    /// Whether a write that failed this way may have been applied anyway: check
    /// before repeating it.
    ///
    /// ```
    /// use zk_client::{Error, ErrorCode};
    /// assert!(Error::ConnectionLoss.outcome_unknown());
    /// assert!(Error::Timeout.outcome_unknown());
    /// // The server answered, so nothing was applied:
    /// assert!(!Error::Server(ErrorCode::BadVersion).outcome_unknown());
    /// // Not connected (fail-fast queue policy): nothing was sent.
    /// assert!(!Error::NotConnected.outcome_unknown());
    /// ```
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::RetryFailed { last, .. } => last.outcome_unknown(),
            e => matches!(
                e,
                Error::ConnectionLoss | Error::Timeout | Error::Malformed(_)
            ),
        }
    }

    /// Whether repeating the call later may succeed (connection trouble, throttling).
    ///
    /// ```
    /// use zk_client::{Error, ErrorCode};
    /// assert!(Error::NotConnected.is_retryable());
    /// assert!(Error::Server(ErrorCode::ThrottledOp).is_retryable());
    /// assert!(!Error::Server(ErrorCode::NoAuth).is_retryable());
    /// assert!(!Error::SessionExpired.is_retryable()); // see RetryPolicy::retry_on_expiry
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss
                | Error::Timeout
                | Error::NotConnected
                | Error::ConnectFailed(_)
                | Error::Server(ErrorCode::ThrottledOp)
        )
    }

    /// Shorthand for `Server(NoNode)`.
    pub fn is_no_node(&self) -> bool {
        self.code() == ErrorCode::NoNode
    }

    /// Shorthand for `Server(NodeExists)`.
    pub fn is_node_exists(&self) -> bool {
        self.code() == ErrorCode::NodeExists
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Server(c) => write!(f, "{c}"),
            Error::ConnectionLoss => f.write_str("connection lost (outcome unknown)"),
            Error::SessionExpired => f.write_str("session expired"),
            Error::SessionClosed => f.write_str("client closed"),
            Error::AuthFailed => f.write_str("authentication failed"),
            Error::SaslFailed(why) => write!(f, "SASL authentication failed: {why}"),
            Error::Timeout => f.write_str("timed out (outcome unknown)"),
            Error::NotConnected => f.write_str("not connected"),
            Error::InvalidPath { path, reason } => write!(f, "invalid path {path:?}: {reason}"),
            Error::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            Error::QueueFull => f.write_str("too many requests waiting for a connection"),
            Error::OutboundFull => {
                f.write_str("too many bytes waiting to be written to the connection")
            }
            Error::ReplyTooLarge { size, max } => write!(
                f,
                "reply of {size} bytes exceeds the maximum frame of {max} bytes \
                 (raise it with the max_frame builder option)"
            ),
            Error::WatchRemoved => f.write_str(
                "the watch was removed (remove_watches or an explicit removal) before it fired",
            ),
            Error::Malformed(s) => write!(f, "malformed reply: {s}"),
            Error::MultiFailed { index, code, .. } => write!(f, "multi op {index} failed: {code}"),
            Error::Io(s) => write!(f, "i/o error: {s}"),
            Error::Unsupported(what) => write!(f, "not supported by this server: {what}"),
            Error::RetryFailed { attempts, last } => {
                write!(f, "gave up after {attempts} attempts: {last}")
            }
            Error::Interrupted => f.write_str("retry interrupted"),
            Error::Unreachable => {
                f.write_str("no server reached within the connection retry limit")
            }
            Error::ConnectFailed(cause) => write!(f, "could not connect: {cause}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ZkError> for Error {
    fn from(e: ZkError) -> Self {
        match e {
            ZkError::Server(c) => Error::Server(c),
            ZkError::ConnectionLoss => Error::ConnectionLoss,
            ZkError::SessionExpired => Error::SessionExpired,
            ZkError::SessionClosed => Error::SessionClosed,
            ZkError::AuthFailed => Error::AuthFailed,
            ZkError::Timeout => Error::Timeout,
            ZkError::NotConnected => Error::NotConnected,
            ZkError::Malformed(d) => Error::Malformed(d.to_string()),
            ZkError::ReplyTooLarge { size, max } => Error::ReplyTooLarge { size, max },
            ZkError::Unreachable => Error::Unreachable,
            other => Error::Malformed(other.to_string()),
        }
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::InvalidPath { path, reason } => Error::InvalidPath { path, reason },
            UsageError::SessionTerminated(z) => z.into(),
            UsageError::QueueFull => Error::QueueFull,
            UsageError::OutboundFull => Error::OutboundFull,
            UsageError::InvalidRequest(s) => Error::InvalidArgument(s.to_owned()),
            UsageError::InvalidConnectString(s) => Error::InvalidArgument(s),
            other => Error::InvalidArgument(other.to_string()),
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_variants_map_and_classify() {
        let e: Error = ZkError::ReplyTooLarge {
            size: 5088,
            max: 1000,
        }
        .into();
        assert_eq!(
            e,
            Error::ReplyTooLarge {
                size: 5088,
                max: 1000
            }
        );
        assert!(!e.is_retryable() && !e.outcome_unknown());
        assert_eq!(e.code(), ErrorCode::MarshallingError);
        assert!(e.to_string().contains("max_frame"));
        let e: Error = UsageError::OutboundFull.into();
        assert_eq!(e, Error::OutboundFull);
        assert!(!e.outcome_unknown());
        assert_eq!(Error::WatchRemoved.code(), ErrorCode::NoWatcher);
        assert!(!Error::WatchRemoved.is_retryable() && !Error::WatchRemoved.outcome_unknown());
    }
}
