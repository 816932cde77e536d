//! The members' fault state: stopped, read-only, lagging and held members, and
//! the quorum that expiry needs.

use std::time::Instant;

use super::SimCluster;

/// One member's fault state.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) up: bool,
    pub(super) read_only: bool,
    pub(super) hold: bool,
    pub(super) lag_zxid: Option<i64>,
}

impl SimCluster {
    /// Crashes a member: its connections close at once (unsent output is lost)
    /// and it refuses connections until started. Sessions survive.
    pub fn stop_member(&mut self, m: usize, now: Instant) {
        let Some(member) = self.members.get_mut(m) else {
            return;
        };
        member.up = false;
        member.hold = false;
        self.close_member_conns(m, false);
        self.drop_local_sessions(m);
        self.update_quorum(now);
    }

    /// Restarts a stopped member.
    pub fn start_member(&mut self, m: usize, now: Instant) {
        if let Some(member) = self.members.get_mut(m) {
            member.up = true;
        }
        self.update_quorum(now);
    }

    /// Whether the member is up.
    pub fn is_up(&self, m: usize) -> bool {
        self.members.get(m).is_some_and(|x| x.up)
    }

    /// Puts a member in or out of read-only mode. Its connections are closed
    /// (the server restarts in the new mode) and its local sessions dropped.
    pub fn set_read_only(&mut self, m: usize, ro: bool, now: Instant) {
        let Some(member) = self.members.get_mut(m) else {
            return;
        };
        if member.read_only == ro {
            return;
        }
        member.read_only = ro;
        self.close_member_conns(m, true);
        self.drop_local_sessions(m);
        self.update_quorum(now);
    }

    /// Freezes (true) or unfreezes the zxid the member reports: while frozen, a
    /// client whose lastZxidSeen is beyond it is closed without a response.
    pub fn set_lagging(&mut self, m: usize, lagging: bool) {
        let zxid = self.zxid;
        if let Some(member) = self.members.get_mut(m) {
            member.lag_zxid = if lagging { Some(zxid) } else { None };
        }
    }

    /// Holds (true) the member's request pipeline, or releases it (false), which
    /// answers every held request in order. Auth is never held.
    pub fn set_hold(&mut self, m: usize, hold: bool, now: Instant) {
        let Some(member) = self.members.get_mut(m) else {
            return;
        };
        member.hold = hold;
        if hold {
            return;
        }
        for id in self.member_conns(m) {
            while let Some((xid, op, body)) =
                self.conns.get_mut(&id).and_then(|c| c.held.pop_front())
            {
                self.execute(id, xid, op, body, now);
            }
        }
    }

    fn update_quorum(&mut self, now: Instant) {
        let q = self.members.iter().any(|m| m.up && !m.read_only);
        if q && !self.quorum {
            for s in self.sessions.values_mut() {
                s.last_heard = now;
            }
        }
        self.quorum = q;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::error::ErrorCode;
    use crate::jute::from_bytes;
    use crate::ops::{Request, Response};
    use crate::records::{AuthPacket, ConnectResponse, PathRequest};
    use crate::testing::server::sessions::password_for;
    use crate::testing::server::test_wire::{create, pw, req_frame, split, Cli, T};

    #[test]
    fn read_only_member() {
        let (mut t, rw) = T::with_node(2, create("/r", b"data", 0));
        t.c.set_read_only(1, true, t.now);
        // A client without the read-only flag is closed with no response.
        let (conn, out) = t.handshake(1, 0, &[0; 16], Some(false));
        assert!(out.is_empty());
        assert_eq!(t.closes(), vec![conn]);
        // A global session is refused too.
        let (conn, out) = t.handshake(1, rw.sid, &password_for(rw.sid), Some(true));
        assert!(out.is_empty());
        assert_eq!(t.closes(), vec![conn]);
        // A read-only client gets a new local session.
        let (conn, out) = t.handshake(1, 0, &[0; 16], Some(true));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.read_only, Some(true));
        assert!(resp.timeout > 0);
        let ro = Cli {
            conn,
            sid: resp.session_id,
        };
        let Response::GetData(d) = t.ok(ro, 1, &Request::GetData(pw("/r", false))) else {
            panic!()
        };
        assert_eq!(d.data.as_deref(), Some(&b"data"[..]));
        assert_eq!(
            t.err(ro, 2, &Request::Create(create("/w", b"", 0))),
            ErrorCode::NotReadOnly
        );
        assert_eq!(
            t.err(ro, 3, &Request::Sync(PathRequest { path: "/".into() })),
            ErrorCode::NotReadOnly
        );
        // Its local session is unknown elsewhere.
        t.refused_resume(0, ro.sid, Some(true));
    }

    #[test]
    fn held_pipeline_lets_auth_overtake() {
        let (mut t, a) = T::with_session(1);
        t.c.set_hold(0, true, t.now);
        t.send(a.conn, &req_frame(1, &Request::GetData(pw("/", false))));
        t.send(
            a.conn,
            &req_frame(
                -4,
                &Request::Auth(AuthPacket {
                    auth_type: 0,
                    scheme: "digest".into(),
                    auth: Bytes::from_static(b"u:p"),
                }),
            ),
        );
        t.send(a.conn, &req_frame(2, &Request::Ping));
        let xids: Vec<i32> = t.out(a.conn).iter().map(|f| split(f).0.xid).collect();
        assert_eq!(xids, vec![-4]);
        t.c.set_hold(0, false, t.now);
        let xids: Vec<i32> = t.out(a.conn).iter().map(|f| split(f).0.xid).collect();
        assert_eq!(xids, vec![1, -2]);
    }

    #[test]
    fn stop_member_closes_connections_and_drops_unsent_output() {
        let (mut t, a) = T::with_session(2);
        t.send(a.conn, &req_frame(1, &Request::Ping));
        t.c.stop_member(0, t.now);
        assert!(t.out(a.conn).is_empty());
        assert_eq!(t.closes(), vec![a.conn]);
        assert!(t.c.session_alive(a.sid));
        // Resume on the other member.
        let (_, out) = t.handshake(1, a.sid, &password_for(a.sid), Some(false));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.session_id, a.sid);
    }
}
