//! The handshake: what the ConnectRequest carries; a server behind the client.

use zk_proto::testing::net::ClientFrame;
use zk_proto::SessionState;

use super::helpers::{
    attempts, connected_client, create, ms, net, no_violations, ok, reconnect, scenario_with,
};

#[test]
fn handshake_carries_zxid_timeout_session_and_read_only_flag() {
    scenario_with(
        2,
        4,
        |c| {
            c.session_timeout = ms(15_000);
            c.read_only = true;
        },
        |n, ci| {
            let frames = n.client_frames(ci);
            let ClientFrame::Connect(first) = &frames[0].2 else {
                panic!("{frames:?}")
            };
            assert_eq!(first.protocol_version, 0);
            assert_eq!(first.last_zxid_seen, 0);
            assert_eq!(first.timeout, 15_000);
            assert_eq!(first.session_id, 0);
            assert_eq!(&first.passwd[..], &[0u8; 16]);
            assert_eq!(first.read_only, Some(true));
            let sid = n.session(ci).session_id().unwrap();
            assert_eq!(n.session(ci).negotiated_timeout(), Some(ms(15_000)));

            ok(n, ci, create("/h", b"", 0));
            let zxid = n.session(ci).last_zxid();
            assert_eq!(zxid, n.cluster.last_zxid());
            reconnect(n, ci);
            let connects: Vec<_> = n
                .client_frames(ci)
                .into_iter()
                .filter_map(|f| match f.2 {
                    ClientFrame::Connect(c) => Some(c),
                    _ => None,
                })
                .collect();
            let again = connects.last().unwrap();
            assert_eq!(again.session_id, sid);
            assert_eq!(again.passwd, n.session(ci).credentials().unwrap().1);
            assert_eq!(again.last_zxid_seen, zxid);
            assert_eq!(n.session(ci).session_id(), Some(sid));
        },
    );
}

#[test]
fn server_behind_the_client_is_skipped_without_expiry() {
    let mut n = net(2, 5);
    n.cluster.set_lagging(1, true);
    let ci = connected_client(&mut n, &[0, 1], |c| c.randomize_hosts = false);
    assert_eq!(n.client_member(ci), Some(0));
    ok(&mut n, ci, create("/ahead", b"", 0));
    let sid = n.session(ci).session_id();
    reconnect(&mut n, ci);
    let hosts: Vec<String> = attempts(&n, ci).into_iter().map(|a| a.1).collect();
    assert_eq!(hosts, ["m0", "m1", "m0"], "m1 closes silently; back to m0");
    assert_eq!(n.session(ci).session_id(), sid);
    assert!(!n.client(ci).states().contains(&SessionState::Expired));
    no_violations(&n);
}
