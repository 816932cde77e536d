//! The connection under the session: which host is tried next and when (the
//! backoff of [`HostList`](crate::hosts::HostList)), a failed attempt, a lost
//! connection, and moving after the host list changed (`update_hosts`).

use std::time::Instant;

use crate::config::{HostAddr, QueuePolicy};
use crate::error::{UsageError, ZkError};
use crate::hosts::Rebalance;
use crate::time::later;

use super::{Action, ConnId, DisconnectReason, Event, Link, Session, SessionState};

impl Session {
    /// The server the session is on (or being connected to). `None` while not
    /// connecting, and while a closing session waits for its reply on a server that
    /// [`update_hosts`](Session::update_hosts) removed from the list.
    pub fn current_host(&self) -> Option<&HostAddr> {
        match self.link {
            Link::Connecting { host, .. }
            | Link::Handshaking { host, .. }
            | Link::Up { host, .. } => self.config.hosts.get(host),
            Link::Idle { .. } => None,
        }
    }

    /// The connection the session is up on (handshake done), if any: the one
    /// whose input carries replies.
    pub fn connection(&self) -> Option<ConnId> {
        match self.link {
            Link::Up { conn, .. } => Some(conn),
            _ => None,
        }
    }

    pub(super) fn link_conn(&self) -> Option<ConnId> {
        match self.link {
            Link::Connecting { conn, .. }
            | Link::Handshaking { conn, .. }
            | Link::Up { conn, .. } => Some(conn),
            Link::Idle { .. } => None,
        }
    }

    /// The transport could not connect `conn`.
    pub fn handle_connect_failed(&mut self, conn: ConnId, now: Instant) {
        let now = self.clock(now);
        if self.link_conn() == Some(conn) {
            self.attempt_failed(now, DisconnectReason::Closed, false);
        } else {
            self.probe_finished(conn, now);
        }
    }

