//! Reconnect: auth, SetWatches and queued requests replayed in order.

use zk_proto::jute::from_bytes;
use zk_proto::testing::net::ClientFrame;
use zk_proto::{AddWatchMode, EventType, OpCode, RequestId, SetWatches2};

use super::helpers::{
    add_watch, connected_client, create, ev, exists, fired, get_data, ms, net, no_violations, ok,
    reconnect, scenario, set_data, set_watches_sent, submit, S,
};

#[test]
fn reconnect_replays_auth_then_set_watches_then_queued_requests() {
    scenario(2, 17, |n, ci| {
        let auth = n.add_auth(ci, "digest", b"bob:pw").unwrap();
        ok(n, ci, create("/w", b"", 0));
        let (_, data_w) = submit(n, ci, get_data("/w", true));
        let (_, pers_w) = submit(n, ci, add_watch("/p", AddWatchMode::Persistent));
        n.advance(ms(10));
        assert!(n.client(ci).completion(auth).is_some());
        assert_eq!(n.session(ci).watch_count(), 2);
        let zxid = n.session(ci).last_zxid();
        n.reset_session_conn(ci);
        let queued = submit(n, ci, get_data("/w", false)).0;
        assert!(n.run_until(|n| n.client(ci).completion(queued).is_some(), 10 * S));
        let conn = n.session_conn(ci).unwrap();
        let frames: Vec<ClientFrame> = n
            .client_frames(ci)
            .into_iter()
            .filter(|f| f.1 == conn)
            .map(|f| f.2)
            .collect();
        assert!(matches!(&frames[0], ClientFrame::Connect(c) if c.last_zxid_seen == zxid));
        assert!(matches!(
            &frames[1],
            ClientFrame::Request {
                xid: -4,
                op: OpCode::Auth,
                ..
            }
        ));
        let ClientFrame::Request {
            op: OpCode::SetWatches2,
            body,
            ..
        } = &frames[2]
        else {
            panic!("{frames:?}")
        };
        let sw: SetWatches2 = from_bytes(body.clone()).unwrap();
        assert_eq!(sw.relative_zxid, zxid);
        assert_eq!(sw.data_watches, ["/w"]);
        assert_eq!(sw.persistent_watches, ["/p"]);
        assert!(matches!(
            &frames[3],
            ClientFrame::Request {
                op: OpCode::GetData,
                ..
            }
        ));
        // Restored on the server: both fire.
        let server_conn = n.server_conn(ci, conn).unwrap();
        assert_eq!(n.cluster.watch_count(server_conn), 2);
        n.admin(set_data("/w", b"x")).unwrap();
        n.admin(create("/p", b"", 0)).unwrap();
        n.advance(ms(10));
        assert_eq!(fired(n, ci, data_w), [ev(EventType::NodeDataChanged, "/w")]);
        assert_eq!(fired(n, ci, pers_w), [ev(EventType::NodeCreated, "/p")]);
    });
}

#[test]
fn watches_missed_while_away_fire_on_reconnect() {
    scenario(2, 18, |n, ci| {
        ok(n, ci, create("/d", b"", 0));
        let (_, w) = submit(n, ci, get_data("/d", true));
        let (_, e) = submit(n, ci, exists("/later", true));
        n.advance(ms(10));
        let m = n.client_member(ci).unwrap();
        n.partition(m);
        n.admin(set_data("/d", b"changed")).unwrap();
        n.admin(create("/later", b"", 0)).unwrap();
        assert!(n.run_until(|n| n.client(ci).watch_events(e.unwrap()).len() == 1, 30 * S));
        assert_eq!(fired(n, ci, w), [ev(EventType::NodeDataChanged, "/d")]);
        assert_eq!(fired(n, ci, e), [ev(EventType::NodeCreated, "/later")]);
        // Only one-shot SetWatches (101) were needed.
        assert!(n.client_frames(ci).iter().any(|f| matches!(
            f.2,
            ClientFrame::Request {
                op: OpCode::SetWatches,
                xid: -8,
                ..
            }
        )));
    });
}

#[test]
fn set_watches_are_split_into_frames_of_at_most_128k_path_chars() {
    let mut n = net(2, 19);
    n.record_wire = true;
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let pad = "x".repeat(96);
    let paths: Vec<String> = (0..3000).map(|i| format!("/{pad}{i:04}")).collect();
    for p in &paths {
        n.admin(create(p, b"", 0)).unwrap();
    }
    let ids: Vec<RequestId> = paths
        .iter()
        .map(|p| submit(&mut n, ci, get_data(p, true)).0)
        .collect();
    assert!(n.run_until(
        |n| ids.iter().all(|id| n.client(ci).completion(*id).is_some()),
        10 * S
    ));
    assert_eq!(n.session(ci).watch_count(), 3000);
    reconnect(&mut n, ci);
    n.advance(ms(50));
    let conn = n.session_conn(ci).unwrap();
    let batches = set_watches_sent(&n, ci, Some(conn));
    let total_chars: usize = paths.iter().map(|p| p.len()).sum();
    assert!(total_chars > 2 * 128 * 1024);
    assert_eq!(batches.len(), total_chars.div_ceil(128 * 1024));
    for b in &batches {
        let chars: usize = b.data_watches.iter().map(|p| p.len()).sum();
        assert!(chars < 128 * 1024 + 101, "{chars}");
    }
    let restored: usize = batches.iter().map(|b| b.data_watches.len()).sum();
    assert_eq!(restored, 3000);
    let server_conn = n.server_conn(ci, conn).unwrap();
    assert_eq!(n.cluster.watch_count(server_conn), 3000);
    no_violations(&n);
}
