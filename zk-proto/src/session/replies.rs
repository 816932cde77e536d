//! Bytes in on the session's connection: frames, the xid order (a reply answers
//! the oldest request in flight), an oversized reply skipped, and completions.

use std::time::Instant;

use bytes::Bytes;

use crate::error::{DecodeError, ErrorCode, ZkError};
use crate::frame::MAX_SKIPPABLE_FRAME;
use crate::jute::{Decode, Reader};
use crate::ops::Response;
use crate::records::{ReplyHeader, WatcherEvent};
use crate::types::OpCode;
use crate::watches::WatchKind;

use super::{
    ConnId, DisconnectReason, Event, InFlight, Link, Origin, RemovalReason, Session, LOCAL_XID,
    XID_AUTH, XID_NOTIFICATION, XID_PING, XID_SET_WATCHES,
};

impl Session {
    /// Bytes arrived on `conn`.
    pub fn handle_input(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        let now = self.clock(now);
        if self.link_conn() != Some(conn) {
            if let Some(p) = &mut self.probe {
                if p.conn.map(|c| c.0) == Some(conn) && p.answer.len() < 16 {
                    let room = 16 - p.answer.len();
                    p.answer.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            return;
        }
        self.last_recv = now;
        self.rx.push(data);
        loop {
            if self.link_conn() != Some(conn) {
                return;
            }
            let frame = match self.rx.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(DecodeError::FrameLength { len, max })
                    if matches!(self.link, Link::Up { .. })
                        && len >= 0
                        && len as usize <= MAX_SKIPPABLE_FRAME =>
                {
                    // An oversized reply: if it answers the oldest request, fail
                    // just that one and skip the frame; anything else is garbage.
                    let Some(xid) = self.rx.peek_xid() else {
                        return; // wait for the xid
                    };
                    if xid > 0 && self.inflight.front().is_some_and(|f| f.xid == xid) {
                        self.rx.skip_frame();
                        self.reply_too_large(len as usize, max, now);
                        continue;
                    }
                    let e = DecodeError::FrameLength { len, max };
                    self.drop_link(now, DisconnectReason::Malformed(e), false);
                    return;
                }
                Err(e) => {
                    self.drop_link(now, DisconnectReason::Malformed(e), false);
                    return;
                }
            };
            match self.link {
                Link::Handshaking { .. } => self.on_connect_response(frame, now),
                Link::Up { .. } => self.on_reply(frame, now),
                _ => return,
            }
        }
    }

    fn on_reply(&mut self, frame: Bytes, now: Instant) {
        // The frame plus its length prefix: what the reply cost on the wire.
        self.reply_bytes = u32::try_from(frame.len() + 4).unwrap_or(u32::MAX);
        self.on_reply_frame(frame, now);
        self.reply_bytes = 0;
    }

    fn on_reply_frame(&mut self, frame: Bytes, now: Instant) {
        let mut r = Reader::new(frame);
        let header = match ReplyHeader::decode(&mut r) {
            Ok(h) => h,
            Err(e) => {
                self.drop_link(now, DisconnectReason::Malformed(e), true);
                return;
            }
        };
        match header.xid {
            XID_NOTIFICATION => match WatcherEvent::decode(&mut r) {
                // 3.9 sends the change's zxid (ZOOKEEPER-4655); 3.8 sends -1.
                Ok(ev) => self.on_notification(ev, (header.zxid > 0).then_some(header.zxid)),
                Err(e) => self.drop_link(now, DisconnectReason::Malformed(e), true),
            },
            XID_PING => {
                self.ping_inflight = false;
                self.ping_ack = now;
            }
            XID_AUTH => self.on_auth_reply(header.err, now),
            XID_SET_WATCHES => self.on_set_watches_reply(header.err),
            xid => {
                let expected = self.inflight.front().map(|f| f.xid);
                if expected != Some(xid) {
                    self.drop_link(
                        now,
                        DisconnectReason::XidOutOfOrder { expected, got: xid },
                        true,
                    );
                    return;
                }
                let Some(f) = self.inflight.pop_front() else {
                    return;
                };
                if f.origin == Origin::Sasl {
                    self.on_sasl_reply(header.err, &mut r, now);
                    return;
                }
                if header.zxid > 0 {
                    self.last_zxid = self.last_zxid.max(header.zxid);
                }
                if !header.err.is_ok() {
                    let code = header.err;
                    let origin = f.origin;
                    self.complete(f, Err(ZkError::Server(code)));
                    self.complete_local_front();
                    if origin == Origin::Close {
                        self.finish_close(now);
                    }
                    return;
                }
                match Response::decode_body(f.op, &mut r) {
                    Ok(resp) => {
                        let origin = f.origin;
                        self.complete(f, Ok(resp));
                        self.complete_local_front();
                        if origin == Origin::Close {
                            self.finish_close(now);
                        }
                    }
                    Err(e) => {
                        self.complete(f, Err(ZkError::Malformed(e.clone())));
                        self.drop_link(now, DisconnectReason::Malformed(e), true);
                    }
                }
            }
        }
    }

    /// The oldest request's reply is over `max` bytes (and being skipped): it fails
    /// alone, with [`ZkError::ReplyTooLarge`]; the connection stays.
    fn reply_too_large(&mut self, size: usize, max: usize, now: Instant) {
        let Some(f) = self.inflight.pop_front() else {
            return;
        };
        let origin = f.origin;
        self.reply_bytes = u32::try_from(size + 4).unwrap_or(u32::MAX);
        self.complete(f, Err(ZkError::ReplyTooLarge { size, max }));
        self.reply_bytes = 0;
        self.complete_local_front();
        if origin == Origin::Close {
            self.finish_close(now);
        }
    }

    /// Completes the locally answered entries now at the front of the queue.
    fn complete_local_front(&mut self) {
        while self.inflight.front().is_some_and(|f| f.xid == LOCAL_XID) {
            if let Some(f) = self.inflight.pop_front() {
                self.complete(f, Ok(Response::Multi(Default::default())));
            }
        }
    }

    /// Finishes a request: arms its watch, strips the chroot, emits the completion.
    pub(super) fn complete(&mut self, f: InFlight, mut result: Result<Response, ZkError>) {
        if f.xid == LOCAL_XID {
            result = Ok(Response::Multi(Default::default()));
        }
        if let Some(intent) = f.watch {
            let cancelled = self.cancelled.remove(&intent.id);
            let kind = match (&result, intent.kind) {
                (Ok(_), k) => Some(k),
                (Err(ZkError::Server(ErrorCode::NoNode)), WatchKind::Data)
                    if f.op == OpCode::Exists =>
                {
                    Some(WatchKind::Exist)
                }
                _ => None,
            };
            match (kind, cancelled) {
                (None, true) => {}
                // Cancelled while in flight, but the server armed it: unless another
                // registration still needs that server watch, remove it there too.
                (Some(kind), true) => self.unarm_cancelled(&intent.path, kind),
                (Some(kind), false) => self.watches.insert(intent.id, intent.path, kind),
                (None, false) => self.events.push_back(Event::WatcherRemoved {
                    watcher: intent.id,
                    reason: RemovalReason::NotSet(
                        result.clone().err().unwrap_or(ZkError::ConnectionLoss),
                    ),
                }),
            }
        }
        if let (Ok(_), Some((path, wt))) = (&result, &f.remove_type) {
            self.remove_local(path, *wt);
        }
        let Origin::User(id) = f.origin else {
            return;
        };
        if let (Ok(resp), false) = (&mut result, f.unchrooted) {
            self.strip_chroot(resp);
        }
        // The reply's bytes belong to the first request it completes (not to the
        // locally answered ones behind it).
        let response_bytes = std::mem::take(&mut self.reply_bytes);
        if f.traced && f.xid != LOCAL_XID {
            self.events.push_back(Event::RequestTraced {
                id,
                xid: f.xid,
                request_bytes: f.request_bytes,
                response_bytes,
            });
        }
        self.events.push_back(Event::Completed { id, result });
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::config::Config;
    use crate::jute::Encode;
    use crate::records::Stat;
    use crate::session::test_peer::{get_data, hosts, reply, reply_at, Peer};

    /// A reply's zxid is remembered (the next handshake sends it, so a server that
    /// is behind refuses the session); zxids of 0 (pings, errors some servers
    /// send) never lower it.
    #[test]
    fn the_last_zxid_seen_is_the_highest() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        assert_eq!(p.s.last_zxid(), 0);
        p.s.submit(get_data("/a"), p.now).unwrap();
        let [(xid, _)] = p.transmit()[..] else {
            panic!()
        };
        let r = reply(xid, |b| {
            Bytes::from_static(b"v").encode(b);
            Stat::default().encode(b);
        });
        p.s.handle_input(p.conn, &r, p.now);
        assert_eq!(p.s.last_zxid(), 9);

        p.s.submit(get_data("/a"), p.now).unwrap();
        let [(xid, _)] = p.transmit()[..] else {
            panic!()
        };
        let r = reply_at(xid, 0, |b| {
            Bytes::from_static(b"v").encode(b);
            Stat::default().encode(b);
        });
        p.s.handle_input(p.conn, &r, p.now);
        assert_eq!(p.s.last_zxid(), 9);
    }

    /// A traced request whose reply is too large to take reports the reply's
    /// whole length on the wire (its length prefix included), as for any reply.
    #[test]
    fn a_reply_too_large_is_traced_at_its_wire_length() {
        use crate::error::ZkError;
        use crate::session::test_peer::events;
        use crate::session::Event;
        let mut c = Config::new(hosts(1));
        c.max_frame = 64;
        let mut p = Peer::connected(c, false);
        let id = p.s.submit(get_data("/a"), p.now).unwrap().id;
        assert!(p.s.trace_request(id));
        let [(xid, _)] = p.transmit()[..] else {
            panic!("one getData sent")
        };
        let r = reply(xid, |b| {
            Bytes::from(vec![0u8; 100]).encode(b);
            Stat::default().encode(b);
        });
        let size = r.len() - 4;
        p.s.handle_input(p.conn, &r, p.now);
        let ev = events(&mut p.s);
        assert!(
            ev.iter().any(|e| matches!(e,
                Event::RequestTraced { id: i, response_bytes, .. }
                    if *i == id && *response_bytes as usize == size + 4)),
            "{ev:?}"
        );
        assert!(ev.contains(&Event::Completed {
            id,
            result: Err(ZkError::ReplyTooLarge { size, max: 64 }),
        }));
    }

    /// The read-only probe keeps at most 16 bytes of what a probed server sends
    /// (its answer is `rw` or `ro`), however the bytes arrive.
    #[test]
    fn a_probe_answer_is_kept_to_16_bytes() {
        let (mut p, probe, now) = Peer::probing();
        p.s.handle_connected(probe, now);
        p.s.handle_input(probe, &[b'x'; 10], now);
        p.s.handle_input(probe, &[b'x'; 10], now);
        assert_eq!(p.s.probe.as_ref().map(|p| p.answer.len()), Some(16));
    }

    /// An empty multi behind a request in flight is never sent: it completes in
    /// its turn, right after the reply to the request before it.
    #[test]
    fn an_empty_multi_completes_right_after_the_reply_before_it() {
        use crate::ops::Request;
        use crate::records::MultiRequest;
        use crate::session::test_peer::events;
        use crate::session::Event;
        use crate::types::OpCode;
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let read = p.s.submit(get_data("/a"), p.now).unwrap().id;
        let multi = Request::Multi(MultiRequest::default());
        let multi = p.s.submit(multi, p.now).unwrap().id;
        let [(xid, OpCode::GetData)] = p.transmit()[..] else {
            panic!("only the getData sent")
        };
        let r = reply(xid, |b| {
            Bytes::from_static(b"v").encode(b);
            Stat::default().encode(b);
        });
        p.s.handle_input(p.conn, &r, p.now);
        let done: Vec<_> = events(&mut p.s)
            .into_iter()
            .filter_map(|e| match e {
                Event::Completed { id, result } => Some((id, result.is_ok())),
                _ => None,
            })
            .collect();
        assert_eq!(done, [(read, true), (multi, true)]);
        assert_eq!(p.s.outstanding(), 0);
    }

    /// Bytes on a connection that is neither the session's nor the probe's (a
    /// stale socket) are ignored: a stray `rw` there does not move the session
    /// when the probe then ends without an answer.
    #[test]
    fn stray_bytes_are_not_the_probes_answer() {
        use crate::session::ConnId;
        let (mut p, probe, now) = Peer::probing();
        p.s.handle_connected(probe, now);
        p.s.handle_input(ConnId(99), b"rw", now);
        p.s.handle_disconnected(probe, now);
        assert_eq!(p.s.poll_action(), None, "the session stays");
        assert_eq!(p.s.connection(), Some(p.conn));
    }
}
