//! Close: the CloseSession request, its bounded wait, closing while suspended.

use zk_proto::testing::net::ClientFrame;
use zk_proto::{OpCode, SessionState, UsageError, ZkError};

use super::helpers::{connected_client, create, get_data, ms, net, no_violations, ok, submit, S};

#[test]
fn close_sends_close_session_and_ends_closed() {
    let mut n = net(1, 31);
    let ci = connected_client(&mut n, &[0], |_| {});
    let sid = n.session(ci).session_id().unwrap();
    ok(&mut n, ci, create("/e", b"", 1));
    let (_, w) = submit(&mut n, ci, get_data("/", true));
    n.advance(ms(10));
    n.close(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, S));
    assert!(n.elapsed() < S);
    assert!(n.client_frames(ci).iter().any(|f| matches!(
        f.2,
        ClientFrame::Request {
            op: OpCode::CloseSession,
            ..
        }
    )));
    assert!(!n.cluster.session_alive(sid));
    assert!(n.cluster.get("/e").is_none());
    assert!(n.client(ci).watcher_removed(w.unwrap()));
    assert_eq!(
        n.client(ci).states(),
        [SessionState::Connected, SessionState::Closed]
    );
    no_violations(&n);
}

#[test]
fn close_waits_a_bounded_time_for_the_reply() {
    let mut n = net(1, 32);
    let ci = connected_client(&mut n, &[0], |c| c.close_timeout = ms(1500));
    n.set_hold(0, true);
    let pending = submit(&mut n, ci, get_data("/", false)).0;
    let start = n.now();
    n.close(ci);
    assert!(matches!(
        n.submit(ci, get_data("/", false)),
        Err(UsageError::SessionTerminated(ZkError::SessionClosed))
    ));
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, 10 * S));
    assert_eq!(n.now() - start, ms(1500));
    assert_eq!(n.client(ci).completions(pending), 1);
    no_violations(&n);
}

#[test]
fn close_while_suspended_closes_at_once() {
    let mut n = net(1, 33);
    let ci = connected_client(&mut n, &[0], |_| {});
    n.stop_member(0);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, S));
    let queued = submit(&mut n, ci, get_data("/", false)).0;
    n.close(ci);
    assert_eq!(n.state(ci), SessionState::Closed);
    assert_eq!(
        n.client(ci).completion(queued),
        Some(&Err(ZkError::SessionClosed))
    );
    no_violations(&n);
}
