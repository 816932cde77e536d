//! Limits and edge cases: maximal durations, repeated credentials, frame sizes.

use std::time::Duration;

use zk_proto::config::Backoff;
use zk_proto::testing::net::{ClientFrame, Dir, SimNet};
use zk_proto::{
    AddWatchMode, Config, DisconnectReason, ErrorCode, Event, EventType, OpCode, RemovalReason,
    Request, RequestId, Response, SessionState, WatcherId, ZkError,
};

use super::helpers::{
    add_watch, close, connected_client, create, disconnect_reasons, ev, exists, failed_with, fired,
    get_data, ms, net, no_violations, ok, reconnect, scenario, set_data, submit, wait_for,
    LOST_ONCE_THEN_CLOSED, S,
};
use super::timers::ping_times;

pub(crate) fn removal_reason(net: &SimNet, ci: usize, watcher: WatcherId) -> Option<RemovalReason> {
    net.client(ci).events.iter().find_map(|(_, e)| match e {
        Event::WatcherRemoved { watcher: w, reason } if *w == watcher => Some(reason.clone()),
        _ => None,
    })
}

fn all_max(c: &mut Config) {
    c.connect_timeout = Some(Duration::MAX);
    c.request_timeout = Some(Duration::MAX);
    c.session_timeout = Duration::MAX;
    c.close_timeout = Duration::MAX;
    c.backoff = Backoff {
        base: Duration::MAX,
        max: Duration::MAX,
        jitter: 1.0,
    };
}

/// `Duration::MAX` for every timeout knob: deadlines saturate instead of
/// overflowing `Instant` (which panicked), and nothing times out spuriously.
#[test]
fn duration_max_timeouts_never_panic() {
    let mut n = net(2, 50);
    let ci = connected_client(&mut n, &[0, 1], all_max);
    ok(&mut n, ci, create("/d", b"", 0));
    let (_, w) = submit(&mut n, ci, get_data("/d", true));
    n.advance(60 * S);
    assert!(disconnect_reasons(&n, ci).is_empty());
    assert!(
        ping_times(&n, ci).len() >= 5,
        "pings keep the session alive"
    );
    n.admin(set_data("/d", b"x")).unwrap();
    n.advance(ms(10));
    assert_eq!(fired(&n, ci, w), [ev(EventType::NodeDataChanged, "/d")]);
    // Through a reconnect (client-side expiry timer, next attempt, SetWatches).
    reconnect(&mut n, ci);
    ok(&mut n, ci, get_data("/d", false));
    close(&mut n, ci, S);
    assert_eq!(n.client(ci).states(), LOST_ONCE_THEN_CLOSED);
    no_violations(&n);

    // A failed pass backs off by "never" (about 30 years), without panicking.
    let mut n = net(1, 51);
    n.stop_member(0);
    let mut c = n.config(&[0]);
    all_max(&mut c);
    let ci = n.add_client(c);
    n.advance(10 * S);
    assert_eq!(n.client(ci).connects.len(), 1);
    let next = n.session(ci).poll_timeout().expect("a next attempt");
    assert!(next > n.now() + Duration::from_secs(10 * 365 * 24 * 3600));
    n.close(ci);
    assert_eq!(n.state(ci), SessionState::Closed);
    no_violations(&n);
}

/// The same credential added 5 times is one credential: replayed once per
/// reconnect, while every add_auth call still completes exactly once.
#[test]
fn a_credential_added_many_times_is_replayed_once() {
    scenario(2, 52, |n, ci| {
        let ids: Vec<RequestId> = (0..5)
            .map(|_| n.add_auth(ci, "digest", b"alice:secret").unwrap())
            .collect();
        n.advance(ms(10));
        n.reset_session_conn(ci);
        // Added again while disconnected: completed by the one replay.
        let more: Vec<RequestId> = (0..3)
            .map(|_| n.add_auth(ci, "digest", b"alice:secret").unwrap())
            .collect();
        n.cluster.clear_request_log();
        wait_for(n, ci, SessionState::Connected, 10 * S);
        n.advance(ms(10));
        let auths = n
            .cluster
            .request_log()
            .iter()
            .filter(|(_, _, op)| *op == OpCode::Auth)
            .count();
        assert_eq!(auths, 1, "{:?}", n.cluster.request_log());
        for id in ids.iter().chain(&more) {
            assert_eq!(n.client(ci).completions(*id), 1);
            assert_eq!(n.client(ci).completion(*id), Some(&Ok(Response::Empty)));
        }
        let Response::WhoAmI(w) = ok(n, ci, Request::WhoAmI) else {
            panic!()
        };
        assert!(w.client_info.iter().any(|c| c.user == "alice"));
    });
}

