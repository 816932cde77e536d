//! Session tests against a hand-scripted peer: the test plays the adapter and the
//! server, feeding `handle_input` hand-encoded frames, for what the simulator
//! cannot stage (an adapter that stops taking bytes, chunks cut at chosen points).

use std::time::Duration;

use bytes::Bytes;
use zk_proto::jute::Encode;
use zk_proto::records::{PathWatchRequest, ReplyHeader, Stat};
use zk_proto::{
    Action, Config, ConnId, ErrorCode, Event, Request, Response, Session, SessionState, UsageError,
    ZkError,
};

#[path = "common/scripted.rs"]
mod scripted;
use scripted::{connect_response, frame, hosts, t0, Peer};

/// A getData reply: header, data, Stat.
fn get_data_reply(xid: i32, data: &[u8]) -> Vec<u8> {
    frame(|b| {
        ReplyHeader {
            xid,
            zxid: 5,
            err: ErrorCode::Ok,
        }
        .encode(b);
        Bytes::copy_from_slice(data).encode(b);
        Stat::default().encode(b);
    })
}

impl Peer {
    /// A session connected (handshake done) to a scripted server.
    fn connected(tweak: impl FnOnce(&mut Config)) -> Peer {
        let now = t0();
        let mut c = Config::new(hosts(1));
        tweak(&mut c);
        let mut s = Session::new(c, now);
        let Some(Action::Connect { conn, .. }) = s.poll_action() else {
            panic!("no connect")
        };
        s.handle_connected(conn, now);
        assert!(s.poll_transmit(now).is_some(), "the ConnectRequest");
        let resp = connect_response(10_000);
        s.handle_input(conn, &resp, now);
        assert_eq!(s.state(), SessionState::Connected);
        let mut p = Peer {
            s,
            conn,
            now,
            events: Vec::new(),
        };
        p.events();
        p
    }

    fn get_data(&mut self, path: &str) -> Result<zk_proto::Submitted, UsageError> {
        self.s.submit(
            Request::GetData(PathWatchRequest {
                path: path.into(),
                watch: false,
            }),
            self.now,
        )
    }

    /// A getData of `path` that sets a watch, answered by the server (reply xid `xid`).
    fn watched_read(&mut self, path: &str, xid: i32) {
        let read = self
            .s
            .submit(
                Request::GetData(PathWatchRequest {
                    path: path.into(),
                    watch: true,
                }),
                self.now,
            )
            .unwrap();
        let _read = self.s.poll_transmit(self.now).expect("the read");
        self.input(&get_data_reply(xid, b"x"));
        assert!(matches!(self.completion(read.id), Some(Ok(_))));
    }

    fn input(&mut self, data: &[u8]) {
        self.s.handle_input(self.conn, data, self.now);
    }

    fn completion(&mut self, id: zk_proto::RequestId) -> Option<Result<Response, ZkError>> {
        self.events();
        self.events.iter().find_map(|e| match e {
            Event::Completed { id: i, result } if *i == id => Some(result.clone()),
            _ => None,
        })
    }
}

/// Requests fail with OutboundFull while more than max_outbound bytes wait to be
/// taken by poll_transmit (a stuck socket), and work again once they are taken.
#[test]
fn submit_fails_while_the_outbound_bytes_exceed_max_outbound() {
    let mut p = Peer::connected(|c| c.max_outbound = 1000);
    let path = format!("/{}", "x".repeat(90)); // a 108-byte frame each
    let mut accepted = 0;
    let err = loop {
        match p.get_data(&path) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "never refused");
    };
    assert_eq!(err, UsageError::OutboundFull);
    // Refused only once over the bound: 10 * 108 > 1000 >= 9 * 108.
    assert_eq!(accepted, 10);
    assert_eq!(p.s.outstanding(), 10);
    // Nothing was half-registered for the refused request.
    assert_eq!(p.get_data(&path), Err(UsageError::OutboundFull));
    let t = p.s.poll_transmit(p.now).expect("the pending bytes");
    assert_eq!(t.data.len(), 10 * 108);
    assert!(p.get_data(&path).is_ok());
    assert!(
        !p.any_event(|e| matches!(e, Event::Completed { .. })),
        "{:?}",
        p.events
    );

    // The default is 64 MiB.
    assert_eq!(Config::new(hosts(1)).max_outbound, 64 << 20);
}

