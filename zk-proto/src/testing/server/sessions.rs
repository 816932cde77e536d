//! Sessions: the handshake (a new, resumed, refused or read-only local session),
//! the per-session expiry clock, and ending a session (its ephemerals deleted, their
//! watches fired).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::jute::{Decode, Encode, Reader};
use crate::records::{ConnectRequest, ConnectResponse};
use crate::time::later;

use super::{tree::Ctx, watches::Trigger, SimCluster, SimConnId};

/// A session the ensemble knows: global, or local to one read-only member.
#[derive(Debug, Clone)]
pub(super) struct SimSession {
    pub(super) passwd: Bytes,
    pub(super) timeout_ms: i32,
    pub(super) conn: Option<SimConnId>,
    pub(super) last_heard: Instant,
    /// `Some(member)` for a local session created by a read-only member.
    pub(super) local_to: Option<usize>,
}

impl SimSession {
    fn deadline(&self) -> Instant {
        later(
            self.last_heard,
            Duration::from_millis(self.timeout_ms.max(0) as u64),
        )
    }
}

/// Password bytes for a session id: deterministic, distinct per session.
pub(super) fn password_for(id: i64) -> Bytes {
    let mut out = Vec::with_capacity(16);
    let mut x = id as u64 ^ 0x5a5a_1234_dead_beef;
    for _ in 0..2 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    Bytes::from(out)
}

