//! Close: the CloseSession request, its bounded wait, closing while suspended.

use zk_proto::testing::net::ClientFrame;
use zk_proto::{OpCode, SessionState, UsageError, ZkError};

use super::helpers::{
    close, create, failed_with, get_data, ms, ok, scenario, scenario_with, submit, wait_for, S,
};

#[test]
fn close_sends_close_session_and_ends_closed() {
    scenario(1, 31, |n, ci| {
        let sid = n.session(ci).session_id().unwrap();
        ok(n, ci, create("/e", b"", 1));
        let (_, w) = submit(n, ci, get_data("/", true));
        n.advance(ms(10));
        close(n, ci, S);
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
    });
}

#[test]
fn close_waits_a_bounded_time_for_the_reply() {
    scenario_with(
        1,
        32,
        |c| c.close_timeout = ms(1500),
        |n, ci| {
            n.set_hold(0, true);
            let pending = submit(n, ci, get_data("/", false)).0;
            let start = n.now();
            n.close(ci);
            assert!(matches!(
                n.submit(ci, get_data("/", false)),
                Err(UsageError::SessionTerminated(ZkError::SessionClosed))
            ));
            wait_for(n, ci, SessionState::Closed, 10 * S);
            assert_eq!(n.now() - start, ms(1500));
            assert_eq!(n.client(ci).completions(pending), 1);
        },
    );
}

#[test]
fn close_while_suspended_closes_at_once() {
    scenario(1, 33, |n, ci| {
        n.stop_member(0);
        wait_for(n, ci, SessionState::Suspended, S);
        let queued = submit(n, ci, get_data("/", false)).0;
        n.close(ci);
        assert_eq!(n.state(ci), SessionState::Closed);
        failed_with(n, ci, &[queued], ZkError::SessionClosed);
    });
}