/// The oversized reply's xid may arrive in a later chunk than its length; the
/// rest of it may come byte by byte and share a chunk with the next reply.
#[test]
fn an_oversized_reply_is_skipped_however_it_is_chunked() {
    let mut p = Peer::connected(|c| c.max_frame = 100);
    let a = p.get_data("/a").unwrap().id;
    let b = p.get_data("/b").unwrap().id;
    let _ = p.s.poll_transmit(p.now);
    let big = get_data_reply(1, &[7; 500]);
    let small = get_data_reply(2, b"ok");
    p.input(&big[..6]);
    assert_eq!(p.completion(a), None, "waits for the xid");
    p.input(&big[6..9]);
    assert_eq!(
        p.completion(a),
        Some(Err(ZkError::ReplyTooLarge {
            size: 16 + 4 + 500 + 68,
            max: 100
        }))
    );
    for byte in &big[9..big.len() - 3] {
        p.input(std::slice::from_ref(byte));
    }
    let mut tail = big[big.len() - 3..].to_vec();
    tail.extend_from_slice(&small);
    p.input(&tail);
    let Some(Ok(Response::GetData(d))) = p.completion(b) else {
        panic!("{:?}", p.events)
    };
    assert_eq!(d.data.as_deref().unwrap(), b"ok");
    assert!(
        !p.any_event(|e| matches!(e, Event::Disconnected { .. })),
        "{:?}",
        p.events
    );
    assert_eq!(p.s.state(), SessionState::Connected);
    assert_eq!(p.s.last_zxid(), 5);
}

/// The per-attempt connect timeout is readable, for adapters that connect blocking.
#[test]
fn connect_timeout_is_exposed() {
    let now = t0();
    let mut c = Config::new(hosts(3));
    c.session_timeout = Duration::from_millis(9000);
    assert_eq!(
        Session::new(c.clone(), now).connect_timeout(),
        Duration::from_secs(3)
    );
    c.session_timeout = Duration::from_secs(600);
    assert_eq!(
        Session::new(c.clone(), now).connect_timeout(),
        Duration::from_secs(10),
        "at most 10 s"
    );
    c.connect_timeout = Some(Duration::from_millis(1234));
    assert_eq!(
        Session::new(c.clone(), now).connect_timeout(),
        Duration::from_millis(1234)
    );
    c.connect_timeout = Some(Duration::MAX);
    let s = Session::new(c, now);
    assert_eq!(s.connect_timeout(), Duration::MAX);
    assert!(s.poll_timeout().is_some_and(|t| t > now));
}

/// A server that takes the connection and never answers the handshake (ZooKeeper
/// 3.8 while it starts): the attempt is given up after 1 s, not the whole connect
/// timeout (10 s here), and the next one starts at once, the backoff having
/// passed during the wait; each unanswered handshake in a row doubles the wait,
/// up to the connect timeout, and an answer brings it back to 1 s.
#[test]
fn an_unanswered_handshake_is_given_up_after_a_second_and_tried_again_at_once() {
    use zk_proto::DisconnectReason;
    let start = t0();
    let mut c = Config::new(hosts(1));
    c.session_timeout = Duration::from_secs(30);
    let mut s = Session::new(c, start);
    assert_eq!(s.connect_timeout(), Duration::from_secs(10));
    let connect = |s: &mut Session| -> ConnId {
        let mut conn = None;
        while let Some(a) = s.poll_action() {
            if let Action::Connect { conn: c, .. } = a {
                conn = Some(c);
            }
        }
        conn.expect("a connect at once")
    };
    // Refused a few times: the backoff grows to its cap of 1 s.
    let mut now = start;
    for _ in 0..6 {
        let conn = connect(&mut s);
        s.handle_connect_failed(conn, now);
        now = s.poll_timeout().expect("the next attempt's time");
        s.handle_timeout(now);
    }
    while s.poll_event().is_some() {}
    let mut reasons = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..5 {
        let conn = connect(&mut s);
        s.handle_connected(conn, now);
        assert!(s.poll_transmit(now).is_some(), "the ConnectRequest");
        // No answer.
        let deadline = s.poll_timeout().expect("a handshake deadline");
        waits.push(deadline - now);
        now = deadline;
        s.handle_timeout(now);
        while let Some(e) = s.poll_event() {
            if let Event::Disconnected { reason, .. } = e {
                reasons.push(reason);
            }
        }
        assert_eq!(s.state(), SessionState::Connecting);
    }
    let secs = Duration::from_secs;
    assert_eq!(waits, [secs(1), secs(2), secs(4), secs(8), secs(10)]);
    assert_eq!(
        reasons[..4],
        [const { DisconnectReason::HandshakeTimeout }; 4],
        "{reasons:?}"
    );
    // At the connect timeout's cap the connect timeout is what ended it.
    assert_eq!(reasons[4], DisconnectReason::ConnectTimeout);
    // An answer: the session is up, and the next handshake gets 1 s again.
    let conn = connect(&mut s);
    s.handle_connected(conn, now);
    let _ = s.poll_transmit(now);
    let resp = connect_response(30_000);
    s.handle_input(conn, &resp, now);
    assert_eq!(s.state(), SessionState::Connected);
    s.handle_disconnected(conn, now);
    let conn = connect(&mut s);
    s.handle_connected(conn, now);
    assert_eq!(s.poll_timeout(), Some(now + secs(1)));
}

