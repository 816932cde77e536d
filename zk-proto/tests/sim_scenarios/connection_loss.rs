//! Connection loss: in-flight and queued requests, cut frames, restarts.

use bytes::Bytes;
use zk_proto::testing::net::{Dir, SimNet};
use zk_proto::{
    Acl, CreateRequest, Event, MultiOp, MultiRequest, MultiResult, OpCode, PathWatchRequest,
    QueuePolicy, RemovalReason, Request, RequestId, Response, SessionState, SetDataRequest,
    UsageError, ZkError,
};

use super::helpers::{
    connected_client, create, failed_with, get_data, ms, net, no_violations, ok, scenario,
    scenario_with, set_data, submit, wait_for, S,
};

#[test]
fn null_node_data_reads_back_as_null_not_empty() {
    scenario(1, 12, |n, ci| {
        let null_create = |path: &str| {
            Request::Create(CreateRequest {
                path: path.into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
            })
        };
        let data_of = |n: &mut SimNet, path: &str| match ok(n, ci, get_data(path, false)) {
            Response::GetData(d) => (d.data, d.stat.data_length),
            other => panic!("{other:?}"),
        };
        ok(n, ci, null_create("/null"));
        ok(n, ci, create("/empty", b"", 0));
        assert_eq!(data_of(n, "/null"), (None, 0));
        assert_eq!(data_of(n, "/empty"), (Some(Bytes::new()), 0));
        assert_eq!(n.cluster.get("/null").unwrap().0, None);

        // setData to null, and back to bytes.
        ok(n, ci, set_data("/null", b"x"));
        assert_eq!(data_of(n, "/null"), (Some(Bytes::from_static(b"x")), 1));
        ok(
            n,
            ci,
            Request::SetData(SetDataRequest {
                path: "/empty".into(),
                data: None,
                version: -1,
            }),
        );
        assert_eq!(data_of(n, "/empty"), (None, 0));

        // A multi creates with null data; a multiRead reads null as null.
        let Response::Multi(_) = ok(
            n,
            ci,
            Request::Multi(MultiRequest {
                ops: vec![MultiOp::Create {
                    op: OpCode::Create,
                    req: CreateRequest {
                        path: "/multi-null".into(),
                        data: None,
                        acl: Acl::open_unsafe(),
                        flags: 0,
                    },
                }],
            }),
        ) else {
            panic!()
        };
        let Response::Multi(m) = ok(
            n,
            ci,
            Request::MultiRead(MultiRequest {
                ops: vec![
                    MultiOp::GetData(PathWatchRequest {
                        path: "/multi-null".into(),
                        watch: false,
                    }),
                    MultiOp::GetData(PathWatchRequest {
                        path: "/null".into(),
                        watch: false,
                    }),
                ],
            }),
        ) else {
            panic!()
        };
        let datas: Vec<Option<Bytes>> = m
            .results
            .into_iter()
            .map(|r| match r {
                MultiResult::GetData(d) => d.data,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(datas, [None, Some(Bytes::from_static(b"x"))]);
    });
}

#[test]
fn connection_loss_fails_every_in_flight_request_once_and_moves_on() {
    scenario(3, 12, |n, ci| {
        let m = n.client_member(ci).unwrap();
        let sid = n.session(ci).session_id();
        n.set_hold(m, true);
        let ids: Vec<RequestId> = (0..5)
            .map(|i| submit(n, ci, create(&format!("/n{i}"), b"", 0)).0)
            .collect();
        let (watched, watcher) = submit(n, ci, get_data("/", true));
        n.advance(ms(3));
        n.reset_session_conn(ci);
        assert_eq!(n.state(ci), SessionState::Suspended);
        for id in ids.iter().chain([&watched]) {
            assert_eq!(n.client(ci).completions(*id), 1);
            failed_with(n, ci, &[*id], ZkError::ConnectionLoss);
        }
        assert!(n
        .client(ci)
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::WatcherRemoved { watcher: w, reason: RemovalReason::NotSet(ZkError::ConnectionLoss) } if Some(*w) == watcher)));
        wait_for(n, ci, SessionState::Connected, 10 * S);
        assert_ne!(n.client_member(ci), Some(m), "the next host");
        assert_eq!(n.session(ci).session_id(), sid);
        n.set_hold(m, false);
        n.advance(S);
        for id in &ids {
            assert_eq!(n.client(ci).completions(*id), 1, "exactly once");
        }
        assert_eq!(
            n.client(ci).states(),
            [
                SessionState::Connected,
                SessionState::Suspended,
                SessionState::Connected
            ]
        );
    });
}

