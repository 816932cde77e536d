//! The net as the sessions' adapter: commands on a client's session, each
//! followed by a drain of its outputs per the polling contract (its actions and
//! transmits go to the wire).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{UsageError, ZkError};
use crate::ops::{Request, Response};
use crate::session::{RequestId, Session, SessionState, Submitted};
use crate::watches::WatcherId;

use super::{member_of, SimClient, SimNet};

impl SimNet {
    /// The client.
    pub fn client(&self, ci: usize) -> &SimClient {
        &self.clients[ci]
    }

    /// The client's session.
    pub fn session(&self, ci: usize) -> &Session {
        &self.clients[ci].session
    }

    /// The client's state.
    pub fn state(&self, ci: usize) -> SessionState {
        self.clients[ci].session.state()
    }

    /// Submits a request now.
    pub fn submit(&mut self, ci: usize, req: Request) -> Result<Submitted, UsageError> {
        let r = self.clients[ci].session.submit(req, self.now);
        self.drain_client(ci);
        r
    }

    /// Adds credentials now.
    pub fn add_auth(
        &mut self,
        ci: usize,
        scheme: &str,
        auth: &[u8],
    ) -> Result<RequestId, UsageError> {
        let r = self.clients[ci]
            .session
            .add_auth(scheme, Bytes::copy_from_slice(auth), self.now);
        self.drain_client(ci);
        r
    }

    /// Removes a watch registration now.
    pub fn remove_watcher(&mut self, ci: usize, w: WatcherId) {
        self.clients[ci].session.remove_watcher(w, self.now);
        self.drain_client(ci);
    }

    /// Closes the session now.
    pub fn close(&mut self, ci: usize) {
        self.clients[ci].session.close(self.now);
        self.drain_client(ci);
    }

    /// Restarts a terminal session now.
    pub fn restart(&mut self, ci: usize) {
        self.clients[ci].session.restart(self.now);
        self.drain_client(ci);
    }

    /// Runs any command on the client's session now (with the current time), then
    /// drains its outputs like every other command.
    pub fn with_session<R>(&mut self, ci: usize, f: impl FnOnce(&mut Session, Instant) -> R) -> R {
        let r = f(&mut self.clients[ci].session, self.now);
        self.drain_client(ci);
        r
    }

    /// Submits and runs until the request completes (or `max` passes).
    pub fn call(
        &mut self,
        ci: usize,
        req: Request,
        max: Duration,
    ) -> Option<Result<Response, ZkError>> {
        let id = self.submit(ci, req).ok()?.id;
        self.run_until(|n| n.clients[ci].completion(id).is_some(), max);
        self.clients[ci].completion(id).cloned()
    }

    /// The member the client's session connection is on (or being opened to).
    pub fn client_member(&self, ci: usize) -> Option<usize> {
        self.clients[ci].session.current_host().and_then(member_of)
    }

    /// Drains the session's outputs per the polling contract.
    pub(super) fn drain_client(&mut self, ci: usize) {
        loop {
            let mut progressed = false;
            while let Some(a) = self.clients[ci].session.poll_action() {
                progressed = true;
                self.on_action(ci, a);
            }
            while let Some(t) = self.clients[ci].session.poll_transmit(self.now) {
                progressed = true;
                self.on_transmit(ci, t.conn, t.data);
            }
            while let Some(e) = self.clients[ci].session.poll_event() {
                progressed = true;
                self.clients[ci].events.push((self.now, e));
            }
            if !progressed {
                break;
            }
        }
        if let Some(t) = self.clients[ci].session.poll_timeout() {
            if t < self.now {
                self.violations.push(format!(
                    "client {ci}: poll_timeout {:?} before now {:?} after a drain",
                    t - self.start,
                    self.now - self.start
                ));
            }
        }
    }
}