/// getConfig is a request of its own: the chroot does not apply to it, while a
/// getData of "/zookeeper/config" is chrooted like any other path.
#[test]
fn get_config_skips_the_chroot_but_get_data_of_its_path_does_not() {
    let mut n = net(1, 53);
    let server_config = &b"server.0=m0:2888:3888:participant;0.0.0.0:2181\nversion=0"[..];
    n.admin(set_data("/zookeeper/config", server_config))
        .unwrap();
    for p in ["/app", "/app/zookeeper"] {
        n.admin(create(p, b"", 0)).unwrap();
    }
    n.admin(create("/app/zookeeper/config", b"chrooted", 0))
        .unwrap();
    let ci = connected_client(&mut n, &[0], |c| {
        c.chroot = zk_proto::path::Chroot::new("/app").unwrap()
    });
    let Response::GetData(d) = ok(&mut n, ci, get_data("/zookeeper/config", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_deref().unwrap(), b"chrooted");
    let Response::Stat(s) = ok(&mut n, ci, exists("/zookeeper/config", false)) else {
        panic!()
    };
    assert_eq!(s.stat, n.cluster.get("/app/zookeeper/config").unwrap().1);
    let (_, chrooted_w) = submit(&mut n, ci, get_data("/zookeeper/config", true));

    let cfg = n
        .with_session(ci, |s, now| s.submit_get_config(true, now))
        .unwrap();
    assert!(n.run_until(|n| n.client(ci).completion(cfg.id).is_some(), S));
    let Some(Ok(Response::GetData(d))) = n.client(ci).completion(cfg.id) else {
        panic!("{:?}", n.client(ci).completion(cfg.id))
    };
    assert_eq!(d.data.as_deref().unwrap(), server_config);
    assert_eq!(d.stat, n.cluster.get("/zookeeper/config").unwrap().1);

    // Each watch is on its own node.
    n.admin(set_data("/zookeeper/config", b"version=1"))
        .unwrap();
    n.advance(ms(10));
    assert_eq!(
        fired(&n, ci, cfg.watcher),
        [ev(EventType::NodeDataChanged, "/zookeeper/config")]
    );
    assert!(fired(&n, ci, chrooted_w).is_empty());
    n.admin(set_data("/app/zookeeper/config", b"x")).unwrap();
    n.advance(ms(10));
    assert_eq!(
        fired(&n, ci, chrooted_w),
        [ev(EventType::NodeDataChanged, "/zookeeper/config")]
    );
    assert_eq!(fired(&n, ci, cfg.watcher).len(), 1);
    no_violations(&n);
}

/// A SetWatches batch the server rejects on reconnect: the registrations it
/// restored are reported dead (NotSet with the server's code) instead of being
/// left silently armed locally only; the other batches' watches live on.
#[test]
fn a_rejected_set_watches_batch_reports_its_watches_removed() {
    let mut n = net(2, 54);
    // One path per batch: /a (data), /b (data), /p (persistent).
    let ci = connected_client(&mut n, &[0, 1], |c| c.set_watches_batch = 1);
    for p in ["/a", "/b"] {
        ok(&mut n, ci, create(p, b"", 0));
    }
    let (_, a1) = submit(&mut n, ci, get_data("/a", true));
    let (_, a2) = submit(&mut n, ci, exists("/a", true));
    let (_, b) = submit(&mut n, ci, get_data("/b", true));
    let (_, p) = submit(&mut n, ci, add_watch("/p", AddWatchMode::Persistent));
    n.advance(ms(10));
    assert_eq!(n.session(ci).watch_count(), 4);
    n.cluster
        .answer_set_watches([ErrorCode::MarshallingError, ErrorCode::Ok, ErrorCode::Ok]);
    reconnect(&mut n, ci);
    n.advance(ms(10));
    let conn = n.session_conn(ci).unwrap();
    let batches = n
        .client_frames(ci)
        .into_iter()
        .filter(|f| f.1 == conn && matches!(f.2, ClientFrame::Request { xid: -8, .. }))
        .count();
    assert_eq!(batches, 3);
    let dead = RemovalReason::NotSet(ZkError::Server(ErrorCode::MarshallingError));
    for w in [a1, a2] {
        assert_eq!(removal_reason(&n, ci, w.unwrap()), Some(dead.clone()));
    }
    for w in [b, p] {
        assert_eq!(removal_reason(&n, ci, w.unwrap()), None);
    }
    let failed: Vec<&Event> = n
        .client(ci)
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| matches!(e, Event::RestoreFailed { .. }))
        .collect();
    assert_eq!(
        failed,
        [&Event::RestoreFailed {
            code: ErrorCode::MarshallingError
        }]
    );
    assert_eq!(n.session(ci).watch_count(), 2);
    assert!(disconnect_reasons(&n, ci).len() == 1, "only the reset");
    n.admin(set_data("/a", b"1")).unwrap();
    n.admin(set_data("/b", b"1")).unwrap();
    n.admin(create("/p", b"", 0)).unwrap();
    n.advance(ms(10));
    assert!(fired(&n, ci, a1).is_empty());
    assert_eq!(fired(&n, ci, b), [ev(EventType::NodeDataChanged, "/b")]);
    assert_eq!(fired(&n, ci, p), [ev(EventType::NodeCreated, "/p")]);
    no_violations(&n);
}