    /// The transport closed `conn` (EOF or error).
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Instant) {
        let now = self.clock(now);
        if self.link_conn() == Some(conn) {
            self.drop_link(now, DisconnectReason::Closed, false);
        } else {
            self.probe_finished(conn, now);
        }
    }

    /// Replaces the host list (the Java client's `updateServerList`, for an
    /// ensemble that grew, shrank or moved). The chroot and the session stay.
    ///
    /// On a server, the session decides whether to move, so the load spreads over
    /// the new list without every client moving (see
    /// [`HostList::update`](crate::hosts::HostList::update) for the rule; the draw
    /// comes from the session's seeded generator): if its server is no longer in
    /// the list it moves; if the list grew it moves to one of the new servers with
    /// probability `1 - old/new`; otherwise it stays. Moving drops the connection
    /// ([`Event::Disconnected`] with [`DisconnectReason::Rebalance`]; requests in
    /// flight fail with `ConnectionLoss`, as on any connection loss) and connects
    /// to the chosen server at once; the session, its watches and credentials are
    /// restored there as after any reconnect.
    ///
    /// Not on a server, the new list replaces the old for the next attempt: an
    /// attempt under way to a server still in the list goes on, one to a server
    /// no longer in it is abandoned (reason `Rebalance`) for the next host at once;
    /// a backoff delay under way is kept. In a terminal state, the list is used by
    /// the next [`restart`](Session::restart).
    ///
    /// Fails with [`UsageError::InvalidConnectString`] for an empty list, changing nothing.
    ///
    /// Why: after the ensemble was reconfigured (a watch on
    /// [`CONFIG_NODE`](super::CONFIG_NODE) fired), point the session at the new members without
    /// losing it.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::config::parse_connect_string;
    /// use zk_proto::{Action, Config, DisconnectReason, Event, Session, UsageError};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("old1:2181").unwrap(), now);
    /// let Some(Action::Connect { conn, .. }) = session.poll_action() else { panic!() };
    ///
    /// assert!(matches!(
    ///     session.update_hosts(Vec::new(), now),
    ///     Err(UsageError::InvalidConnectString(_))
    /// ));
    ///
    /// // The server being tried left the list: that attempt is dropped for a new one.
    /// let (hosts, _) = parse_connect_string("new1:2181,new2:2181").unwrap();
    /// session.update_hosts(hosts, now).unwrap();
    /// assert_eq!(session.poll_action(), Some(Action::Disconnect { conn }));
    /// let Some(Action::Connect { host, .. }) = session.poll_action() else { panic!() };
    /// assert!(host.host.starts_with("new"));
    /// assert_eq!(
    ///     session.poll_event(),
    ///     Some(Event::Disconnected { conn, reason: DisconnectReason::Rebalance })
    /// );
    /// assert_eq!(session.hosts().len(), 2);
    /// ```
    pub fn update_hosts(&mut self, hosts: Vec<HostAddr>, now: Instant) -> Result<(), UsageError> {
        let now = self.clock(now);
        if hosts.is_empty() {
            return Err(UsageError::InvalidConnectString("no hosts".into()));
        }
        let old = std::mem::replace(&mut self.config.hosts, hosts);
        let on = match self.link {
            Link::Up { host, .. } if self.closing.is_none() => Some(host),
            _ => None,
        };
        let decision = self.hosts.update(
            &old,
            &self.config.hosts,
            on,
            self.config.randomize_hosts,
            &mut self.rng,
        );
        let new = &self.config.hosts;
        let find = |i: usize| old.get(i).and_then(|a| new.iter().position(|b| b == a));
        // The probe's connection, if any, to a server still in the list.
        if let Some(p) = &mut self.probe {
            if let Some((conn, host, deadline)) = p.conn {
                match find(host) {
                    Some(i) => p.conn = Some((conn, i, deadline)),
                    None => {
                        self.actions.push_back(Action::Disconnect { conn });
                        p.conn = None;
                        p.next_at = later(now, p.interval);
                    }
                }
            }
        }
        match self.link {
            Link::Up { conn, host } => match decision {
                Rebalance::Stay(i) => self.link = Link::Up { conn, host: i },
                Rebalance::Move => {
                    self.drop_link_then(now, DisconnectReason::Rebalance, true, None)
                }
                // Closing: stay for the reply.
                Rebalance::Replaced => {
                    let host = find(host).unwrap_or(usize::MAX);
                    self.link = Link::Up { conn, host };
                }
            },
            Link::Connecting {
                conn,
                host,
                deadline,
            } => match find(host) {
                Some(host) => {
                    self.hosts.attempting(host);
                    self.link = Link::Connecting {
                        conn,
                        host,
                        deadline,
                    };
                }
                None => self.abandon_attempt(conn, now),
            },
            Link::Handshaking {
                conn,
                host,
                deadline,
                short,
            } => match find(host) {
                Some(host) => {
                    self.hosts.attempting(host);
                    self.link = Link::Handshaking {
                        conn,
                        host,
                        deadline,
                        short,
                    };
                }
                None => self.abandon_attempt(conn, now),
            },
            Link::Idle {
                next: Some((_, at)),
            } => {
                let (host, _) = self.hosts.next(now, &mut self.rng);
                self.link = Link::Idle {
                    next: Some((host, at)),
                };
            }
            Link::Idle { next: None } => {}
        }
        Ok(())
    }

    pub(super) fn next_attempt(&mut self, now: Instant) {
        self.next_attempt_since(now, now)
    }

    /// The next attempt, its backoff (if any) counted from `since`.
    fn next_attempt_since(&mut self, since: Instant, now: Instant) {
        let (host, at) = self.hosts.next(since.min(now), &mut self.rng);
        if at <= now {
            self.connect(host, now);
        } else {
            self.link = Link::Idle {
                next: Some((host, at)),
            };
        }
    }

    pub(super) fn connect(&mut self, host: usize, now: Instant) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let Some(addr) = self.config.hosts.get(host).cloned() else {
            return;
        };
        self.actions.push_back(Action::Connect { conn, host: addr });
        self.attempt_started = now;
        self.link = Link::Connecting {
            conn,
            host,
            deadline: later(now, self.connect_timeout()),
        };
    }

    /// An attempt (connect or handshake) failed: try the next host.
    pub(super) fn attempt_failed(&mut self, now: Instant, reason: DisconnectReason, close: bool) {
        // The backoff counts from the failed attempt's start: an attempt that
        // waited out a handshake wait of 1 s has used up a backoff of at most 1 s.
        let since = match self.link {
            Link::Connecting { .. } | Link::Handshaking { .. } => self.attempt_started,
            _ => now,
        };
        if let Some(conn) = self.link_conn() {
            if close {
                self.actions.push_back(Action::Disconnect { conn });
            }
            self.events.push_back(Event::Disconnected { conn, reason });
        }
        self.rx.clear();
        self.tx.clear();
        self.sasl = None;
        self.hosts.on_failure();
        self.link = Link::Idle { next: None };
        if self.closing.is_some() {
            self.finish_close(now);
            return;
        }
        if let Some(max) = self.config.connect_max_rounds {
            if self.hosts.failed_rounds() >= max.max(1) {
                self.terminate(SessionState::Unreachable, ZkError::Unreachable, now);
                return;
            }
        }
        self.next_attempt_since(since, now);
    }

    /// An attempt to a server that left the host list: not a failure of that server.
    fn abandon_attempt(&mut self, conn: ConnId, now: Instant) {
        self.actions.push_back(Action::Disconnect { conn });
        self.events.push_back(Event::Disconnected {
            conn,
            reason: DisconnectReason::Rebalance,
        });
        self.rx.clear();
        self.tx.clear();
        self.link = Link::Idle { next: None };
        if self.closing.is_some() {
            self.finish_close(now);
            return;
        }
        self.next_attempt(now);
    }

    /// The session's connection is gone (or being abandoned).
    pub(super) fn drop_link(&mut self, now: Instant, reason: DisconnectReason, close: bool) {
        self.drop_link_then(now, reason, close, None)
    }

    /// Drops the connection, then connects to `then` (or the next host in rotation).
    pub(super) fn drop_link_then(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        close: bool,
        then: Option<usize>,
    ) {
        let Link::Up { conn, .. } = self.link else {
            // Closing is always safe: an abandoned handshake must not reach the server later.
            let _ = close;
            self.attempt_failed(now, reason, true);
            return;
        };
        // Always tell the adapter to close: an abandoned socket must send nothing more.
        self.actions.push_back(Action::Disconnect { conn });
        self.events.push_back(Event::Disconnected { conn, reason });
        self.rx.clear();
        self.tx.clear();
        self.sasl = None;
        self.link = Link::Idle { next: None };
        self.ping_inflight = false;
        self.set_watches_inflight.clear();
        self.stop_probe();
        let closing = self.closing.is_some();
        for f in std::mem::take(&mut self.inflight) {
            self.complete(f, Err(ZkError::ConnectionLoss));
        }
        for id in std::mem::take(&mut self.auth_inflight)
            .into_iter()
            .flatten()
        {
            self.events.push_back(Event::Completed {
                id,
                result: Err(ZkError::ConnectionLoss),
            });
        }
        if closing {
            self.finish_close(now);
            return;
        }
        self.last_contact = Some(self.last_recv);
        self.set_state(SessionState::Suspended);
        if self.config.queue_policy == QueuePolicy::FailFast {
            self.fail_queued(ZkError::NotConnected);
        }
        match then {
            Some(host) => self.connect(host, now),
            None => self.next_attempt(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, QueuePolicy};
    use crate::error::ZkError;
    use crate::sasl::SaslConfig;
    use crate::session::test_peer::{events, get_data, hosts, Peer};
    use crate::session::Event;

    /// A session whose SASL exchange is under way (requests and credentials wait for it).
    fn in_sasl(policy: QueuePolicy) -> Peer {
        let mut c = Config::new(hosts(1));
        c.sasl = Some(SaslConfig::digest_md5("bob", "pw"));
        c.queue_policy = policy;
        Peer::connected(c, false)
    }

    /// Under the Queue policy a request made while SASL runs keeps waiting when
    /// the connection is lost: it goes out on the next one, not NotConnected.
    #[test]
    fn a_queued_request_outlives_a_lost_connection() {
        let mut p = in_sasl(QueuePolicy::Queue);
        let id = p.s.submit(get_data("/a"), p.now).unwrap().id;
        p.s.handle_disconnected(p.conn, p.now);
        let completed = events(&mut p.s)
            .into_iter()
            .any(|e| matches!(e, Event::Completed { id: i, .. } if i == id));
        assert!(
            !completed,
            "the queued request completed on a connection loss"
        );
        assert_eq!(p.s.outstanding(), 1);
    }

    /// Under FailFast, losing the connection fails what waited for it: here a
    /// credential added while SASL ran fails with NotConnected.
    #[test]
    fn fail_fast_fails_a_waiting_credential_on_a_lost_connection() {
        let mut p = in_sasl(QueuePolicy::FailFast);
        let id = p.s.add_auth("digest", "a:a".into(), p.now).unwrap();
        p.s.handle_disconnected(p.conn, p.now);
        assert!(events(&mut p.s).contains(&Event::Completed {
            id,
            result: Err(ZkError::NotConnected),
        }));
    }

    /// `connection` names the connection only once the session is up on it
    /// (handshake done), not while it connects or handshakes.
    #[test]
    fn connection_is_the_one_up() {
        use crate::session::test_peer::{connect_response, t0};
        use crate::session::{Action, Session};
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        let Some(Action::Connect { conn, .. }) = s.poll_action() else {
            panic!("no connect");
        };
        assert_eq!(s.connection(), None);
        s.handle_connected(conn, now);
        assert_eq!(s.connection(), None);
        assert!(s.poll_transmit(now).is_some(), "the ConnectRequest");
        s.handle_input(conn, &connect_response(false), now);
        assert_eq!(s.connection(), Some(conn));
    }
}
