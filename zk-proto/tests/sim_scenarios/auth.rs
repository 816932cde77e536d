//! Auth failure.

use zk_proto::{SessionState, UsageError, ZkError};

use super::helpers::{failed_with, get_children, get_data, ms, scenario, submit, S};

#[test]
fn auth_failure_is_terminal() {
    scenario(2, 25, |n, ci| {
        let (_, w) = submit(n, ci, get_data("/", true));
        n.advance(ms(10));
        let m = n.client_member(ci).unwrap();
        n.set_hold(m, true);
        let pending = submit(n, ci, get_children("/", false)).0;
        let auth = n.add_auth(ci, "bogus", b"x").unwrap();
        assert!(n.run_until(|n| n.state(ci).is_terminal(), S));
        assert_eq!(n.state(ci), SessionState::AuthFailed);
        failed_with(n, ci, &[auth, pending], ZkError::AuthFailed);
        assert!(n.client(ci).watcher_removed(w.unwrap()));
        let connects = n.client(ci).connects.len();
        n.set_hold(m, false);
        n.advance(60 * S);
        assert_eq!(n.client(ci).connects.len(), connects, "no reconnect");
        assert_eq!(n.state(ci), SessionState::AuthFailed);
        assert!(matches!(
            n.add_auth(ci, "digest", b"a:b"),
            Err(UsageError::SessionTerminated(ZkError::AuthFailed))
        ));
    });
}
