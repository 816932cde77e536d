//! Why the client could not connect: the hosts of the latest connection
//! attempts, and the cause of the latest one that failed (what
//! `Client::last_connect_error` and `connect()` report).

use std::collections::VecDeque;

use zk_proto::{ConnId, DisconnectReason, HostAddr, Session};

/// How many attempts' hosts the core remembers.
const ATTEMPTS_KEPT: usize = 8;

/// The latest connection attempts and the latest failure.
#[derive(Default)]
pub(crate) struct Attempts {
    /// The hosts of the latest connection attempts not yet connected (a few; for
    /// naming the host in a failed attempt's cause).
    recent: VecDeque<(ConnId, HostAddr)>,
    /// The cause of the latest failed connection attempt, and which attempt.
    last_error: Option<(ConnId, String)>,
    /// Why SASL was refused (host and reason), until the next restart: what
    /// `connect()` reports for an AuthFailed session.
    sasl_failure: Option<String>,
}

impl Attempts {
    /// The session opens connection `conn` to `host`.
    pub(crate) fn connecting(&mut self, conn: ConnId, host: &HostAddr) {
        if self.recent.len() >= ATTEMPTS_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back((conn, host.clone()));
    }

    /// The session connected: the attempt that got here succeeded; older ones
    /// are over. (Their memory too: an idle client keeps none.)
    pub(crate) fn connected(&mut self) {
        self.recent = VecDeque::new();
    }

    /// The adapter names why `conn` failed: kept if `conn` is an attempt that has
    /// not reached a session.
    pub(crate) fn report(&mut self, conn: ConnId, cause: String) {
        if self.recent.iter().any(|(c, _)| *c == conn) {
            tracing::debug!(conn = conn.0, %cause, "connection attempt failed");
            self.last_error = Some((conn, cause));
        }
    }

    /// The cause of the latest failed attempt.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.as_ref().map(|(_, s)| s.clone())
    }

    /// SASL was refused: the session's reason (which names the host) is the
    /// cause, until the next restart.
    pub(crate) fn sasl_failed(&mut self, reason: &str) {
        let cause = reason.to_owned();
        self.sasl_failure = Some(cause.clone());
        self.last_error = Some((ConnId(u64::MAX), cause));
    }

    pub(crate) fn sasl_failure(&self) -> Option<String> {
        self.sasl_failure.clone()
    }

    /// The session restarts: an old SASL refusal no longer explains anything.
    pub(crate) fn restarting(&mut self) {
        self.sasl_failure = None;
    }

    /// A connection ended: if it was an attempt that never reached a session, its
    /// cause becomes the last connect error, unless the adapter already named a
    /// more precise one for it (a TLS or socket error).
    pub(crate) fn ended(&mut self, conn: ConnId, reason: &DisconnectReason, session: &Session) {
        use DisconnectReason as R;
        let Some(i) = self.recent.iter().position(|(c, _)| *c == conn) else {
            return;
        };
        let Some((_, host)) = self.recent.remove(i) else {
            return;
        };
        if self.last_error.as_ref().is_some_and(|(c, _)| *c == conn) {
            return;
        }
        let why = match reason {
            R::Rebalance => return,
            R::Closed => "the server closed the connection before the ZooKeeper handshake \
                          completed (a plain client on a TLS port? a server refusing sessions?)"
                .to_string(),
            R::ConnectTimeout => format!(
                "no ZooKeeper handshake within the connect timeout of {:?} (a plain client on a \
                 TLS port, a TLS client on a plain port, or a server that does not answer?)",
                session.connect_timeout()
            ),
            R::HandshakeTimeout => format!(
                "the server took the connection but did not answer the ZooKeeper handshake in \
                 time (a server still starting, a plain client on a TLS port, a TLS client on a \
                 plain port?); the next handshake may take {:?}",
                session.handshake_wait()
            ),
            R::Malformed(e) => format!(
                "the server's handshake reply is not ZooKeeper's protocol ({e}; a plain client on \
                 a TLS port?)"
            ),
            other => format!("{other:?}"),
        };
        self.last_error = Some((conn, format!("{host}: {why}")));
    }
}
