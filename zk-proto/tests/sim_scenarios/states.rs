//! Session states, many clients, chroot, request timeouts, empty multis.

use zk_proto::{
    DisconnectReason, Event, EventType, MultiRequest, Request, RequestId, Response, SessionState,
    ZkError,
};

use super::helpers::{
    add_client, close, connected_client, create, disconnect_reasons, ev, exists, failed_with,
    fired, get_children, get_data, ms, net, no_violations, ok, reconnect, scenario, scenario_with,
    set_data, set_watches_sent, submit, wait_for, LOST_ONCE_THEN_CLOSED, S,
};

#[test]
fn state_sequence_through_loss_and_close() {
    let mut n = net(2, 34);
    let ci = add_client(&mut n, &[0, 1], |c| c.session_timeout = ms(10_000));
    assert_eq!(n.state(ci), SessionState::Connecting);
    wait_for(&mut n, ci, SessionState::Connected, S);
    n.reset_session_conn(ci);
    assert_eq!(n.state(ci), SessionState::Suspended);
    wait_for(&mut n, ci, SessionState::Connected, S);
    close(&mut n, ci, S);
    assert_eq!(n.client(ci).states(), LOST_ONCE_THEN_CLOSED);
    assert_eq!(n.state(ci).coarse(), zk_proto::CoarseState::Lost);
    no_violations(&n);
}

#[test]
fn many_clients_see_each_others_changes_under_chunking_and_jitter() {
    let mut n = net(3, 35);
    n.set_chunking(true);
    n.set_jitter(ms(5));
    let a = connected_client(&mut n, &[0, 1, 2], |_| {});
    let b = connected_client(&mut n, &[0, 1, 2], |_| {});
    ok(&mut n, a, create("/shared", b"", 0));
    let (_, w) = submit(&mut n, b, get_children("/shared", true));
    n.advance(ms(20));
    let Response::Create(c) = ok(&mut n, a, create("/shared/item-", b"v", 3)) else {
        panic!()
    };
    assert_eq!(c.path, "/shared/item-0000000000");
    n.advance(ms(20));
    assert_eq!(
        n.client(b).watch_events(w.unwrap()),
        [ev(EventType::NodeChildrenChanged, "/shared")]
    );
    n.close(a);
    n.advance(S);
    assert!(n.cluster.children("/shared").unwrap().is_empty());
    no_violations(&n);
}

/// Regression (fixed in 6b8ee9e). A watch request still in flight while the last
/// armed registration on the same path is removed: a RemoveWatches(Any) sent then
/// would reach the server after the in-flight getData armed its watch, and wipe
/// it: the new registration would be armed locally but not on the server, and
/// never fire.
#[test]
fn removing_the_last_watcher_keeps_a_watch_that_is_being_set() {
    scenario(1, 41, |n, ci| {
        ok(n, ci, create("/x", b"", 0));
        let (_, old) = submit(n, ci, get_data("/x", true));
        n.advance(ms(10));
        // A second registration is in flight when the first is removed.
        let (id, new) = submit(n, ci, get_data("/x", true));
        n.remove_watcher(ci, old.unwrap());
        n.advance(ms(10));
        assert!(matches!(
            n.client(ci).completion(id),
            Some(Ok(Response::GetData(_)))
        ));
        assert_eq!(
            n.session(ci).watch_count(),
            1,
            "the new registration is armed"
        );
        n.admin(set_data("/x", b"1")).unwrap();
        n.advance(ms(10));
        assert_eq!(
            fired(n, ci, new),
            [ev(EventType::NodeDataChanged, "/x")],
            "server watches of the connection: {:?}",
            n.cluster
                .watches(n.server_conn(ci, n.session_conn(ci).unwrap()).unwrap())
        );
    });
}

#[test]
fn chroot_applies_to_requests_events_and_set_watches() {
    let mut n = net(2, 42);
    n.admin(create("/app", b"", 0)).unwrap();
    let ci = connected_client(&mut n, &[0, 1], |c| {
        c.chroot = zk_proto::path::Chroot::new("/app").unwrap()
    });
    let Response::Create(c) = ok(&mut n, ci, create("/s-", b"", 2)) else {
        panic!()
    };
    assert_eq!(c.path, "/s-0000000000");
    assert!(n.cluster.get("/app/s-0000000000").is_some());
    let (_, w) = submit(&mut n, ci, get_data("/s-0000000000", true));
    let (_, cw) = submit(&mut n, ci, get_children("/", true));
    let (_, cfg) = submit(&mut n, ci, exists("/zookeeper/config", true));
    n.advance(ms(10));
    // Restored after a reconnect with server paths, events come back stripped.
    reconnect(&mut n, ci);
    n.advance(ms(10));
    let sw = set_watches_sent(&n, ci, None);
    assert_eq!(sw.len(), 1);
    assert_eq!(sw[0].data_watches, ["/app/s-0000000000"]);
    assert_eq!(sw[0].child_watches, ["/app"]);
    assert_eq!(sw[0].exist_watches.len() + sw[0].data_watches.len(), 1 + 1);
    n.admin(set_data("/app/s-0000000000", b"1")).unwrap();
    n.admin(create("/app/other", b"", 0)).unwrap();
    n.advance(ms(10));
    assert_eq!(
        fired(&n, ci, w),
        [ev(EventType::NodeDataChanged, "/s-0000000000")]
    );
    assert_eq!(fired(&n, ci, cw), [ev(EventType::NodeChildrenChanged, "/")]);
    let _ = cfg;
    no_violations(&n);
}

#[test]
fn a_request_timeout_fails_the_request_and_drops_the_connection() {
    scenario_with(
        2,
        43,
        |c| c.request_timeout = Some(ms(700)),
        |n, ci| {
            let m = n.client_member(ci).unwrap();
            n.set_hold(m, true);
            let start = n.now();
            let a = submit(n, ci, get_data("/", false)).0;
            n.advance(ms(100));
            let b = submit(n, ci, get_data("/", false)).0;
            assert!(n.run_until(|n| n.client(ci).completion(a).is_some(), 5 * S));
            assert_eq!(n.now() - start, ms(700));
            failed_with(n, ci, &[a], ZkError::Timeout);
            failed_with(n, ci, &[b], ZkError::ConnectionLoss);
            assert_eq!(
                disconnect_reasons(n, ci),
                [DisconnectReason::RequestTimeout]
            );
            wait_for(n, ci, SessionState::Connected, 10 * S);
            n.set_hold(m, false);
        },
    );
}

/// An empty multi has nothing to send; it must still complete after the requests
/// submitted before it (completions come in submission order). Today `submit`
/// completes it at once, ahead of the getData still in flight: order [1, 0, 2].
#[test]
fn an_empty_multi_completes_in_submission_order() {
    scenario(1, 44, |n, ci| {
        let before = submit(n, ci, get_data("/", false)).0;
        let empty = submit(n, ci, Request::Multi(MultiRequest { ops: vec![] })).0;
        let after = submit(n, ci, get_data("/", false)).0;
        assert!(n.run_until(|n| n.client(ci).completion(after).is_some(), S));
        let order: Vec<RequestId> = n
            .client(ci)
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Completed { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(order, [before, empty, after]);
        assert_eq!(
            n.client(ci).completion(empty),
            Some(&Ok(Response::Multi(Default::default())))
        );
    });
}
