//! One request answered: the dispatch by opcode (pings, closeSession, reads and
//! the watches they set, auth, whoAmI, ...), write requests handed to `writes.rs`.

use std::time::Instant;

use bytes::Bytes;

use crate::digest::digest_id;
use crate::error::ErrorCode;
use crate::jute::{Decode, Reader};
use crate::ops::{Request, Response};
use crate::records::{
    AuthPacket, ClientInfo, ErrorResponse, GetAclResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, GetChildrenResponse, GetEphemeralsResponse, MultiOp, MultiResponse,
    MultiResult, PathResponse, SetWatches2, StatResponse, WhoAmIResponse,
};
use crate::types::{AddWatchMode, OpCode};

use super::{tree::check_path, tree::Ctx, SimCluster, SimConnId};

fn is_write(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Sync
            | OpCode::Create
            | OpCode::Create2
            | OpCode::CreateTtl
            | OpCode::CreateContainer
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::Reconfig
            | OpCode::SetAcl
            | OpCode::Multi
            | OpCode::Check
    )
}

impl SimCluster {
    /// Applies a write as an outside client with no session (no ephemerals),
    /// firing watches like any other write. Reads are answered too.
    pub fn admin(&mut self, req: Request, now: Instant) -> Result<Response, ErrorCode> {
        let ctx = Ctx::default();
        if is_write(req.opcode()) {
            let (_, res) = self.apply_write(&ctx, &req, now);
            res
        } else {
            self.apply_read(&req)
        }
    }

    pub(super) fn auth(&mut self, cid: SimConnId, xid: i32, body: Bytes) {
        let Ok(pkt) = AuthPacket::decode(&mut Reader::new(body)) else {
            self.close_conn(cid, true);
            return;
        };
        if pkt.scheme != "digest" {
            self.reply(cid, xid, 0, Err(ErrorCode::AuthFailed));
            self.close_conn(cid, true);
            return;
        }
        let text = String::from_utf8_lossy(&pkt.auth).into_owned();
        let user = text.split(':').next().unwrap_or("").to_owned();
        let id = digest_id(&text);
        if let Some(c) = self.conns.get_mut(&cid) {
            if !c.digest_users.iter().any(|(_, i)| *i == id) {
                c.digest_users.push((user, id));
            }
        }
        self.reply(cid, xid, 0, Ok(Response::Empty));
    }

