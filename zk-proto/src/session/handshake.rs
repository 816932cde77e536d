//! The handshake: the ConnectRequest on a fresh connection and its own short
//! wait, the ConnectResponse (a new, resumed or expired session; read-only or not),
//! and what follows once the session is ready (credentials, watches, what waited).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::ZkError;
use crate::frame::write_frame;
use crate::jute::{Decode, Encode, Reader};
use crate::records::{ConnectRequest, ConnectResponse};
use crate::time::later;

use super::{
    auth::SaslRun, Action, ConnId, DisconnectReason, Event, Link, Session, SessionState, Transmit,
};

/// The wait for the first handshake reply after an answered one (doubling per
/// unanswered handshake in a row): see [`Session::handshake_wait`].
const HANDSHAKE_FIRST_WAIT: Duration = Duration::from_secs(1);

impl Session {
    /// How long the next handshake may go unanswered before the attempt is given
    /// up ([`DisconnectReason::HandshakeTimeout`]): 1 s after an answered
    /// handshake (or at the start), doubling with each unanswered one in a row
    /// (2, 4, 8 s, ...), never more than the
    /// [`connect_timeout`](Session::connect_timeout), which still bounds the whole
    /// attempt (TCP connect included). Any handshake reply brings it back to 1 s.
    ///
    /// Why: ZooKeeper 3.8 listens before it serves. A connection that lands in
    /// that window while the server starts (a restart, a rolling upgrade) is
    /// refused on the server's side by a path that can fail (a
    /// NullPointerException in `ZooKeeperServer.removeCnxn`) and leave the socket
    /// open and silent. Waiting the whole connect timeout there (10 s with a 30 s
    /// session) kept sessions away for about 10 s after their server was back.
    /// A healthy server answers a handshake in one round trip plus well under a
    /// millisecond, so a second of silence almost always means that state, and
    /// giving up then lets the next attempt (at once: the backoff counts from the
    /// attempt's start, so a second of waiting has used it up) reach the server
    /// once it serves.
    ///
    /// A legitimately slow handshake still connects: over a link whose round
    /// trip exceeds a second, or with a server too busy to answer in a second
    /// (a long GC pause, a session revalidation queued behind a large write), the
    /// waits double, so within a few attempts one waits as long as the whole
    /// connect timeout, exactly what every attempt waited before. A handshake
    /// that needs `T` (at most the connect timeout) gets through on the first
    /// attempt whose wait reaches `T`, after less than `2 T` spent on shorter
    /// attempts (1 + 2 + ... + 8 = 15 s at most with a 10 s connect timeout,
    /// before the first full-length one); one that needs more never connected
    /// before either. Each abandoned attempt is closed (the adapter is told to
    /// disconnect), so its handshake, if the server reads it later, is for a
    /// closed connection and cannot take the session from the next one: the
    /// server moves a session to the connection whose handshake it processed
    /// last, which is the live one. A new session's abandoned handshake may leave
    /// an orphan session on the server, which expires after its timeout.
    pub fn handshake_wait(&self) -> Duration {
        let doubled = HANDSHAKE_FIRST_WAIT
            .checked_mul(1u32 << self.unanswered_handshakes.min(20))
            .unwrap_or(Duration::MAX);
        doubled.min(self.connect_timeout())
    }

