//! Xids and replies: order, auth replies, failed multis.

use bytes::{Bytes, BytesMut};
use zk_proto::frame::write_frame;
use zk_proto::jute::Encode;
use zk_proto::testing::net::{ClientFrame, Dir};
use zk_proto::{
    Acl, CreateRequest, DeleteRequest, DisconnectReason, ErrorCode, MultiOp, MultiRequest,
    MultiResult, OpCode, ReplyHeader, Request, Response, SessionState, SetDataRequest, ZkError,
};

use super::helpers::{
    create, disconnect_reasons, failed_with, get_data, ms, ok, scenario, submit, wait_for, S,
};

#[test]
fn xids_are_sequential_and_an_out_of_order_reply_drops_the_connection() {
    scenario(2, 9, |n, ci| {
        let m = n.client_member(ci).unwrap();
        n.set_hold(m, true);
        let a = submit(n, ci, get_data("/", false)).0;
        let b = submit(n, ci, get_data("/zookeeper", false)).0;
        n.advance(ms(5));
        let xids: Vec<i32> = n
            .client_frames(ci)
            .into_iter()
            .filter_map(|f| match f.2 {
                ClientFrame::Request {
                    xid,
                    op: OpCode::GetData,
                    ..
                } => Some(xid),
                _ => None,
            })
            .collect();
        assert_eq!(xids, [1, 2]);
        // The server answers the second first.
        let conn = n.session_conn(ci).unwrap();
        let mut reply = BytesMut::new();
        write_frame(&mut reply, |b| {
            ReplyHeader {
                xid: 2,
                zxid: 1,
                err: ErrorCode::NoNode,
            }
            .encode(b)
        });
        n.inject(ci, conn, Dir::ToClient, &reply);
        n.advance(ms(5));
        assert_eq!(
            disconnect_reasons(n, ci),
            [DisconnectReason::XidOutOfOrder {
                expected: Some(1),
                got: 2
            }]
        );
        for id in [a, b] {
            assert_eq!(n.client(ci).completions(id), 1);
            failed_with(n, ci, &[id], ZkError::ConnectionLoss);
        }
        n.set_hold(m, false);
        wait_for(n, ci, SessionState::Connected, 10 * S);
    });
}

#[test]
fn auth_replies_may_overtake_earlier_replies() {
    scenario(1, 10, |n, ci| {
        n.set_hold(0, true);
        let get = submit(n, ci, get_data("/", false)).0;
        let auth = n.add_auth(ci, "digest", b"alice:secret").unwrap();
        assert!(n.run_until(|n| n.client(ci).completion(auth).is_some(), S));
        assert_eq!(n.client(ci).completion(auth), Some(&Ok(Response::Empty)));
        assert!(n.client(ci).completion(get).is_none());
        n.set_hold(0, false);
        assert!(n.run_until(|n| n.client(ci).completion(get).is_some(), S));
        assert!(matches!(
            n.client(ci).completion(get),
            Some(Ok(Response::GetData(_)))
        ));
        assert!(disconnect_reasons(n, ci).is_empty());
        let Response::WhoAmI(w) = ok(n, ci, Request::WhoAmI) else {
            panic!()
        };
        assert!(w.client_info.iter().any(|c| c.user == "alice"));
    });
}

#[test]
fn a_failed_multi_completes_ok_with_error_results() {
    scenario(1, 11, |n, ci| {
        ok(n, ci, create("/m", b"", 0));
        let multi = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: Some(Bytes::from_static(b"x")),
                    version: -1,
                }),
                MultiOp::Create {
                    op: OpCode::Create,
                    req: CreateRequest {
                        path: "/m".into(),
                        data: Some(Bytes::new()),
                        acl: Acl::open_unsafe(),
                        flags: 0,
                    },
                },
                MultiOp::Delete(DeleteRequest {
                    path: "/m".into(),
                    version: -1,
                }),
            ],
        });
        let Response::Multi(m) = ok(n, ci, multi) else {
            panic!()
        };
        assert_eq!(
            m.results,
            [
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::NodeExists),
                MultiResult::Error(ErrorCode::RuntimeInconsistency),
            ]
        );
        assert_eq!(m.first_error(), Some(ErrorCode::NodeExists));
        assert_eq!(
            n.cluster.get("/m").unwrap().0.as_deref(),
            Some(&b""[..]),
            "nothing applied"
        );
        assert_eq!(n.state(ci), SessionState::Connected);
    });
}