impl SimCluster {
    /// When the next session expires, if the ensemble has a quorum.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.quorum {
            return None;
        }
        self.sessions.values().map(SimSession::deadline).min()
    }

    /// Expires every session whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.quorum {
            return;
        }
        let due: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline() <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.expire_session(id, now);
        }
    }

    /// Expires a session now: ephemerals deleted (watches fire), its connection closed.
    pub fn expire_session(&mut self, session_id: i64, now: Instant) {
        if !self.sessions.contains_key(&session_id) {
            return;
        }
        let zxid = self.next_zxid();
        if let Some(conn) = self.kill_session(session_id, zxid, now) {
            self.close_conn(conn, true);
        }
    }

    pub(super) fn handshake(&mut self, cid: SimConnId, frame: Bytes, now: Instant) {
        let mut r = Reader::new(frame);
        let Ok(req) = ConnectRequest::decode(&mut r) else {
            self.close_conn(cid, true);
            return;
        };
        let Some(member) = self.conns.get(&cid).map(|c| c.member) else {
            return;
        };
        let ro = self.members[member].read_only;
        if ro && req.read_only != Some(true) {
            self.close_conn(cid, true);
            return;
        }
        if req.last_zxid_seen > self.visible_zxid(member) {
            self.close_conn(cid, true);
            return;
        }
        let ro_byte = req.read_only.is_some();
        let timeout = self.negotiate(req.timeout);
        let sid = if req.session_id == 0 {
            let id = ((member as i64 + 1) << 56) | self.next_session;
            self.next_session += 1;
            if !ro {
                self.next_zxid();
            }
            self.sessions.insert(
                id,
                SimSession {
                    passwd: password_for(id),
                    timeout_ms: timeout,
                    conn: None,
                    last_heard: now,
                    local_to: ro.then_some(member),
                },
            );
            id
        } else {
            let valid = match self.sessions.get(&req.session_id) {
                Some(s) => {
                    if ro && s.local_to != Some(member) {
                        // A read-only server refuses global sessions outright.
                        self.close_conn(cid, true);
                        return;
                    }
                    s.passwd == req.passwd && s.local_to.is_none_or(|m| m == member)
                }
                None if ro => {
                    self.close_conn(cid, true);
                    return;
                }
                None => false,
            };
            if !valid {
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout: 0,
                    session_id: 0,
                    passwd: Bytes::from_static(&[0; 16]),
                    read_only: req.read_only.map(|_| ro),
                };
                self.push_frame(cid, |b| resp.encode(b));
                self.close_conn(cid, true);
                return;
            }
            req.session_id
        };
        let old = {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            s.timeout_ms = timeout;
            s.last_heard = now;
            s.conn.replace(cid)
        };
        if let Some(old) = old.filter(|o| *o != cid) {
            // The session moved: the older connection is closed.
            if let Some(c) = self.conns.get_mut(&old) {
                c.session = None;
            }
            self.close_conn(old, true);
        }
        let passwd = self.sessions[&sid].passwd.clone();
        if let Some(c) = self.conns.get_mut(&cid) {
            c.session = Some(sid);
            c.ro_byte = ro_byte;
        }
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id: sid,
            passwd,
            read_only: req.read_only.map(|_| ro),
        };
        self.push_frame(cid, |b| resp.encode(b));
    }

    fn negotiate(&self, requested: i32) -> i32 {
        requested.clamp(self.min_timeout, self.max_timeout)
    }

    /// Ends a session: deletes its ephemerals in txn `zxid`, fires their watches,
    /// forgets it. Returns the connection it was attached to.
    pub(super) fn kill_session(&mut self, sid: i64, zxid: i64, now: Instant) -> Option<SimConnId> {
        let _ = now;
        let s = self.sessions.remove(&sid)?;
        let paths: Vec<String> = self
            .tree
            .ephemerals
            .remove(&sid)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        let mut triggers = Vec::new();
        for p in paths.iter().rev() {
            self.tree.remove(p, zxid);
            triggers.push(Trigger::Deleted(p.clone()));
        }
        self.fire(triggers);
        s.conn
    }

    pub(super) fn drop_local_sessions(&mut self, m: usize) {
        self.sessions.retain(|_, s| s.local_to != Some(m));
    }

    pub(super) fn ctx(&self, cid: SimConnId) -> Ctx {
        let Some(c) = self.conns.get(&cid) else {
            return Ctx::default();
        };
        let session = c.session.unwrap_or(0);
        Ctx {
            session,
            local: self
                .sessions
                .get(&session)
                .is_some_and(|s| s.local_to.is_some()),
            digest_ids: c.digest_users.iter().map(|(_, id)| id.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::password_for;
    use crate::jute::from_bytes;
    use crate::ops::Request;
    use crate::records::ConnectResponse;
    use crate::testing::server::test_wire::{connect_frame, create, pw, T};
    use crate::testing::server::SimConnId;
    use crate::types::EventType;

    #[test]
    fn handshake_new_session_and_timeout_clamp() {
        let mut t = T::new(3);
        let conn = t.accept(1);
        t.send(conn, &connect_frame(0, &[0; 16], 0, 100_000, Some(false)));
        let out = t.out(conn);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].len(),
            4 + 37,
            "ConnectResponse with the read-only byte"
        );
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.timeout, 40_000);
        assert_eq!(resp.session_id >> 56, 2, "top byte is the member id");
        assert_eq!(resp.passwd.len(), 16);
        assert_eq!(resp.read_only, Some(false));
        assert!(t.c.session_alive(resp.session_id));

        // Without the trailing byte: 36 bytes; timeout clamped up.
        let conn = t.accept(0);
        t.send(conn, &connect_frame(0, &[0; 16], 0, 1, None));
        let out = t.out(conn);
        assert_eq!(out[0].len(), 4 + 36);
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.timeout, 4000);
        assert_eq!(resp.read_only, None);
    }

    #[test]
    fn handshake_in_any_chunking() {
        let mut t = T::new(1);
        let conn = t.accept(0);
        let bytes = connect_frame(0, &[0; 16], 0, 10_000, Some(false));
        for b in &bytes {
            t.send(conn, std::slice::from_ref(b));
        }
        assert_eq!(t.out(conn).len(), 1);
    }

    #[test]
    fn resume_moves_session_and_closes_old_connection() {
        let (mut t, a) = T::with_session(3);
        let passwd = password_for(a.sid);
        let (b, out) = t.handshake(2, a.sid, &passwd, Some(false));
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.session_id, a.sid);
        assert_eq!(resp.passwd, passwd);
        assert_eq!(t.closes(), vec![a.conn]);
        assert_eq!(t.c.session_conn(a.sid), Some(b));
    }

    #[test]
    fn wrong_password_and_unknown_session_get_invalid_response_then_close() {
        let (mut t, a) = T::with_session(1);
        for (sid, pw) in [(a.sid, [7u8; 16]), (12345, [0; 16])] {
            let (conn, out) = t.handshake(0, sid, &pw, Some(false));
            assert_eq!(out.len(), 1);
            let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
            assert_eq!(resp.timeout, 0);
            assert_eq!(resp.session_id, 0);
            assert_eq!(&resp.passwd[..], &[0; 16]);
            assert_eq!(t.closes(), vec![conn]);
        }
        assert!(
            t.c.session_alive(a.sid),
            "a wrong password does not hurt the session"
        );
    }

    #[test]
    fn client_ahead_of_server_is_closed_without_response() {
        let (mut t, a) = T::with_session(2);
        t.c.set_lagging(1, true);
        t.ok(a, 1, &Request::Create(create("/x", b"", 0)));
        let zxid = t.c.last_zxid();
        let conn = t.accept(1);
        t.send(conn, &connect_frame(0, &[0; 16], zxid, 10_000, Some(false)));
        assert!(t.out(conn).is_empty());
        assert_eq!(t.closes(), vec![conn]);
        // The up-to-date member accepts it.
        let conn = t.accept(0);
        t.send(conn, &connect_frame(0, &[0; 16], zxid, 10_000, Some(false)));
        assert_eq!(t.out(conn).len(), 1);
    }

    #[test]
    fn close_session_replies_then_closes_and_deletes_ephemerals() {
        let (mut t, a) = T::with_node(1, create("/e", b"", 1));
        let frames = t.call(a, 2, &Request::CloseSession);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.xid, 2);
        assert_eq!(t.closes(), vec![a.conn]);
        assert!(!t.c.session_alive(a.sid));
        assert!(t.c.get("/e").is_none());
    }

    #[test]
    fn expiry_deletes_ephemerals_and_fires_watches() {
        let (mut t, [a, b]) = T::with_sessions(2, [0, 1]);
        t.ok(a, 1, &Request::Create(create("/eph", b"", 1)));
        t.ok(b, 1, &Request::GetData(pw("/eph", true)));
        assert_eq!(t.c.session_timeout(a.sid), Some(10_000));
        // A's client goes away; B keeps pinging.
        t.c.handle_closed(a.conn, t.now);
        t.advance(6000);
        assert_eq!(t.call(b, 2, &Request::Ping)[0].0.xid, -2);
        t.advance(3999);
        assert!(t.c.session_alive(a.sid));
        assert_eq!(t.c.poll_timeout(), Some(t.now + Duration::from_millis(1)));
        t.advance(1);
        assert!(!t.c.session_alive(a.sid));
        assert!(t.c.get("/eph").is_none());
        assert_eq!(
            t.events(b.conn),
            vec![(EventType::NodeDeleted, "/eph".to_owned())]
        );
        // Resuming it now: invalid response, then close.
        t.refused_resume(0, a.sid, Some(false));
    }

    #[test]
    fn attached_but_silent_session_expires_and_its_connection_closes() {
        let (mut t, a) = T::with_session(1);
        t.advance(9999);
        assert!(t.c.session_alive(a.sid));
        t.advance(1);
        assert!(!t.c.session_alive(a.sid));
        assert_eq!(t.closes(), vec![a.conn]);
    }

    #[test]
    fn no_expiry_without_quorum_and_clock_restarts_after() {
        let (mut t, a) = T::with_session(2);
        t.c.stop_member(0, t.now);
        t.c.stop_member(1, t.now);
        assert_eq!(t.closes(), vec![a.conn]);
        assert_eq!(t.c.poll_timeout(), None);
        t.advance(60_000);
        assert!(t.c.session_alive(a.sid));
        assert!(!t.c.accept(0, SimConnId(999), t.now));
        t.c.start_member(1, t.now);
        assert_eq!(
            t.c.poll_timeout(),
            Some(t.now + Duration::from_millis(10_000))
        );
    }
}
