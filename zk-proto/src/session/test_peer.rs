//! A scripted peer for the session's unit tests: it plays adapter and server
//! with hand-written frames, on a clock it moves by hand. The tests beside each
//! concern's code state behaviours the other suites left unstated (each was found
//! by a mutant that survived them: see `scripts/mutants.sh`).

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::{Action, ConnId, Event, Session};
use crate::config::Config;
use crate::config::HostAddr;
use crate::error::ErrorCode;
use crate::frame::write_frame;
use crate::frame::FrameDecoder;
use crate::jute::{Decode, Encode, Reader};
use crate::ops::Request;
use crate::records::{ConnectResponse, ReplyHeader, RequestHeader};
use crate::records::{CreateRequest, PathWatchRequest};
use crate::types::OpCode;

#[allow(clippy::disallowed_methods)] // a test needs some instant to start from
pub(super) fn t0() -> Instant {
    Instant::now() // clock-exception: a test's start instant
}

pub(super) fn hosts(n: usize) -> Vec<HostAddr> {
    (0..n)
        .map(|i| HostAddr {
            host: format!("h{i}"),
            port: 2181,
        })
        .collect()
}

pub(super) fn frame(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, f);
    b.to_vec()
}

pub(super) fn connect_response(read_only: bool) -> Vec<u8> {
    frame(|b| {
        ConnectResponse {
            protocol_version: 0,
            timeout: 30_000,
            session_id: 7,
            passwd: Bytes::from_static(&[1; 16]),
            read_only: Some(read_only),
        }
        .encode(b)
    })
}

pub(super) fn reply(xid: i32, body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    reply_at(xid, 9, body)
}

pub(super) fn reply_at(xid: i32, zxid: i64, body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    frame(|b| {
        ReplyHeader {
            xid,
            zxid,
            err: ErrorCode::Ok,
        }
        .encode(b);
        body(b);
    })
}

/// The requests in `bytes` (whole frames), as (xid, opcode).
pub(super) fn sent(bytes: &[u8]) -> Vec<(i32, OpCode)> {
    let mut d = FrameDecoder::new(1 << 20);
    d.push(bytes);
    let mut out = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        let h = RequestHeader::decode(&mut Reader::new(f)).unwrap();
        out.push((h.xid, h.op));
    }
    out
}

pub(super) fn get_data(path: &str) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

pub(super) fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: None,
        acl: crate::records::Acl::open_unsafe(),
        flags,
    })
}

pub(super) fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A session on a scripted server: handshake done, every output drained.
pub(super) struct Peer {
    pub(super) s: Session,
    pub(super) conn: ConnId,
    pub(super) now: Instant,
}

impl Peer {
    pub(super) fn connected(config: Config, read_only: bool) -> Peer {
        let now = t0();
        let mut s = Session::new(config, now);
        let Some(Action::Connect { conn, .. }) = s.poll_action() else {
            panic!("no connect");
        };
        s.handle_connected(conn, now);
        assert!(s.poll_transmit(now).is_some(), "the ConnectRequest");
        s.handle_input(conn, &connect_response(read_only), now);
        while s.poll_transmit(now).is_some() {}
        events(&mut s);
        Peer { s, conn, now }
    }

    /// A read-only session on two hosts at the moment its first read-write probe
    /// starts: the peer, the probe's connection (asked for, not yet connected)
    /// and the instant the probe began.
    pub(super) fn probing() -> (Peer, ConnId, Instant) {
        let mut c = Config::new(hosts(2));
        c.read_only = true;
        let mut p = Peer::connected(c, true);
        let t = p.now + super::probe::PROBE_FIRST;
        p.s.handle_timeout(t);
        let Some(Action::Connect { conn: probe, .. }) = p.s.poll_action() else {
            panic!("no probe");
        };
        (p, probe, t)
    }

    /// Sends what the session has for the server; the frames' (xid, opcode).
    pub(super) fn transmit(&mut self) -> Vec<(i32, OpCode)> {
        let mut out = Vec::new();
        while let Some(t) = self.s.poll_transmit(self.now) {
            assert_eq!(t.conn, self.conn);
            out.extend(sent(&t.data));
        }
        out
    }
}
