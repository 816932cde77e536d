//! Unit tests of [`Session`](super::Session) that state behaviours the other
//! suites left unstated (each was found by a mutant that survived them: see
//! `scripts/mutants.sh`). The test plays adapter and server with hand-written
//! frames, on a clock it moves by hand.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::*;
use crate::config::HostAddr;
use crate::frame::write_frame;
use crate::records::{CreateRequest, PathRequest, PathResponse, Stat};
use crate::records::{MultiRequest, PathWatchRequest};

#[allow(clippy::disallowed_methods)] // a test needs some instant to start from
fn t0() -> Instant {
    Instant::now() // clock-exception: a test's start instant
}

fn hosts(n: usize) -> Vec<HostAddr> {
    (0..n)
        .map(|i| HostAddr {
            host: format!("h{i}"),
            port: 2181,
        })
        .collect()
}

fn frame(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, f);
    b.to_vec()
}

fn connect_response(read_only: bool) -> Vec<u8> {
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

fn reply(xid: i32, body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    reply_at(xid, 9, body)
}

fn reply_at(xid: i32, zxid: i64, body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
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
fn sent(bytes: &[u8]) -> Vec<(i32, OpCode)> {
    let mut d = FrameDecoder::new(1 << 20);
    d.push(bytes);
    let mut out = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        let h = RequestHeader::decode(&mut Reader::new(f)).unwrap();
        out.push((h.xid, h.op));
    }
    out
}

fn get_data(path: &str) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: None,
        acl: crate::records::Acl::open_unsafe(),
        flags,
    })
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A session on a scripted server: handshake done, every output drained.
struct Peer {
    s: Session,
    conn: ConnId,
    now: Instant,
}

impl Peer {
    fn connected(config: Config, read_only: bool) -> Peer {
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

    /// Sends what the session has for the server; the frames' (xid, opcode).
    fn transmit(&mut self) -> Vec<(i32, OpCode)> {
        let mut out = Vec::new();
        while let Some(t) = self.s.poll_transmit(self.now) {
            assert_eq!(t.conn, self.conn);
            out.extend(sent(&t.data));
        }
        out
    }
}

/// A session timeout too long to double (a config asking for "forever") still
/// gives a read timeout of two thirds of it, without overflowing.
#[test]
fn read_timeout_is_two_thirds_even_of_a_huge_session_timeout() {
    let mut c = Config::new(hosts(1));
    c.session_timeout = Duration::MAX;
    let s = Session::new(c, t0());
    assert_eq!(s.read_timeout(), Duration::MAX / 3 * 2);

    let mut c = Config::new(hosts(1));
    c.session_timeout = Duration::from_secs(30);
    assert_eq!(
        Session::new(c, t0()).read_timeout(),
        Duration::from_secs(20)
    );
}

/// sync's reply names the path synced as a client path: the chroot comes off it,
/// like a created node's name.
#[test]
fn a_sync_reply_is_a_client_path_under_a_chroot() {
    let mut c = Config::new(hosts(1));
    c.chroot = Chroot::new("/app").unwrap();
    let mut p = Peer::connected(c, false);
    let id =
        p.s.submit(Request::Sync(PathRequest { path: "/x".into() }), p.now)
            .unwrap()
            .id;
    let [(xid, OpCode::Sync)] = p.transmit()[..] else {
        panic!("one sync sent");
    };
    let r = reply(xid, |b| {
        PathResponse {
            path: "/app/x".into(),
        }
        .encode(b)
    });
    p.s.handle_input(p.conn, &r, p.now);
    assert!(events(&mut p.s).contains(&Event::Completed {
        id,
        result: Ok(Response::Sync(PathResponse { path: "/x".into() })),
    }));
}

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

/// On a read-only server the session probes the others for a read-write one,
/// the first time 100 ms after connecting, not before (an early timer call, say
/// for a ping, starts nothing).
#[test]
fn the_read_only_probe_waits_for_its_interval() {
    let mut c = Config::new(hosts(2));
    c.read_only = true;
    let mut p = Peer::connected(c, true);
    assert_eq!(p.s.state(), SessionState::ConnectedReadOnly);
    let current = p.s.current_host().cloned();
    assert_eq!(p.s.poll_timeout(), Some(p.now + PROBE_FIRST));

    p.s.handle_timeout(p.now + PROBE_FIRST / 2);
    assert_eq!(p.s.poll_action(), None, "no probe before its time");

    p.s.handle_timeout(p.now + PROBE_FIRST);
    match p.s.poll_action() {
        Some(Action::Connect { host, .. }) => assert_ne!(Some(host), current),
        other => panic!("a probe of the other host, got {other:?}"),
    }
}

/// `wants_transmit` says whether bytes wait for `poll_transmit` (adapters skip
/// the write path when it says no).
#[test]
fn wants_transmit_says_whether_bytes_wait() {
    let mut p = Peer::connected(Config::new(hosts(1)), false);
    assert!(!p.s.wants_transmit());
    p.s.submit(get_data("/a"), p.now).unwrap();
    assert!(p.s.wants_transmit());
    assert_eq!(p.transmit().len(), 1);
    assert!(!p.s.wants_transmit());
}

/// A sequential node's path may end in `/` (the server appends the counter: the
/// node is named by its number alone), in a create, a TTL create and in a multi;
/// any other path may not.
#[test]
fn a_sequential_create_may_end_in_a_slash() {
    let now = t0();
    let mut s = Session::new(Config::new(hosts(1)), now);
    let seq = CreateMode::PersistentSequential.flags();
    assert!(s.submit(create("/jobs/", seq), now).is_ok());
    assert!(matches!(
        s.submit(create("/jobs/", CreateMode::Persistent.flags()), now),
        Err(UsageError::InvalidPath { .. })
    ));
    let ttl = Request::CreateTtl(crate::records::CreateTtlRequest {
        path: "/jobs/".into(),
        data: None,
        acl: crate::records::Acl::open_unsafe(),
        flags: CreateMode::PersistentSequentialWithTtl(1000).flags(),
        ttl: 1000,
    });
    assert!(s.submit(ttl, now).is_ok());
    let multi = |flags| {
        Request::Multi(MultiRequest {
            ops: vec![MultiOp::Create {
                req: match create("/jobs/", flags) {
                    Request::Create(r) => r,
                    _ => unreachable!(),
                },
                op: OpCode::Create,
            }],
        })
    };
    assert!(s.submit(multi(seq), now).is_ok());
    assert!(s.submit(multi(0), now).is_err());
}

/// Freeing idle memory never drops what waits: requests queued while
/// disconnected are still there after `shrink_idle`, and still complete.
#[test]
fn shrink_idle_keeps_queued_requests() {
    let now = t0();
    let mut s = Session::new(Config::new(hosts(1)), now);
    let ids: Vec<RequestId> = (0..3)
        .map(|_| s.submit(get_data("/a"), now).unwrap().id)
        .collect();
    s.shrink_idle();
    assert_eq!(s.outstanding(), 3);
    s.close(now);
    let failed: Vec<RequestId> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Completed {
                id,
                result: Err(ZkError::SessionClosed),
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(failed, ids);
}

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
