//! Read-only servers: probing, moving to a read-write server, refusing read-only.

use zk_proto::testing::net::ClientFrame;
use zk_proto::{AddWatchMode, DisconnectReason, ErrorCode, Response, SessionState, ZkError};

use super::helpers::{
    add_client, add_watch, connected_client, connected_to, create, disconnect_reasons, get_data,
    ms, net, no_violations, ok, scenario_with, submit, wait_for, S,
};

#[test]
fn after_a_client_side_expiry_the_default_policy_keeps_trying_with_a_new_session() {
    scenario_with(
        3,
        23,
        |c| c.session_timeout = ms(6000),
        |n, ci| {
            let sid = n.session(ci).session_id().unwrap();
            let (_, w) = submit(n, ci, add_watch("/p", AddWatchMode::Persistent));
            n.advance(ms(10));
            for m in 0..3 {
                n.partition(m);
            }
            assert!(n.run_until(
                |n| n.client(ci).states().contains(&SessionState::Expired),
                20 * S
            ));
            // Expired was reported, then the same Session went on connecting.
            assert_eq!(n.state(ci), SessionState::Connecting);
            assert_eq!(n.session(ci).session_id(), None);
            assert!(n.client(ci).watcher_removed(w.unwrap()));
            let connects = n.client(ci).connects.len();
            n.advance(10 * S);
            assert!(n.client(ci).connects.len() > connects, "still trying");
            for m in 0..3 {
                n.heal(m);
            }
            wait_for(n, ci, SessionState::Connected, 20 * S);
            let new = n.session(ci).session_id().unwrap();
            assert_ne!(new, sid);
            ok(n, ci, create("/after", b"", 0));
        },
    );
}

#[test]
fn read_only_then_probe_and_move_to_a_read_write_server() {
    let mut n = net(2, 23);
    n.admin(create("/r", b"data", 0)).unwrap();
    n.stop_member(0);
    n.set_read_only(1, true);
    let ci = connected_client(&mut n, &[0, 1], |c| c.read_only = true);
    assert_eq!(n.state(ci), SessionState::ConnectedReadOnly);
    let ro_sid = n.session(ci).session_id().unwrap();
    let Response::GetData(d) = ok(&mut n, ci, get_data("/r", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_deref().unwrap(), b"data");
    assert_eq!(
        n.call(ci, create("/w", b"", 0), S),
        Some(Err(ZkError::Server(ErrorCode::NotReadOnly)))
    );
    n.advance(2 * S);
    assert_eq!(n.state(ci), SessionState::ConnectedReadOnly);
    let probes = n
        .client_frames(ci)
        .iter()
        .filter(|f| matches!(&f.2, ClientFrame::FourLetter(w) if w == "isro"))
        .count();
    assert_eq!(probes, 0, "m0 is down: probes are refused before sending");
    n.start_member(0);
    connected_to(&mut n, ci, 0, 120 * S);
    assert!(disconnect_reasons(&n, ci).contains(&DisconnectReason::LeavingReadOnly));
    let sid = n.session(ci).session_id().unwrap();
    assert_ne!(
        sid, ro_sid,
        "a read-only session is local; a new global one"
    );
    ok(&mut n, ci, create("/w", b"", 0));
    no_violations(&n);
}

#[test]
fn a_client_that_refuses_read_only_does_not_connect_to_one() {
    let mut n = net(1, 24);
    n.set_read_only(0, true);
    let ci = add_client(&mut n, &[0], |c| c.read_only = false);
    n.advance(5 * S);
    assert_eq!(n.state(ci), SessionState::Connecting);
    assert!(n.client(ci).connects.len() > 3);
    n.set_read_only(0, false);
    wait_for(&mut n, ci, SessionState::Connected, 10 * S);
    no_violations(&n);
}
