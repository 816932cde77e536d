//! Commands to the ensemble (a member's restart, read-only mode or held pipeline,
//! a session's expiry, a write from outside), each followed by moving the
//! cluster's output onto the wire.

use crate::error::ErrorCode;
use crate::ops::{Request, Response};

use super::SimNet;

impl SimNet {
    /// Crashes a member (its connections close; connects are refused).
    ///
    /// Why: to test that code on a session survives a server restart: the session
    /// is suspended, moves to another member and keeps its id.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::SessionState;
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(3, 7, start);
    /// let config = net.config(&[0, 1, 2]);
    /// let ci = net.add_client(config);
    /// net.run_until(|n| n.state(ci) == SessionState::Connected, Duration::from_secs(5));
    /// let (id, member) = (net.session(ci).session_id(), net.client_member(ci).unwrap());
    ///
    /// net.stop_member(member);
    /// let moved = |n: &SimNet| {
    ///     n.state(ci) == SessionState::Connected && n.client_member(ci) != Some(member)
    /// };
    /// assert!(net.run_until(moved, Duration::from_secs(10)));
    /// assert!(net.client(ci).states().contains(&SessionState::Suspended));
    /// assert_eq!(net.session(ci).session_id(), id);
    /// ```
    pub fn stop_member(&mut self, member: usize) {
        self.cluster.stop_member(member, self.now);
        self.pump_server();
    }

    /// Restarts a member.
    pub fn start_member(&mut self, member: usize) {
        self.cluster.start_member(member, self.now);
        self.pump_server();
    }

    /// Puts a member in or out of read-only mode (its connections close).
    pub fn set_read_only(&mut self, member: usize, ro: bool) {
        self.cluster.set_read_only(member, ro, self.now);
        self.pump_server();
    }

    /// Holds or releases a member's request pipeline (auth is never held).
    pub fn set_hold(&mut self, member: usize, hold: bool) {
        self.cluster.set_hold(member, hold, self.now);
        self.pump_server();
    }

    /// Expires a session on the cluster now.
    pub fn expire_session(&mut self, session_id: i64) {
        self.cluster.expire_session(session_id, self.now);
        self.pump_server();
    }

    /// Applies a write from outside any session (watches fire).
    pub fn admin(&mut self, req: Request) -> Result<Response, ErrorCode> {
        let r = self.cluster.admin(req, self.now);
        self.pump_server();
        r
    }
}