#[test]
fn a_reply_cut_mid_frame_is_a_connection_loss() {
    let mut n = net(2, 13);
    n.set_chunking(true);
    n.set_jitter(ms(3));
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let big = vec![7u8; 100_000];
    ok(&mut n, ci, create("/big", &big, 0));
    let conn = n.session_conn(ci).unwrap();
    let id = submit(&mut n, ci, get_data("/big", false)).0;
    n.cut(ci, conn, Dir::ToClient, 50_000);
    assert!(n.run_until(|n| n.client(ci).completion(id).is_some(), 5 * S));
    failed_with(&n, ci, &[id], ZkError::ConnectionLoss);
    wait_for(&mut n, ci, SessionState::Connected, 10 * S);
    let Response::GetData(d) = ok(&mut n, ci, get_data("/big", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_ref().unwrap().len(), 100_000);
    no_violations(&n);
}

#[test]
fn a_server_restart_moves_the_session() {
    scenario(3, 14, |n, ci| {
        let m = n.client_member(ci).unwrap();
        let sid = n.session(ci).session_id().unwrap();
        ok(n, ci, create("/eph", b"", 1));
        n.stop_member(m);
        wait_for(n, ci, SessionState::Suspended, S);
        wait_for(n, ci, SessionState::Connected, 10 * S);
        n.start_member(m);
        assert_ne!(n.client_member(ci), Some(m));
        assert_eq!(n.session(ci).session_id(), Some(sid));
        assert!(n.cluster.get("/eph").is_some(), "the session survived");
    });
}

#[test]
fn requests_submitted_while_suspended_are_queued_up_to_the_limit() {
    scenario_with(
        2,
        15,
        |c| {
            c.queue_limit = 3;
            c.session_timeout = ms(20_000);
            c.connect_timeout = Some(ms(500));
        },
        |n, ci| {
            n.partition(0);
            n.partition(1);
            wait_for(n, ci, SessionState::Suspended, 20 * S);
            let ids: Vec<RequestId> = (0..3)
                .map(|i| submit(n, ci, create(&format!("/q{i}"), b"", 0)).0)
                .collect();
            assert_eq!(
                n.submit(ci, create("/q3", b"", 0)).unwrap_err(),
                UsageError::QueueFull
            );
            assert_eq!(n.session(ci).outstanding(), 3);
            n.advance(S);
            assert!(ids.iter().all(|id| n.client(ci).completion(*id).is_none()));
            n.heal(0);
            n.heal(1);
            assert!(n.run_until(
                |n| ids.iter().all(|id| n.client(ci).completion(*id).is_some()),
                20 * S
            ));
            for id in &ids {
                let got = n.client(ci).completion(*id);
                assert!(
                    matches!(got, Some(Ok(Response::Create(_)))),
                    "{got:?} {:?}",
                    n.client(ci).states()
                );
            }
            assert_eq!(n.cluster.children("/").unwrap().len(), 4);
        },
    );
}

#[test]
fn fail_fast_policy_fails_requests_while_suspended() {
    scenario_with(
        2,
        16,
        |c| c.queue_policy = QueuePolicy::FailFast,
        |n, ci| {
            n.partition(0);
            n.partition(1);
            wait_for(n, ci, SessionState::Suspended, 20 * S);
            let (id, w) = submit(n, ci, get_data("/", true));
            failed_with(n, ci, &[id], ZkError::NotConnected);
            assert!(n.client(ci).watcher_removed(w.unwrap()));
        },
    );
}
