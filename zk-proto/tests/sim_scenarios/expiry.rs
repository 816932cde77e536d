//! Expiry on the server and on the client, and the policies after it.

use zk_proto::{
    AddWatchMode, Event, ExpiryPolicy, RemovalReason, SessionState, UsageError, ZkError,
};

use super::helpers::{
    add_watch, connected_client, create, exists, expire_and_renew, failed_with, get_data, ms, net,
    no_violations, ok, scenario_with, submit, wait_for, S,
};

#[test]
fn server_side_expiry_fails_everything_and_is_terminal() {
    scenario_with(
        3,
        20,
        |c| c.expiry_policy = ExpiryPolicy::Terminal,
        |n, ci| {
            let sid = n.session(ci).session_id().unwrap();
            ok(n, ci, create("/x", b"", 0));
            let (_, w1) = submit(n, ci, get_data("/x", true));
            let (_, w2) = submit(n, ci, add_watch("/", AddWatchMode::PersistentRecursive));
            n.advance(ms(10));
            n.expire_session(sid);
            wait_for(n, ci, SessionState::Suspended, S);
            let (queued, qw) = submit(n, ci, exists("/y", true));
            assert!(n.run_until(|n| n.state(ci).is_terminal(), 10 * S));
            assert_eq!(n.state(ci), SessionState::Expired);
            failed_with(n, ci, &[queued], ZkError::SessionExpired);
            for w in [w1, w2, qw] {
                let w = w.unwrap();
                let removed: Vec<_> = n
                    .client(ci)
                    .events
                    .iter()
                    .filter_map(|(_, e)| match e {
                        Event::WatcherRemoved { watcher, reason } if *watcher == w => {
                            Some(reason.clone())
                        }
                        _ => None,
                    })
                    .collect();
                assert_eq!(removed.len(), 1, "{w:?}");
                assert!(matches!(
                    removed[0],
                    RemovalReason::SessionEnded(ZkError::SessionExpired)
                        | RemovalReason::NotSet(ZkError::SessionExpired)
                ));
            }
            // Terminal: nothing more happens, and new requests are refused.
            let connects = n.client(ci).connects.len();
            n.advance(60 * S);
            assert_eq!(n.client(ci).connects.len(), connects);
            assert_eq!(n.state(ci), SessionState::Expired);
            assert!(matches!(
                n.submit(ci, get_data("/", false)),
                Err(UsageError::SessionTerminated(ZkError::SessionExpired))
            ));
        },
    );
}

#[test]
fn client_side_expiry_when_no_server_is_reached_for_the_session_timeout() {
    scenario_with(
        3,
        21,
        |c| {
            c.session_timeout = ms(12_000);
            c.expiry_policy = ExpiryPolicy::Terminal;
        },
        |n, ci| {
            let last_contact = n.client(ci).entered(SessionState::Connected).unwrap();
            let (_, w) = submit(n, ci, add_watch("/p", AddWatchMode::Persistent));
            n.advance(ms(10));
            let last_contact = last_contact.max(n.now() - ms(10) + ms(2));
            for m in 0..3 {
                n.partition(m);
            }
            wait_for(n, ci, SessionState::Suspended, 20 * S);
            let queued = submit(n, ci, get_data("/", false)).0;
            wait_for(n, ci, SessionState::Expired, 20 * S);
            assert_eq!(n.now() - last_contact, ms(12_000));
            failed_with(n, ci, &[queued], ZkError::SessionExpired);
            assert!(n.client(ci).watcher_removed(w.unwrap()));
        },
    );
}

#[test]
fn new_session_policy_opens_a_fresh_session_after_expiry() {
    let mut n = net(2, 22);
    // The default policy.
    let ci = connected_client(&mut n, &[0, 1], |c| {
        assert_eq!(c.expiry_policy, ExpiryPolicy::NewSession);
        assert_eq!(ExpiryPolicy::default(), ExpiryPolicy::NewSession);
    });
    let sid = expire_and_renew(&mut n, ci);
    let new = n.session(ci).session_id().unwrap();
    assert_ne!(new, sid);
    assert!(n.cluster.session_alive(new));
    ok(&mut n, ci, create("/fresh", b"", 1));
    assert_eq!(n.cluster.get("/fresh").unwrap().1.ephemeral_owner, new);
    no_violations(&n);
}