    /// Processes one pipelined request and queues its reply.
    pub(super) fn execute(
        &mut self,
        cid: SimConnId,
        xid: i32,
        op: OpCode,
        body: Bytes,
        now: Instant,
    ) {
        let member = match self.conns.get(&cid) {
            Some(c) if !c.closing && !c.hung => c.member,
            _ => return,
        };
        let cur = self.visible_zxid(member);
        match op {
            OpCode::Check => {
                if let Some(c) = self.conns.get_mut(&cid) {
                    c.hung = true;
                }
                return;
            }
            OpCode::Unknown(_)
            | OpCode::Notification
            | OpCode::CreateSession
            | OpCode::Error
            | OpCode::DeleteContainer => {
                self.reply(cid, xid, -1, Err(ErrorCode::Unimplemented));
                self.close_conn(cid, true);
                return;
            }
            _ => {}
        }
        let mut r = Reader::new(body);
        let req = match Request::decode_body(op, &mut r) {
            Ok(Request::Multi(m)) if m.ops.iter().any(MultiOp::is_read) => None,
            Ok(Request::MultiRead(m)) if m.ops.iter().any(|o| !o.is_read()) => None,
            Ok(req) => Some(req),
            Err(_) => None,
        };
        let Some(req) = req else {
            self.reply(cid, xid, cur, Err(ErrorCode::MarshallingError));
            return;
        };
        if self.members[member].read_only && is_write(op) {
            self.reply(cid, xid, cur, Err(ErrorCode::NotReadOnly));
            return;
        }
        match req {
            Request::Ping => self.reply(cid, -2, cur, Ok(Response::Empty)),
            Request::CloseSession => {
                let zxid = self.next_zxid();
                if let Some(sid) = self.conns.get(&cid).and_then(|c| c.session) {
                    self.kill_session(sid, zxid, now);
                }
                self.reply(cid, xid, zxid, Ok(Response::Empty));
                self.close_conn(cid, true);
            }
            Request::Reconfig(_) => self.reply(cid, xid, cur, Err(ErrorCode::ReconfigDisabled)),
            Request::Sync(p) => {
                let res =
                    check_path(&p.path).map(|_| Response::Sync(PathResponse { path: p.path }));
                self.reply(cid, xid, cur, res);
            }
            req if is_write(op) => {
                let ctx = self.ctx(cid);
                let (zxid, res) = self.apply_write(&ctx, &req, now);
                self.reply(cid, xid, zxid, res);
            }
            Request::Exists(r) => {
                let res = self
                    .tree
                    .node(&r.path)
                    .map(|n| Response::Stat(StatResponse { stat: n.stat() }));
                if r.watch && !matches!(res, Err(ErrorCode::BadArguments)) {
                    self.watches_mut(cid).data.insert(r.path);
                }
                self.reply(cid, xid, cur, res);
            }
            Request::GetData(r) => {
                let res = self.tree.get_data(&r.path).map(Response::GetData);
                if r.watch && res.is_ok() {
                    self.watches_mut(cid).data.insert(r.path);
                }
                self.reply(cid, xid, cur, res);
            }
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                let res = self.tree.children(&r.path).map(|(children, stat)| {
                    if op == OpCode::GetChildren {
                        Response::GetChildren(GetChildrenResponse { children })
                    } else {
                        Response::GetChildren2(GetChildren2Response { children, stat })
                    }
                });
                if r.watch && res.is_ok() {
                    self.watches_mut(cid).child.insert(r.path);
                }
                self.reply(cid, xid, cur, res);
            }
            Request::CheckWatches(r) | Request::RemoveWatches(r) => {
                let remove = op == OpCode::RemoveWatches;
                let res = self.remove_watches(cid, &r, remove);
                self.reply(cid, xid, cur, res.map(|_| Response::Empty));
            }
            Request::AddWatch(r) => {
                let res = check_path(&r.path).and_then(|_| {
                    let w = self.watches_mut(cid);
                    match r.mode {
                        AddWatchMode::Persistent => w.persistent.insert(r.path.clone()),
                        AddWatchMode::PersistentRecursive => w.recursive.insert(r.path.clone()),
                        _ => return Err(ErrorCode::BadArguments),
                    };
                    Ok(Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }))
                });
                self.reply(cid, xid, cur, res);
            }
            Request::SetWatches(_) | Request::SetWatches2(_)
                if self.set_watches_answers.front().is_some_and(|c| !c.is_ok()) =>
            {
                let code = self.set_watches_answers.pop_front().unwrap_or_default();
                self.reply(cid, xid, cur, Err(code));
            }
            Request::SetWatches(sw) => {
                self.set_watches_answers.pop_front();
                let sw2 = SetWatches2 {
                    relative_zxid: sw.relative_zxid,
                    data_watches: sw.data_watches,
                    exist_watches: sw.exist_watches,
                    child_watches: sw.child_watches,
                    ..SetWatches2::default()
                };
                self.set_watches(cid, sw2);
                self.reply(cid, xid, cur, Ok(Response::Empty));
            }
            Request::SetWatches2(sw) => {
                self.set_watches_answers.pop_front();
                self.set_watches(cid, sw);
                self.reply(cid, xid, cur, Ok(Response::Empty));
            }
            Request::GetEphemerals(p) => {
                let sid = self.conns.get(&cid).and_then(|c| c.session).unwrap_or(0);
                let all = p.path.is_empty() || p.path == "/";
                let ephemerals = self
                    .ephemerals(sid)
                    .into_iter()
                    .filter(|e| all || e.starts_with(&p.path))
                    .collect();
                let res = Response::GetEphemerals(GetEphemeralsResponse { ephemerals });
                self.reply(cid, xid, cur, Ok(res));
            }
            Request::WhoAmI => {
                let mut client_info = vec![ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                }];
                if let Some(c) = self.conns.get(&cid) {
                    for (user, _) in &c.digest_users {
                        client_info.push(ClientInfo {
                            auth_scheme: "digest".into(),
                            user: user.clone(),
                        });
                    }
                }
                let res = Response::WhoAmI(WhoAmIResponse { client_info });
                self.reply(cid, xid, cur, Ok(res));
            }
            req => {
                let res = self.apply_read(&req);
                self.reply(cid, xid, cur, res);
            }
        }
    }

    /// Reads that set no watches.
    fn apply_read(&self, req: &Request) -> Result<Response, ErrorCode> {
        match req {
            Request::Exists(r) => self
                .tree
                .node(&r.path)
                .map(|n| Response::Stat(StatResponse { stat: n.stat() })),
            Request::GetData(r) => self.tree.get_data(&r.path).map(Response::GetData),
            Request::GetChildren(r) => self
                .tree
                .children(&r.path)
                .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
            Request::GetChildren2(r) => self.tree.children(&r.path).map(|(children, stat)| {
                Response::GetChildren2(GetChildren2Response { children, stat })
            }),
            Request::GetAcl(r) => self.tree.node(&r.path).map(|n| {
                Response::GetAcl(GetAclResponse {
                    acl: n.acl.clone(),
                    stat: n.stat(),
                })
            }),
            Request::GetAllChildrenNumber(r) => self.tree.node(&r.path).map(|_| {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse {
                    total_number: self.tree.descendants(&r.path) as i32,
                })
            }),
            Request::MultiRead(m) => {
                let results = m
                    .ops
                    .iter()
                    .map(|op| match op {
                        MultiOp::GetData(r) => match self.tree.get_data(&r.path) {
                            Ok(d) => MultiResult::GetData(d),
                            Err(e) => MultiResult::Error(e),
                        },
                        MultiOp::GetChildren(r) => match self.tree.children(&r.path) {
                            Ok((children, _)) => {
                                MultiResult::GetChildren(GetChildrenResponse { children })
                            }
                            Err(e) => MultiResult::Error(e),
                        },
                        _ => MultiResult::Error(ErrorCode::MarshallingError),
                    })
                    .collect();
                Ok(Response::Multi(MultiResponse { results }))
            }
            _ => Err(ErrorCode::Unimplemented),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::digest::digest_id;
    use crate::error::ErrorCode;
    use crate::jute::to_bytes;
    use crate::ops::{Request, Response};
    use crate::records::{
        Acl, AuthPacket, CreateRequest, CreateTtlRequest, DeleteRequest,
        GetAllChildrenNumberResponse, PathRequest, SetDataRequest, Stat,
    };
    use crate::testing::server::test_wire::{create, pw, T};
    use crate::types::Perms;

    #[test]
    fn create_get_set_delete() {
        let (mut t, a) = T::with_session(1);
        let Response::Create2(c) = t.ok(a, 1, &Request::Create2(create("/a", b"hi", 0))) else {
            panic!()
        };
        assert_eq!(c.path, "/a");
        assert_eq!(c.stat.data_length, 2);
        assert_eq!(c.stat.czxid, t.c.last_zxid());
        assert_eq!(c.stat.ephemeral_owner, 0);
        let Response::Create(c) = t.ok(a, 2, &Request::Create(create("/a/b", b"", 0))) else {
            panic!()
        };
        assert_eq!(c.path, "/a/b");
        let Response::GetData(d) = t.ok(a, 3, &Request::GetData(pw("/a", false))) else {
            panic!()
        };
        assert_eq!(d.data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(d.stat.num_children, 1);
        assert_eq!(d.stat.cversion, 1);

        let set = |v| {
            Request::SetData(SetDataRequest {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"v2")),
                version: v,
            })
        };
        assert_eq!(t.err(a, 4, &set(5)), ErrorCode::BadVersion);
        let Response::Stat(s) = t.ok(a, 5, &set(0)) else {
            panic!()
        };
        assert_eq!(s.stat.version, 1);
        assert_eq!(s.stat.mzxid, t.c.last_zxid());

        let del = |p: &str, v| {
            Request::Delete(DeleteRequest {
                path: p.into(),
                version: v,
            })
        };
        assert_eq!(t.err(a, 6, &del("/a", -1)), ErrorCode::NotEmpty);
        assert_eq!(t.err(a, 7, &del("/nope", -1)), ErrorCode::NoNode);
        assert_eq!(t.err(a, 8, &del("/a/b", 3)), ErrorCode::BadVersion);
        assert_eq!(t.ok(a, 9, &del("/a/b", 0)), Response::Empty);
        assert_eq!(
            t.err(a, 10, &del("/zookeeper", -1)),
            ErrorCode::BadArguments
        );
        let cr = |p: &str, flags| Request::Create(create(p, b"", flags));
        assert_eq!(t.err(a, 11, &cr("/a", 0)), ErrorCode::NodeExists);
        assert_eq!(t.err(a, 12, &cr("/x/y", 0)), ErrorCode::NoNode);
        assert_eq!(t.err(a, 13, &cr("/f", 7)), ErrorCode::BadArguments);
        assert_eq!(
            t.err(a, 14, &cr("/f", 5)),
            ErrorCode::BadArguments,
            "TTL flags on op 1"
        );
        let Response::Create2(e) = t.ok(a, 15, &Request::Create2(create("/e", b"", 1))) else {
            panic!()
        };
        assert_eq!(e.stat.ephemeral_owner, a.sid);
        assert_eq!(
            t.err(a, 16, &cr("/e/c", 0)),
            ErrorCode::NoChildrenForEphemerals
        );
        let ttl = |flags, ttl| {
            Request::CreateTtl(CreateTtlRequest {
                path: "/ttl".into(),
                data: Some(Bytes::new()),
                acl: Acl::open_unsafe(),
                flags,
                ttl,
            })
        };
        assert_eq!(t.err(a, 17, &ttl(0, 100)), ErrorCode::BadArguments);
        assert_eq!(t.err(a, 18, &ttl(5, 0)), ErrorCode::BadArguments);
        let Response::Create2(c) = t.ok(a, 19, &ttl(5, 100)) else {
            panic!()
        };
        assert_eq!(c.stat.ephemeral_owner, 0);
        assert_eq!(
            t.err(
                a,
                20,
                &Request::Create(CreateRequest {
                    acl: vec![],
                    ..create("/n", b"", 0)
                })
            ),
            ErrorCode::InvalidAcl
        );
        let Response::GetChildren(ch) = t.ok(a, 21, &Request::GetChildren(pw("/", false))) else {
            panic!()
        };
        assert_eq!(ch.children, vec!["a", "e", "ttl", "zookeeper"]);
        assert_eq!(
            t.ok(
                a,
                22,
                &Request::GetAllChildrenNumber(PathRequest { path: "/".into() })
            ),
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 6 })
        );
        let Response::GetEphemerals(e) = t.ok(
            a,
            23,
            &Request::GetEphemerals(PathRequest { path: "/".into() }),
        ) else {
            panic!()
        };
        assert_eq!(e.ephemerals, vec!["/e"]);
        assert_eq!(
            t.err(a, 24, &Request::Exists(pw("/nothere", false))),
            ErrorCode::NoNode
        );
    }

    #[test]
    fn replies_carry_the_xid_and_zxid() {
        let (mut t, a) = T::with_session(1);
        let z0 = t.c.last_zxid();
        let frames = t.call(a, 41, &Request::Create(create("/z", b"", 0)));
        assert_eq!(frames[0].0.xid, 41);
        assert_eq!(frames[0].0.zxid, z0 + 1);
        // A failed write consumes a zxid too.
        let frames = t.call(a, 42, &Request::Create(create("/z", b"", 0)));
        assert_eq!(frames[0].0.zxid, z0 + 2);
        // Reads report the last zxid.
        let frames = t.call(a, 43, &Request::GetData(pw("/z", false)));
        assert_eq!(frames[0].0.zxid, z0 + 2);
        // Ping: xid -2 whatever was sent.
        let frames = t.call(a, 44, &Request::Ping);
        assert_eq!(frames[0].0.xid, -2);
        assert_eq!(frames[0].0.zxid, z0 + 2);
    }

    #[test]
    fn auth_ok_whoami_and_failure_closes() {
        let (mut t, a) = T::with_session(1);
        let auth = |scheme: &str, cred: &'static [u8]| {
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: scheme.into(),
                auth: Bytes::from_static(cred),
            })
        };
        let frames = t.call(a, -4, &auth("digest", b"alice:wrong"));
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].0.xid, frames[0].0.zxid, frames[0].0.err),
            (-4, 0, ErrorCode::Ok)
        );
        let Response::WhoAmI(w) = t.ok(a, 1, &Request::WhoAmI) else {
            panic!()
        };
        assert_eq!(w.client_info[1].auth_scheme, "digest");
        assert_eq!(w.client_info[1].user, "alice");
        // CREATOR_ALL expands to the digest id.
        t.ok(
            a,
            2,
            &Request::Create(CreateRequest {
                acl: Acl::creator_all(),
                ..create("/secret", b"", 0)
            }),
        );
        assert_eq!(
            t.c.acl("/secret").unwrap(),
            vec![Acl::new(
                Perms::ALL,
                "digest",
                "alice:9ussi3jBkbd4no1raUvxHSkUEN8="
            )]
        );

        let frames = t.call(a, -4, &auth("bogus", b"x"));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.err, ErrorCode::AuthFailed);
        assert_eq!(t.closes(), vec![a.conn]);
    }

    #[test]
    fn digest_id_matches_known_vector() {
        assert_eq!(
            digest_id("alice:wrong"),
            "alice:9ussi3jBkbd4no1raUvxHSkUEN8="
        );
        let _ = to_bytes(&Stat::default());
    }
}
