//! Writes: every write takes a zxid (failed ones too), applies to the tree and
//! fires watches; a multi applies all of its operations or none.

use std::time::Instant;

use crate::error::ErrorCode;
use crate::ops::{Request, Response};
use crate::records::{
    Create2Response, CreateResponse, MultiOp, MultiRequest, MultiResponse, MultiResult,
    PathResponse, StatResponse,
};
use crate::types::OpCode;

use super::{tree::Ctx, watches::Trigger, SimCluster};

impl SimCluster {
    /// Applies a write (never fails to assign a zxid), firing watches on success.
    pub(super) fn apply_write(
        &mut self,
        ctx: &Ctx,
        req: &Request,
        now: Instant,
    ) -> (i64, Result<Response, ErrorCode>) {
        let zxid = self.next_zxid();
        let time = self.time_ms(now);
        let mut triggers = Vec::new();
        let res = match req {
            Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => {
                let op = req.opcode();
                self.tree
                    .create(ctx, op, c, -1, zxid, time, &mut triggers)
                    .map(|(path, stat)| {
                        if op == OpCode::Create {
                            Response::Create(CreateResponse { path })
                        } else {
                            Response::Create2(Create2Response { path, stat })
                        }
                    })
            }
            Request::CreateTtl(c) => self
                .tree
                .create_ttl(ctx, c, zxid, time, &mut triggers)
                .map(|(path, stat)| Response::Create2(Create2Response { path, stat })),
            Request::Delete(d) => self
                .tree
                .delete(&d.path, d.version, zxid, &mut triggers)
                .map(|_| Response::Empty),
            Request::SetData(s) => self
                .tree
                .set_data(s, zxid, time, &mut triggers)
                .map(|stat| Response::Stat(StatResponse { stat })),
            Request::SetAcl(s) => self
                .tree
                .set_acl(ctx, s)
                .map(|stat| Response::Stat(StatResponse { stat })),
            Request::Multi(m) => Ok(Response::Multi(self.multi(
                ctx,
                m,
                zxid,
                time,
                &mut triggers,
            ))),
            Request::Sync(p) => Ok(Response::Sync(PathResponse {
                path: p.path.clone(),
            })),
            _ => Err(ErrorCode::Unimplemented),
        };
        self.fire(triggers);
        (zxid, res)
    }

    fn multi(
        &mut self,
        ctx: &Ctx,
        m: &MultiRequest,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> MultiResponse {
        let mut staged = self.tree.clone();
        let mut staged_triggers = Vec::new();
        let mut results = Vec::new();
        let mut failed = None;
        for (i, op) in m.ops.iter().enumerate() {
            let t = &mut staged_triggers;
            let res =
                match op {
                    MultiOp::Create { op, req } => staged
                        .create(ctx, *op, req, -1, zxid, time, t)
                        .map(|(path, stat)| match op {
                            OpCode::Create | OpCode::Create2 => {
                                MultiResult::Create(CreateResponse { path })
                            }
                            _ => MultiResult::Create2(Create2Response { path, stat }),
                        }),
                    MultiOp::CreateTtl(c) => staged
                        .create_ttl(ctx, c, zxid, time, t)
                        .map(|(path, stat)| MultiResult::Create2(Create2Response { path, stat })),
                    MultiOp::Delete(d) => staged
                        .delete(&d.path, d.version, zxid, t)
                        .map(|_| MultiResult::Delete),
                    MultiOp::SetData(s) => staged
                        .set_data(s, zxid, time, t)
                        .map(|stat| MultiResult::SetData(StatResponse { stat })),
                    MultiOp::Check(c) => staged.check(c).map(|_| MultiResult::Check),
                    _ => Err(ErrorCode::MarshallingError),
                };
            match res {
                Ok(r) => results.push(r),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        if let Some((i, e)) = failed {
            let results = (0..m.ops.len())
                .map(|j| {
                    MultiResult::Error(match j.cmp(&i) {
                        std::cmp::Ordering::Less => ErrorCode::Ok,
                        std::cmp::Ordering::Equal => e,
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                    })
                })
                .collect();
            return MultiResponse { results };
        }
        self.tree = staged;
        triggers.extend(staged_triggers);
        MultiResponse { results }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::error::ErrorCode;
    use crate::ops::{Request, Response};
    use crate::records::{CheckVersionRequest, MultiOp, MultiRequest, MultiResult, SetDataRequest};
    use crate::testing::server::test_wire::{create, pw, T};
    use crate::types::OpCode;

    #[test]
    fn failed_multi_bytes_and_nothing_applied() {
        let (mut t, a) = T::with_node(1, create("/m", b"", 0));
        let z0 = t.c.last_zxid();
        let multi = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create,
                    req: create("/m/new", b"", 0),
                },
                MultiOp::Create {
                    op: OpCode::Create,
                    req: create("/m", b"", 0),
                },
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: Some(Bytes::new()),
                    version: -1,
                }),
            ],
        });
        let frames = t.call(a, 2, &multi);
        assert_eq!(frames.len(), 1);
        let (h, body) = &frames[0];
        assert_eq!(h.err, ErrorCode::Ok, "a failed multi has header err 0");
        assert_eq!(h.zxid, z0 + 1);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, // error, Ok
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x92, 0xff, 0xff, 0xff, 0x92, // NodeExists
            0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfe, // RuntimeInconsistency
            0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff, // terminator
        ];
        // The Ok slot: header err 0, ErrorResponse 0.
        let mut exp = expected.to_vec();
        exp[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(&body[..], &exp[..]);
        assert!(t.c.get("/m/new").is_none());
        assert_eq!(t.c.get("/m").unwrap().1.version, 0);

        // A successful multi shares one zxid and applies everything.
        let ok = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create2,
                    req: create("/m/x", b"", 0),
                },
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 0,
                }),
                MultiOp::Create {
                    op: OpCode::CreateContainer,
                    req: create("/m/c", b"", 4),
                },
            ],
        });
        let Response::Multi(m) = t.ok(a, 3, &ok) else {
            panic!()
        };
        assert!(matches!(&m.results[0], MultiResult::Create(c) if c.path == "/m/x"));
        assert_eq!(m.results[1], MultiResult::Check);
        assert!(
            matches!(&m.results[2], MultiResult::Create2(c) if c.stat.czxid == t.c.last_zxid())
        );
        assert_eq!(t.c.get("/m/x").unwrap().1.czxid, t.c.last_zxid());

        // Reads inside multi: MARSHALLINGERROR, connection stays.
        let bad = Request::Multi(MultiRequest {
            ops: vec![MultiOp::GetData(pw("/m", false))],
        });
        assert_eq!(t.err(a, 4, &bad), ErrorCode::MarshallingError);
        let mr = Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetData(pw("/m", true)),
                MultiOp::GetChildren(pw("/none", false)),
            ],
        });
        let Response::Multi(m) = t.ok(a, 5, &mr) else {
            panic!()
        };
        assert!(matches!(m.results[0], MultiResult::GetData(_)));
        assert_eq!(m.results[1], MultiResult::Error(ErrorCode::NoNode));
        assert_eq!(t.c.watch_count(a.conn), 0, "multiRead sets no watches");
        assert!(t.closes().is_empty());
    }
}