    /// The transport connected `conn` (after [`Action::Connect`]).
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        let now = self.clock(now);
        match self.link {
            Link::Connecting {
                conn: c,
                host,
                deadline,
            } if c == conn => {
                self.rx.clear();
                self.tx.clear();
                let (session_id, passwd) = match (&self.session, self.session_global) {
                    (Some((id, pw)), true) => (*id, pw.clone()),
                    _ => (0, Bytes::from_static(&[0u8; 16])),
                };
                let req = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.last_zxid,
                    timeout: self
                        .config
                        .session_timeout
                        .as_millis()
                        .min(i32::MAX as u128) as i32,
                    session_id,
                    passwd,
                    read_only: Some(self.config.read_only),
                };
                write_frame(&mut self.tx, |b| req.encode(b));
                // The handshake's own wait, when it ends before the attempt's deadline.
                let wait = later(now, self.handshake_wait());
                self.link = Link::Handshaking {
                    conn,
                    host,
                    deadline: deadline.min(wait),
                    short: wait < deadline,
                };
                self.last_recv = now;
            }
            _ => {
                if let Some(p) = &mut self.probe {
                    if p.conn.map(|c| c.0) == Some(conn) {
                        self.side_tx.push_back(Transmit {
                            conn,
                            data: Bytes::from_static(b"isro"),
                        });
                        return;
                    }
                }
                self.actions.push_back(Action::Disconnect { conn });
            }
        }
    }

    pub(super) fn on_connect_response(&mut self, frame: Bytes, now: Instant) {
        let Link::Handshaking { conn, host, .. } = self.link else {
            return;
        };
        let resp = match ConnectResponse::decode(&mut Reader::new(frame)) {
            Ok(r) => r,
            Err(e) => {
                self.attempt_failed(now, DisconnectReason::Malformed(e), true);
                return;
            }
        };
        // A server answered: the count of rounds without one starts again, and
        // the next handshake gets the shortest wait.
        self.hosts.on_connected(host);
        self.unanswered_handshakes = 0;
        if resp.timeout <= 0 {
            self.actions.push_back(Action::Disconnect { conn });
            self.link = Link::Idle { next: None };
            self.expire(now);
            return;
        }
        let read_only = resp.read_only == Some(true);
        self.session = Some((resp.session_id, resp.passwd));
        if !read_only {
            self.session_global = true;
        }
        self.negotiated = Some(Duration::from_millis(resp.timeout as u64));
        self.link = Link::Up { conn, host };
        self.last_recv = now;
        self.last_send = now;
        self.last_contact = Some(now);
        if let Some(cfg) = &self.config.sasl {
            // SASL before anything else; the rest follows when it succeeds. The
            // server is named by the host this connection reached (a mechanism
            // like GSSAPI derives `zookeeper/<host>` from it).
            let cnonce = format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64());
            let connected = self.config.hosts.get(host).map_or("", |h| h.host.as_str());
            match crate::sasl::SaslExchange::start(cfg, connected, cnonce) {
                Ok((exchange, token)) => {
                    self.sasl = Some(SaslRun {
                        exchange,
                        read_only,
                    });
                    self.send_sasl(token, now);
                }
                Err(e) => {
                    // The mechanism cannot even start (no credentials, unknown
                    // principal): no other server would change that.
                    let at = self.config.hosts.get(host).map(|h| h.to_string());
                    self.events.push_back(Event::SaslFailed {
                        reason: format!(
                            "{}: SASL {}: {e}",
                            at.unwrap_or_default(),
                            cfg.mechanism_name()
                        ),
                    });
                    self.terminate(SessionState::AuthFailed, ZkError::AuthFailed, now);
                }
            }
            return;
        }
        self.session_ready(read_only, now);
    }

    /// The handshake (and SASL, if any) is done: credentials, watches, what waited,
    /// then the state.
    pub(super) fn session_ready(&mut self, read_only: bool, now: Instant) {
        // Credentials first, then watches, then what waited: the order the Java client uses.
        self.replay_auth();
        self.restore_watches();
        for q in std::mem::take(&mut self.queued) {
            self.send_user(q.id, q.req, q.watch, q.unchrooted, q.traced, now);
        }
        if read_only {
            self.set_state(SessionState::ConnectedReadOnly);
            self.start_probe(now);
        } else {
            self.stop_probe();
            self.set_state(SessionState::Connected);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::session::test_peer::{hosts, t0};
    use crate::session::{Action, Session};

    /// A connection reported up after its attempt was given up (a late connect)
    /// is closed, not handshaken: the ConnectRequest goes on the attempt under
    /// way, never on the stale socket.
    #[test]
    fn a_late_connect_of_an_abandoned_attempt_is_closed() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(2)), now);
        let Some(Action::Connect { conn: stale, .. }) = s.poll_action() else {
            panic!("no connect");
        };
        let now = now + s.connect_timeout();
        s.handle_timeout(now);
        assert_eq!(s.poll_action(), Some(Action::Disconnect { conn: stale }));
        let Some(Action::Connect { conn: live, .. }) = s.poll_action() else {
            panic!("no second connect");
        };

        s.handle_connected(stale, now);
        assert_eq!(s.poll_action(), Some(Action::Disconnect { conn: stale }));
        assert!(
            s.poll_transmit(now).is_none(),
            "nothing for the stale socket"
        );

        s.handle_connected(live, now);
        assert_eq!(s.poll_transmit(now).map(|t| t.conn), Some(live));
    }
}
