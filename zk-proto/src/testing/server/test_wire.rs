//! A raw client for the simulated server's unit tests: connections, hand-written
//! frames in, the server's frames out and decoded, on a clock moved by hand.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::error::ErrorCode;
use crate::frame::write_frame;
use crate::jute::{from_bytes, Decode, Encode, Reader};
use crate::ops::{Request, Response};
use crate::records::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, PathWatchRequest, ReplyHeader,
    RequestHeader, WatcherEvent,
};
use crate::testing::server::sessions::password_for;
use crate::testing::server::{SimCluster, SimConnId};
use crate::time::later;
use crate::types::{EventType, KeeperState};

pub(super) struct T {
    pub(super) c: SimCluster,
    pub(super) now: Instant,
    pub(super) next_conn: u64,
}

/// A raw client: a connection and its session.
#[derive(Clone, Copy)]
pub(super) struct Cli {
    pub(super) conn: SimConnId,
    pub(super) sid: i64,
}

pub(super) fn frame(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, f);
    b.to_vec()
}

pub(super) fn connect_frame(
    sid: i64,
    passwd: &[u8],
    last_zxid: i64,
    timeout: i32,
    ro: Option<bool>,
) -> Vec<u8> {
    frame(|b| {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout,
            session_id: sid,
            passwd: Bytes::copy_from_slice(passwd),
            read_only: ro,
        }
        .encode(b)
    })
}

pub(super) fn req_frame(xid: i32, req: &Request) -> Vec<u8> {
    frame(|b| {
        RequestHeader {
            xid,
            op: req.opcode(),
        }
        .encode(b);
        req.encode_body(b);
    })
}

pub(super) fn create(path: &str, data: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open_unsafe(),
        flags,
    }
}

pub(super) fn pw(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
}

/// A decoded server frame: a reply (header + body) for one connection.
pub(super) fn split(frame: &Bytes) -> (ReplyHeader, Bytes) {
    let payload = frame.slice(4..);
    let mut r = Reader::new(payload.clone());
    let h = ReplyHeader::decode(&mut r).unwrap();
    (h, payload.slice(16..))
}

impl T {
    #[allow(clippy::disallowed_methods)] // a test needs some instant to start from
    pub(super) fn new(members: usize) -> T {
        let now = Instant::now(); // clock-exception: test start instant
        T {
            c: SimCluster::new(members, now),
            now,
            next_conn: 1,
        }
    }

    /// A cluster of `members` with one session connected to member 0.
    pub(super) fn with_session(members: usize) -> (T, Cli) {
        let (t, [cli]) = T::with_sessions(members, [0]);
        (t, cli)
    }

    /// A cluster of `members` with a session connected to each of `on`, in order.
    pub(super) fn with_sessions<const N: usize>(members: usize, on: [usize; N]) -> (T, [Cli; N]) {
        let mut t = T::new(members);
        let clis = on.map(|m| t.session(m));
        (t, clis)
    }

    /// [`T::with_session`] whose session then created a node (xid 1).
    pub(super) fn with_node(members: usize, node: CreateRequest) -> (T, Cli) {
        let (mut t, cli) = T::with_session(members);
        t.ok(cli, 1, &Request::Create(node));
        (t, cli)
    }

    pub(super) fn advance(&mut self, ms: u64) {
        self.now = later(self.now, Duration::from_millis(ms));
        self.c.handle_timeout(self.now);
    }

    pub(super) fn accept(&mut self, member: usize) -> SimConnId {
        let id = SimConnId(self.next_conn);
        self.next_conn += 1;
        assert!(self.c.accept(member, id, self.now));
        id
    }

    pub(super) fn send(&mut self, conn: SimConnId, bytes: &[u8]) {
        self.c.handle_input(conn, bytes, self.now);
    }

    /// All queued frames for `conn` (other connections' frames are kept).
    pub(super) fn out(&mut self, conn: SimConnId) -> Vec<Bytes> {
        let mut mine = Vec::new();
        let mut rest = VecDeque::new();
        while let Some((c, b)) = self.c.poll_output() {
            if c == conn {
                mine.push(b);
            } else {
                rest.push_back((c, b));
            }
        }
        self.c.output = rest;
        mine
    }

    pub(super) fn closes(&mut self) -> Vec<SimConnId> {
        std::iter::from_fn(|| self.c.poll_close()).collect()
    }

    pub(super) fn handshake(
        &mut self,
        member: usize,
        sid: i64,
        passwd: &[u8],
        ro: Option<bool>,
    ) -> (SimConnId, Vec<Bytes>) {
        let conn = self.accept(member);
        self.send(conn, &connect_frame(sid, passwd, 0, 10_000, ro));
        let out = self.out(conn);
        (conn, out)
    }

    pub(super) fn session(&mut self, member: usize) -> Cli {
        let (conn, out) = self.handshake(member, 0, &[0; 16], Some(false));
        assert_eq!(out.len(), 1);
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        Cli {
            conn,
            sid: resp.session_id,
        }
    }

    /// Sends a request and returns every frame the connection got back.
    pub(super) fn call(&mut self, cli: Cli, xid: i32, req: &Request) -> Vec<(ReplyHeader, Bytes)> {
        self.send(cli.conn, &req_frame(xid, req));
        self.out(cli.conn).iter().map(split).collect()
    }

    /// Sends a request and returns its reply (the last frame), checking the xid.
    pub(super) fn ok(&mut self, cli: Cli, xid: i32, req: &Request) -> Response {
        let frames = self.call(cli, xid, req);
        let (h, body) = frames.last().cloned().expect("a reply");
        assert_eq!(h.xid, xid);
        assert_eq!(h.err, ErrorCode::Ok, "{req:?}");
        Response::decode_body(req.opcode(), &mut Reader::new(body)).unwrap()
    }

    pub(super) fn err(&mut self, cli: Cli, xid: i32, req: &Request) -> ErrorCode {
        let frames = self.call(cli, xid, req);
        let (h, body) = frames.last().cloned().expect("a reply");
        assert_eq!(h.xid, xid);
        assert!(body.is_empty(), "error replies carry no body");
        h.err
    }
}

impl T {
    /// The watch events queued for `conn`, decoded (see [`event`]).
    pub(super) fn events(&mut self, conn: SimConnId) -> Vec<(EventType, String)> {
        self.out(conn)
            .iter()
            .map(split)
            .map(|f| event(&f))
            .collect()
    }

    /// A handshake resuming session `sid` (with its right password) on `member`
    /// that the server refuses: an invalid (timeout 0) response, then a close.
    pub(super) fn refused_resume(&mut self, member: usize, sid: i64, ro: Option<bool>) {
        let (conn, out) = self.handshake(member, sid, &password_for(sid), ro);
        let resp: ConnectResponse = from_bytes(out[0].slice(4..)).unwrap();
        assert_eq!(resp.timeout, 0);
        assert_eq!(self.closes(), vec![conn]);
    }
}

pub(super) fn event(frame: &(ReplyHeader, Bytes)) -> (EventType, String) {
    assert_eq!(frame.0.xid, -1);
    assert_eq!(frame.0.zxid, -1);
    let e: WatcherEvent = from_bytes(frame.1.clone()).unwrap();
    assert_eq!(e.state, KeeperState::SyncConnected);
    (e.event_type, e.path)
}
