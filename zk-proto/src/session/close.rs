//! How a session ends: `close` (closeSession and its bounded wait), `abandon`,
//! `restart`, expiry, and the cleanup every ending shares: each request, credential
//! wait and watch registration gets its last event.

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::ExpiryPolicy;
use crate::error::ZkError;
use crate::ops::Request;
use crate::time::later;

use super::{Action, Event, Link, Origin, RemovalReason, Session, SessionState};

impl Session {
    /// Ends the session: sends closeSession and waits (bounded) for its reply.
    /// Requests already sent still complete; queued ones fail with SessionClosed.
    ///
    /// Why: closing (rather than dropping the connection) deletes the session's
    /// ephemeral nodes at once instead of after the session timeout. The
    /// crate-level example closes a connected session; here one that never connected:
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::{Config, Event, PathRequest, Request, Session, SessionState, ZkError};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1").unwrap(), now);
    /// let waiting = session.submit(Request::Sync(PathRequest { path: "/".into() }), now).unwrap();
    ///
    /// session.close(now);
    /// assert_eq!(session.state(), SessionState::Closed);
    /// let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    /// assert!(events.contains(&Event::Completed {
    ///     id: waiting.id,
    ///     result: Err(ZkError::SessionClosed)
    /// }));
    /// ```
    pub fn close(&mut self, now: Instant) {
        let now = self.clock(now);
        if self.state.is_terminal() || self.closing.is_some() {
            return;
        }
        self.fail_queued(ZkError::SessionClosed);
        if matches!(self.link, Link::Up { .. }) {
            self.send_own(Request::CloseSession, Origin::Close, now);
            self.closing = Some(later(now, self.config.close_timeout));
        } else {
            self.finish_close(now);
        }
    }

    /// Drops the connection and stops, without ending the session on the server:
    /// its ephemerals stay until it expires, and another client may resume it with
    /// [`credentials`](Session::credentials). This is what a crashed process
    /// leaves behind; useful to hand a session over.
    pub fn abandon(&mut self, now: Instant) {
        let now = self.clock(now);
        if !self.state.is_terminal() {
            self.terminate(SessionState::Closed, ZkError::SessionClosed, now);
        }
    }

    /// Starts a brand-new session (keeps config and credentials): kazoo's
    /// `restart()`, which is `stop()` then `start()`. A live session is closed
    /// first, as by [`close`](Session::close) (its ephemerals go, its watchers
    /// end, state listeners see `Closed`), and the new one starts as soon as
    /// the server has answered the close (or its timeout passed). Requests
    /// queued before the call fail with `SessionClosed` as on any close;
    /// requests submitted after it wait (with [`QueuePolicy::Queue`](crate::QueuePolicy::Queue)) for the
    /// new session. After a terminal state the new session starts at once. The
    /// count of failed rounds ([`Config::connect_max_rounds`](crate::Config::connect_max_rounds)) and the backoff
    /// start again.
    ///
    /// Why: with [`Config::connect_max_rounds`](crate::Config::connect_max_rounds) or [`ExpiryPolicy::Terminal`] a
    /// session can stop for good; an application that wants to go on reuses the
    /// same `Session` rather than rebuilding its config. And an application
    /// that wants a fresh session (to drop every ephemeral and watch at once)
    /// gets one without rebuilding its client.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::{Action, Config, Session, SessionState};
    ///
    /// let t0 = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut config = Config::from_connect_string("zk1:2181").unwrap();
    /// config.connect_max_rounds = Some(1);
    /// let mut session = Session::new(config, t0);
    /// let Some(Action::Connect { conn, .. }) = session.poll_action() else { panic!() };
    /// session.handle_connect_failed(conn, t0 + Duration::from_millis(1));
    /// assert_eq!(session.state(), SessionState::Unreachable);
    /// assert!(session.poll_timeout().is_none()); // nothing more will happen
    ///
    /// session.restart(t0 + Duration::from_secs(60));
    /// assert_eq!(session.state(), SessionState::Connecting);
    /// assert!(matches!(session.poll_action(), Some(Action::Connect { .. })));
    /// ```
    pub fn restart(&mut self, now: Instant) {
        let now = self.clock(now);
        if self.state.is_terminal() {
            self.start_new(now);
            return;
        }
        self.restart_pending = true;
        // A close under way (the user's own, or an earlier restart's) goes on;
        // the new session follows it.
        self.close(now);
    }

    fn start_new(&mut self, now: Instant) {
        self.session = None;
        self.session_global = false;
        self.negotiated = None;
        self.closing = None;
        self.last_contact = None;
        self.unanswered_handshakes = 0;
        self.hosts.reset();
        self.set_state(SessionState::Connecting);
        self.next_attempt(now);
    }