/// A reply over max_frame fails only its own request, with ReplyTooLarge; its
/// bytes are skipped as they arrive, and the connection and the ten requests
/// around it carry on.
#[test]
fn a_reply_over_max_frame_fails_only_its_request() {
    let mut n = net(1, 55);
    n.set_chunking(true);
    let ci = connected_client(&mut n, &[0], |c| c.max_frame = 1000);
    for i in 0..10 {
        n.admin(create(&format!("/s{i}"), &[i as u8; 100], 0))
            .unwrap();
    }
    n.admin(create("/big", &[1u8; 5000], 0)).unwrap();
    let before: Vec<RequestId> = (0..5)
        .map(|i| submit(&mut n, ci, get_data(&format!("/s{i}"), false)).0)
        .collect();
    let (big, big_w) = submit(&mut n, ci, get_data("/big", true));
    let after: Vec<RequestId> = (5..10)
        .map(|i| submit(&mut n, ci, get_data(&format!("/s{i}"), false)).0)
        .collect();
    assert!(n.run_until(
        |n| after
            .iter()
            .all(|id| n.client(ci).completion(*id).is_some()),
        5 * S
    ));
    let too_large = ZkError::ReplyTooLarge {
        size: 16 + 4 + 5000 + 68,
        max: 1000,
    };
    assert_eq!(n.client(ci).completion(big), Some(&Err(too_large.clone())));
    assert_eq!(
        removal_reason(&n, ci, big_w.unwrap()),
        Some(RemovalReason::NotSet(too_large.clone()))
    );
    assert!(!too_large.outcome_unknown());
    assert_eq!(too_large.code(), ErrorCode::MarshallingError);
    for (i, id) in before.iter().chain(&after).enumerate() {
        assert_eq!(n.client(ci).completions(*id), 1);
        let Some(Ok(Response::GetData(d))) = n.client(ci).completion(*id) else {
            panic!("{:?}", n.client(ci).completion(*id))
        };
        assert_eq!(d.data.as_deref().unwrap(), &[i as u8; 100][..]);
    }
    assert!(disconnect_reasons(&n, ci).is_empty());
    let Response::GetData(d) = ok(&mut n, ci, get_data("/s3", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_ref().unwrap().len(), 100);
    assert_eq!(n.client(ci).states(), [SessionState::Connected]);
    no_violations(&n);
}

/// An oversized frame that is not the reply to the oldest request (another xid,
/// a notification, or an absurd claim) still drops the connection as malformed.
#[test]
fn an_oversized_frame_answering_nothing_drops_the_connection() {
    let header = |xid: i32| {
        let mut b = 5000i32.to_be_bytes().to_vec();
        b.extend_from_slice(&xid.to_be_bytes());
        b.extend_from_slice(&[0u8; 12]);
        b
    };
    let cases: [(Vec<u8>, i32); 4] = [
        (header(777), 5000),
        (header(-1), 5000),
        (header(-2), 5000),
        // Only the prefix: over MAX_SKIPPABLE_FRAME, so no need to wait for an xid.
        (i32::MAX.to_be_bytes().to_vec(), i32::MAX),
    ];
    for (seed, (bytes, len)) in cases.into_iter().enumerate() {
        let mut n = net(1, 56 + seed as u64);
        let ci = connected_client(&mut n, &[0], |c| c.max_frame = 1000);
        n.set_hold(0, true);
        let id = submit(&mut n, ci, get_data("/", false)).0;
        n.advance(ms(5));
        let conn = n.session_conn(ci).unwrap();
        n.inject(ci, conn, Dir::ToClient, &bytes);
        n.advance(ms(5));
        assert_eq!(
            disconnect_reasons(&n, ci),
            [DisconnectReason::Malformed(
                zk_proto::DecodeError::FrameLength { len, max: 1000 }
            )],
            "case {seed}"
        );
        failed_with(&n, ci, &[id], ZkError::ConnectionLoss);
        n.set_hold(0, false);
        wait_for(&mut n, ci, SessionState::Connected, 10 * S);
        no_violations(&n);
    }
}

/// The default max_frame takes the reply for a node as large as a default server
/// accepts: its getData reply is over jute.maxbuffer by the header and Stat.
#[test]
fn the_largest_node_a_server_accepts_can_be_read_with_the_default_max_frame() {
    scenario(1, 60, |n, ci| {
        // The create request is exactly jute.maxbuffer (0xfffff) bytes: 49 + data.
        let data = vec![5u8; 0xfffff - 49];
        ok(n, ci, create("/b", &data, 0));
        let Response::GetData(d) = ok(n, ci, get_data("/b", false)) else {
            panic!()
        };
        assert_eq!(d.data.as_ref().unwrap().len(), data.len());
        assert!(disconnect_reasons(n, ci).is_empty());
    });
}