/// A notification with `event_type` on `path`, its header carrying `zxid`.
fn notification(zxid: i64, path: &str) -> Vec<u8> {
    frame(|b| {
        ReplyHeader {
            xid: -1,
            zxid,
            err: ErrorCode::Ok,
        }
        .encode(b);
        zk_proto::records::WatcherEvent {
            event_type: zk_proto::EventType::NodeDataChanged,
            state: zk_proto::types::KeeperState::SyncConnected,
            path: path.into(),
        }
        .encode(b);
    })
}

/// Issue 23: a watch event carries the zxid of the change when the server puts
/// it in the notification's header (3.9, ZOOKEEPER-4655); 3.8's -1 is none.
#[test]
fn a_watch_event_carries_the_notification_zxid() {
    let mut p = Peer::connected(|_| {});
    p.watched_read("/a", 1);
    p.input(&notification(0x1_0000_0007, "/a"));
    // Re-arm and let a 3.8 server fire it.
    p.watched_read("/a", 2);
    p.input(&notification(-1, "/a"));
    let zxids: Vec<Option<i64>> = p
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Watch { event, .. } => Some(event.zxid),
            _ => None,
        })
        .collect();
    assert_eq!(zxids, [Some(0x1_0000_0007), None]);
}

/// Issue 23: a traced request reports its xid and its request and reply sizes
/// on the wire right before it completes; an untraced one reports nothing.
#[test]
fn a_traced_request_reports_its_xid_and_sizes() {
    let mut p = Peer::connected(|_| {});
    let plain = p.get_data("/plain").unwrap();
    let traced = p.get_data("/traced").unwrap();
    assert!(p.s.trace_request(traced.id));
    // Only the latest request can be asked for.
    assert!(!p.s.trace_request(plain.id));
    let sent = p.s.poll_transmit(p.now).expect("both reads");
    p.input(&get_data_reply(1, b"abc"));
    let reply = get_data_reply(2, b"hello");
    p.input(&reply);
    assert!(matches!(p.completion(traced.id), Some(Ok(_))));
    let traces: Vec<&Event> = p
        .events()
        .iter()
        .filter(|e| matches!(e, Event::RequestTraced { .. }))
        .collect();
    // "/plain" and "/traced" frames differ by one byte.
    let traced_len = sent.data.len().div_ceil(2);
    assert_eq!(
        traces,
        [&Event::RequestTraced {
            id: traced.id,
            xid: 2,
            request_bytes: traced_len as u32,
            response_bytes: reply.len() as u32,
        }]
    );
    // It comes right before its completion.
    let at = p
        .events
        .iter()
        .position(|e| matches!(e, Event::RequestTraced { .. }))
        .unwrap();
    assert!(matches!(&p.events[at + 1], Event::Completed { id, .. } if *id == traced.id));

    // Queued while disconnected, it is traced once sent.
    p.s.handle_disconnected(p.conn, p.now);
    let queued = p.get_data("/q").unwrap();
    assert!(p.s.trace_request(queued.id));
}
