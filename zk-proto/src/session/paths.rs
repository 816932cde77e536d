//! Client paths and server paths: requests' paths validated and the chroot put
//! on them going out, replies' paths with the chroot taken off coming in.

use crate::error::UsageError;
use crate::ops::{Request, Response};
use crate::path::{validate_path, Chroot};
use crate::records::{MultiOp, MultiResult};
use crate::types::CreateMode;

use super::Session;

impl Session {
    pub(super) fn strip_chroot(&self, resp: &mut Response) {
        let c = &self.config.chroot;
        if c.root().is_none() {
            return;
        }
        match resp {
            Response::Create(r) => c.strip_in_place(&mut r.path),
            Response::Create2(r) => c.strip_in_place(&mut r.path),
            Response::Sync(r) => c.strip_in_place(&mut r.path),
            Response::GetEphemerals(r) => r.ephemerals.iter_mut().for_each(|p| c.strip_in_place(p)),
            Response::Multi(m) => {
                for res in &mut m.results {
                    match res {
                        MultiResult::Create(r) => c.strip_in_place(&mut r.path),
                        MultiResult::Create2(r) => c.strip_in_place(&mut r.path),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_sequential(flags: i32) -> bool {
    CreateMode::from_flags(flags, 0).is_some_and(|m| m.is_sequential())
}

fn check_and_prefix(
    path: &mut String,
    sequential: bool,
    chroot: &Chroot,
) -> Result<(), UsageError> {
    validate_path(path, sequential)?;
    chroot.prefix_in_place(path);
    Ok(())
}

/// Validates every path of a request (client paths) and applies the chroot.
pub(super) fn prefix_paths(req: &mut Request, chroot: &Chroot) -> Result<(), UsageError> {
    match req {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
            check_and_prefix(&mut r.path, is_sequential(r.flags), chroot)
        }
        Request::CreateTtl(r) => check_and_prefix(&mut r.path, is_sequential(r.flags), chroot),
        Request::Multi(m) | Request::MultiRead(m) => {
            for op in &mut m.ops {
                let seq = match op {
                    MultiOp::Create { req, .. } => is_sequential(req.flags),
                    MultiOp::CreateTtl(r) => is_sequential(r.flags),
                    _ => false,
                };
                check_and_prefix(op.path_mut(), seq, chroot)?;
            }
            Ok(())
        }
        // A plain prefix, not a node path: empty or "/" means every ephemeral of the session.
        Request::GetEphemerals(r) => {
            if r.path.is_empty() || r.path == "/" {
                r.path = chroot.prefix("/");
                Ok(())
            } else {
                check_and_prefix(&mut r.path, true, chroot)
            }
        }
        other => {
            let mut res = Ok(());
            other.for_each_path_mut(|p| {
                if res.is_ok() {
                    res = check_and_prefix(p, false, chroot);
                }
            });
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::error::UsageError;
    use crate::jute::Encode;
    use crate::ops::{Request, Response};
    use crate::path::Chroot;
    use crate::records::{MultiOp, MultiRequest, PathRequest, PathResponse};
    use crate::session::test_peer::{create, events, hosts, reply, t0, Peer};
    use crate::session::{Event, Session};
    use crate::types::{CreateMode, OpCode};

    /// sync's reply names the path synced as a client path: the chroot comes off it,
    /// like a created node's name.
    #[test]
    fn a_sync_reply_is_a_client_path_under_a_chroot() {
        let mut c = Config::new(hosts(1));
        c.chroot = Chroot::new("/app").unwrap();
        let mut p = Peer::connected(c, false);
        let id =
            p.s.submit(Request::Sync(PathRequest { path: "/x".into() }), p.now)
                .unwrap()
                .id;
        let [(xid, OpCode::Sync)] = p.transmit()[..] else {
            panic!("one sync sent");
        };
        let r = reply(xid, |b| {
            PathResponse {
                path: "/app/x".into(),
            }
            .encode(b)
        });
        p.s.handle_input(p.conn, &r, p.now);
        assert!(events(&mut p.s).contains(&Event::Completed {
            id,
            result: Ok(Response::Sync(PathResponse { path: "/x".into() })),
        }));
    }

    /// A sequential node's path may end in `/` (the server appends the counter: the
    /// node is named by its number alone), in a create, a TTL create and in a multi;
    /// any other path may not.
    #[test]
    fn a_sequential_create_may_end_in_a_slash() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        let seq = CreateMode::PersistentSequential.flags();
        assert!(s.submit(create("/jobs/", seq), now).is_ok());
        assert!(matches!(
            s.submit(create("/jobs/", CreateMode::Persistent.flags()), now),
            Err(UsageError::InvalidPath { .. })
        ));
        let ttl = Request::CreateTtl(crate::records::CreateTtlRequest {
            path: "/jobs/".into(),
            data: None,
            acl: crate::records::Acl::open_unsafe(),
            flags: CreateMode::PersistentSequentialWithTtl(1000).flags(),
            ttl: 1000,
        });
        assert!(s.submit(ttl, now).is_ok());
        let multi = |flags| {
            Request::Multi(MultiRequest {
                ops: vec![MultiOp::Create {
                    req: match create("/jobs/", flags) {
                        Request::Create(r) => r,
                        _ => unreachable!(),
                    },
                    op: OpCode::Create,
                }],
            })
        };
        assert!(s.submit(multi(seq), now).is_ok());
        assert!(s.submit(multi(0), now).is_err());
        let multi_ttl = |flags| {
            Request::Multi(MultiRequest {
                ops: vec![MultiOp::CreateTtl(crate::records::CreateTtlRequest {
                    path: "/jobs/".into(),
                    data: None,
                    acl: crate::records::Acl::open_unsafe(),
                    flags,
                    ttl: 1000,
                })],
            })
        };
        let seq_ttl = CreateMode::PersistentSequentialWithTtl(1000).flags();
        let plain_ttl = CreateMode::PersistentWithTtl(1000).flags();
        assert!(s.submit(multi_ttl(seq_ttl), now).is_ok());
        assert!(s.submit(multi_ttl(plain_ttl), now).is_err());
    }

    /// A request submitted unchrooted while no connection is up waits in the
    /// queue as such: once sent, its reply's path keeps the chroot (it is the
    /// caller's own full path), as when it is sent at once.
    #[test]
    fn a_queued_unchrooted_request_keeps_its_reply_path() {
        use crate::session::test_peer::connect_response;
        use crate::session::Action;
        let now = t0();
        let mut c = Config::new(hosts(1));
        c.chroot = Chroot::new("/app").unwrap();
        let mut s = Session::new(c, now);
        let sync = Request::Sync(PathRequest {
            path: "/app/x".into(),
        });
        let id = s.submit_unchrooted(sync, now).unwrap().id;
        assert_eq!(s.outstanding(), 1, "queued: no connection yet");
        let Some(Action::Connect { conn, .. }) = s.poll_action() else {
            panic!("no connect");
        };
        s.handle_connected(conn, now);
        assert!(s.poll_transmit(now).is_some(), "the ConnectRequest");
        s.handle_input(conn, &connect_response(false), now);
        let sent: Vec<_> = std::iter::from_fn(|| s.poll_transmit(now))
            .flat_map(|t| crate::session::test_peer::sent(&t.data))
            .collect();
        let [(xid, OpCode::Sync)] = sent[..] else {
            panic!("the queued sync sent: {sent:?}");
        };
        let r = reply(xid, |b| {
            PathResponse {
                path: "/app/x".into(),
            }
            .encode(b)
        });
        s.handle_input(conn, &r, now);
        assert!(events(&mut s).contains(&Event::Completed {
            id,
            result: Ok(Response::Sync(PathResponse {
                path: "/app/x".into()
            })),
        }));
    }

    /// A multi's created paths come back as client paths under a chroot, like a
    /// lone create's.
    #[test]
    fn a_multis_created_paths_lose_the_chroot() {
        use crate::records::{Create2Response, CreateResponse, MultiResponse, MultiResult, Stat};
        let mut c = Config::new(hosts(1));
        c.chroot = Chroot::new("/app").unwrap();
        let mut p = Peer::connected(c, false);
        let op = match create("/x", CreateMode::Persistent.flags()) {
            Request::Create(r) => r,
            _ => unreachable!(),
        };
        let op2 = match create("/y", CreateMode::Persistent.flags()) {
            Request::Create(r) => r,
            _ => unreachable!(),
        };
        let req = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create {
                    req: op,
                    op: OpCode::Create,
                },
                MultiOp::Create {
                    req: op2,
                    op: OpCode::Create2,
                },
            ],
        });
        let id = p.s.submit(req, p.now).unwrap().id;
        let [(xid, OpCode::Multi)] = p.transmit()[..] else {
            panic!("one multi sent");
        };
        let r = reply(xid, |b| {
            MultiResponse {
                results: vec![
                    MultiResult::Create(CreateResponse {
                        path: "/app/x".into(),
                    }),
                    MultiResult::Create2(Create2Response {
                        path: "/app/y".into(),
                        stat: Stat::default(),
                    }),
                ],
            }
            .encode(b)
        });
        p.s.handle_input(p.conn, &r, p.now);
        let got = events(&mut p.s).into_iter().find_map(|e| match e {
            Event::Completed { id: i, result } if i == id => Some(result),
            _ => None,
        });
        let Some(Ok(Response::Multi(m))) = got else {
            panic!("the multi did not complete: {got:?}");
        };
        assert_eq!(
            m.results,
            [
                MultiResult::Create(CreateResponse { path: "/x".into() }),
                MultiResult::Create2(Create2Response {
                    path: "/y".into(),
                    stat: Stat::default(),
                }),
            ]
        );
    }

    /// getEphemerals' path is a prefix: empty or `/` asks for every ephemeral
    /// of the session under the chroot, anything else is a path under it.
    #[test]
    fn get_ephemerals_prefix_under_a_chroot() {
        let chroot = Chroot::new("/app").unwrap();
        for (given, sent) in [("", "/app"), ("/", "/app"), ("/x", "/app/x")] {
            let mut req = Request::GetEphemerals(PathRequest { path: given.into() });
            super::prefix_paths(&mut req, &chroot).unwrap();
            let Request::GetEphemerals(r) = req else {
                unreachable!()
            };
            assert_eq!(r.path, sent, "{given:?}");
        }
    }

    /// create2's reply names the node as a client path under a chroot.
    #[test]
    fn a_create2_reply_loses_the_chroot() {
        use crate::records::{Create2Response, Stat};
        let mut c = Config::new(hosts(1));
        c.chroot = Chroot::new("/app").unwrap();
        let mut p = Peer::connected(c, false);
        let Request::Create(r) = create("/z", CreateMode::Persistent.flags()) else {
            unreachable!()
        };
        let id = p.s.submit(Request::Create2(r), p.now).unwrap().id;
        let [(xid, OpCode::Create2)] = p.transmit()[..] else {
            panic!("one create2 sent");
        };
        let resp = |path: &str| Create2Response {
            path: path.into(),
            stat: Stat::default(),
        };
        let r = reply(xid, |b| resp("/app/z").encode(b));
        p.s.handle_input(p.conn, &r, p.now);
        assert!(events(&mut p.s).contains(&Event::Completed {
            id,
            result: Ok(Response::Create2(resp("/z"))),
        }));
    }

    /// getEphemerals answers with client paths under a chroot.
    #[test]
    fn ephemerals_lose_the_chroot() {
        use crate::records::GetEphemeralsResponse;
        let mut c = Config::new(hosts(1));
        c.chroot = Chroot::new("/app").unwrap();
        let mut p = Peer::connected(c, false);
        let req = Request::GetEphemerals(PathRequest { path: "/".into() });
        let id = p.s.submit(req, p.now).unwrap().id;
        let [(xid, OpCode::GetEphemerals)] = p.transmit()[..] else {
            panic!("one getEphemerals sent");
        };
        let r = reply(xid, |b| {
            GetEphemeralsResponse {
                ephemerals: vec!["/app/e".into()],
            }
            .encode(b)
        });
        p.s.handle_input(p.conn, &r, p.now);
        assert!(events(&mut p.s).contains(&Event::Completed {
            id,
            result: Ok(Response::GetEphemerals(GetEphemeralsResponse {
                ephemerals: vec!["/e".into()],
            })),
        }));
    }
}