    pub(super) fn finish_close(&mut self, now: Instant) {
        let restart = self.restart_pending;
        // What was submitted after restart() waits for the new session.
        let waiting = if restart {
            std::mem::take(&mut self.queued)
        } else {
            VecDeque::new()
        };
        self.terminate(SessionState::Closed, ZkError::SessionClosed, now);
        if restart {
            self.queued = waiting;
            self.start_new(now);
        }
    }

    /// Ends the session for good (or until a restart / new session).
    pub(super) fn terminate(&mut self, to: SessionState, err: ZkError, _now: Instant) {
        if let Some(conn) = self.link_conn() {
            self.actions.push_back(Action::Disconnect { conn });
        }
        self.link = Link::Idle { next: None };
        self.rx.clear();
        self.tx.clear();
        self.sasl = None;
        self.stop_probe();
        self.ping_inflight = false;
        self.set_watches_inflight.clear();
        for f in std::mem::take(&mut self.inflight) {
            let e = if f.origin == Origin::Close {
                err.clone()
            } else if matches!(err, ZkError::SessionClosed) {
                ZkError::ConnectionLoss
            } else {
                err.clone()
            };
            self.complete(f, Err(e));
        }
        for id in std::mem::take(&mut self.auth_inflight)
            .into_iter()
            .flatten()
        {
            self.events.push_back(Event::Completed {
                id,
                result: Err(err.clone()),
            });
        }
        self.fail_queued(err.clone());
        for watcher in self.watches.drain() {
            self.events.push_back(Event::WatcherRemoved {
                watcher,
                reason: RemovalReason::SessionEnded(err.clone()),
            });
        }
        self.cancelled.clear();
        self.closing = None;
        self.restart_pending = false;
        self.set_state(to);
    }

    pub(super) fn expire(&mut self, now: Instant) {
        self.terminate(SessionState::Expired, ZkError::SessionExpired, now);
        self.session = None;
        self.session_global = false;
        self.negotiated = None;
        self.last_contact = None;
        if self.config.expiry_policy == ExpiryPolicy::NewSession {
            self.set_state(SessionState::Connecting);
            self.next_attempt(now);
        }
    }

    pub(super) fn fail_queued(&mut self, err: ZkError) {
        for q in std::mem::take(&mut self.queued) {
            if let Some(w) = q.watch {
                if !self.cancelled.remove(&w.id) {
                    self.events.push_back(Event::WatcherRemoved {
                        watcher: w.id,
                        reason: RemovalReason::NotSet(err.clone()),
                    });
                }
            }
            self.events.push_back(Event::Completed {
                id: q.id,
                result: Err(err.clone()),
            });
        }
        for c in &mut self.creds {
            for id in c.waiting.drain(..) {
                self.events.push_back(Event::Completed {
                    id,
                    result: Err(err.clone()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::error::ZkError;
    use crate::session::test_peer::{events, get_data, hosts, Peer};
    use crate::session::{Event, SessionState};
    use crate::types::OpCode;

    /// A request in flight when the session is dropped without a close
    /// (`abandon`, or a close whose reply never came) may have been applied:
    /// it fails with ConnectionLoss, not SessionClosed (which says it was not sent).
    #[test]
    fn requests_in_flight_when_a_session_is_dropped_fail_with_connection_loss() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let id = p.s.submit(get_data("/a"), p.now).unwrap().id;
        assert_eq!(p.transmit().len(), 1);
        p.s.abandon(p.now);
        assert_eq!(p.s.state(), SessionState::Closed);
        assert!(events(&mut p.s).contains(&Event::Completed {
            id,
            result: Err(ZkError::ConnectionLoss),
        }));

        // The same after a close whose reply does not come in time: the close itself
        // ends the session, the read sent before it is lost to the caller.
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let id = p.s.submit(get_data("/a"), p.now).unwrap().id;
        p.s.close(p.now);
        let ops: Vec<OpCode> = p.transmit().into_iter().map(|(_, op)| op).collect();
        assert_eq!(ops, [OpCode::GetData, OpCode::CloseSession]);
        let deadline = p.s.poll_timeout().unwrap();
        assert!(deadline <= p.now + p.s.config().close_timeout);
        p.s.handle_timeout(p.now + p.s.config().close_timeout);
        assert_eq!(p.s.state(), SessionState::Closed);
        assert!(events(&mut p.s).contains(&Event::Completed {
            id,
            result: Err(ZkError::ConnectionLoss),
        }));
    }
}
