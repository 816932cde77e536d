//! Requests and replies by operation: which body goes with which opcode.

use bytes::BytesMut;

use crate::error::DecodeError;
use crate::jute::{Decode, Encode, Reader};
use crate::records::*;
use crate::types::OpCode;

/// A request body together with its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// create (1): replies with the path only.
    Create(CreateRequest),
    /// create2 (15): replies with path and Stat.
    Create2(CreateRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// exists (3).
    Exists(PathWatchRequest),
    /// getData (4).
    GetData(PathWatchRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(PathRequest),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(PathWatchRequest),
    /// getChildren2 (12).
    GetChildren2(PathWatchRequest),
    /// sync (9).
    Sync(PathRequest),
    /// check (13): only meaningful inside multi; 3.8 servers never answer it alone.
    Check(CheckVersionRequest),
    /// multi (14).
    Multi(MultiRequest),
    /// multiRead (22).
    MultiRead(MultiRequest),
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// checkWatches (17).
    CheckWatches(WatchesRequest),
    /// removeWatches (18).
    RemoveWatches(WatchesRequest),
    /// addWatch (106).
    AddWatch(AddWatchRequest),
    /// setWatches (101).
    SetWatches(SetWatches),
    /// setWatches2 (105).
    SetWatches2(SetWatches2),
    /// auth (100).
    Auth(AuthPacket),
    /// sasl (102).
    Sasl(SaslPacket),
    /// getEphemerals (103); the path is a plain prefix.
    GetEphemerals(PathRequest),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(PathRequest),
    /// whoAmI (107).
    WhoAmI,
    /// ping (11).
    Ping,
    /// closeSession (-11).
    CloseSession,
}

impl Request {
    /// The opcode in the request header.
    pub fn opcode(&self) -> OpCode {
        use Request::*;
        match self {
            Create(_) => OpCode::Create,
            Create2(_) => OpCode::Create2,
            CreateContainer(_) => OpCode::CreateContainer,
            CreateTtl(_) => OpCode::CreateTtl,
            Delete(_) => OpCode::Delete,
            Exists(_) => OpCode::Exists,
            GetData(_) => OpCode::GetData,
            SetData(_) => OpCode::SetData,
            GetAcl(_) => OpCode::GetAcl,
            SetAcl(_) => OpCode::SetAcl,
            GetChildren(_) => OpCode::GetChildren,
            GetChildren2(_) => OpCode::GetChildren2,
            Sync(_) => OpCode::Sync,
            Check(_) => OpCode::Check,
            Multi(_) => OpCode::Multi,
            MultiRead(_) => OpCode::MultiRead,
            Reconfig(_) => OpCode::Reconfig,
            CheckWatches(_) => OpCode::CheckWatches,
            RemoveWatches(_) => OpCode::RemoveWatches,
            AddWatch(_) => OpCode::AddWatch,
            SetWatches(_) => OpCode::SetWatches,
            SetWatches2(_) => OpCode::SetWatches2,
            Auth(_) => OpCode::Auth,
            Sasl(_) => OpCode::Sasl,
            GetEphemerals(_) => OpCode::GetEphemerals,
            GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            WhoAmI => OpCode::WhoAmI,
            Ping => OpCode::Ping,
            CloseSession => OpCode::CloseSession,
        }
    }

    /// Writes the body (without header).
    pub fn encode_body(&self, buf: &mut BytesMut) {
        use Request::*;
        match self {
            Create(r) | Create2(r) | CreateContainer(r) => r.encode(buf),
            CreateTtl(r) => r.encode(buf),
            Delete(r) => r.encode(buf),
            Exists(r) | GetData(r) | GetChildren(r) | GetChildren2(r) => r.encode(buf),
            SetData(r) => r.encode(buf),
            GetAcl(r) | Sync(r) | GetEphemerals(r) | GetAllChildrenNumber(r) => r.encode(buf),
            SetAcl(r) => r.encode(buf),
            Check(r) => r.encode(buf),
            Multi(r) | MultiRead(r) => r.encode(buf),
            Reconfig(r) => r.encode(buf),
            CheckWatches(r) | RemoveWatches(r) => r.encode(buf),
            AddWatch(r) => r.encode(buf),
            SetWatches(r) => r.encode(buf),
            SetWatches2(r) => r.encode(buf),
            Auth(r) => r.encode(buf),
            Sasl(r) => r.encode(buf),
            WhoAmI | Ping | CloseSession => {}
        }
    }

    /// Reads the body of a request with opcode `op` (used by the simulated server and fuzzing).
    pub fn decode_body(op: OpCode, r: &mut Reader) -> Result<Request, DecodeError> {
        use Request::*;
        Ok(match op {
            OpCode::Create => Create(Decode::decode(r)?),
            OpCode::Create2 => Create2(Decode::decode(r)?),
            OpCode::CreateContainer => CreateContainer(Decode::decode(r)?),
            OpCode::CreateTtl => CreateTtl(Decode::decode(r)?),
            OpCode::Delete => Delete(Decode::decode(r)?),
            OpCode::Exists => Exists(Decode::decode(r)?),
            OpCode::GetData => GetData(Decode::decode(r)?),
            OpCode::SetData => SetData(Decode::decode(r)?),
            OpCode::GetAcl => GetAcl(Decode::decode(r)?),
            OpCode::SetAcl => SetAcl(Decode::decode(r)?),
            OpCode::GetChildren => GetChildren(Decode::decode(r)?),
            OpCode::GetChildren2 => GetChildren2(Decode::decode(r)?),
            OpCode::Sync => Sync(Decode::decode(r)?),
            OpCode::Check => Check(Decode::decode(r)?),
            OpCode::Multi => Multi(Decode::decode(r)?),
            OpCode::MultiRead => MultiRead(Decode::decode(r)?),
            OpCode::Reconfig => Reconfig(Decode::decode(r)?),
            OpCode::CheckWatches => CheckWatches(Decode::decode(r)?),
            OpCode::RemoveWatches => RemoveWatches(Decode::decode(r)?),
            OpCode::AddWatch => AddWatch(Decode::decode(r)?),
            OpCode::SetWatches => SetWatches(Decode::decode(r)?),
            OpCode::SetWatches2 => SetWatches2(Decode::decode(r)?),
            OpCode::Auth => Auth(Decode::decode(r)?),
            OpCode::Sasl => Sasl(Decode::decode(r)?),
            OpCode::GetEphemerals => GetEphemerals(Decode::decode(r)?),
            OpCode::GetAllChildrenNumber => GetAllChildrenNumber(Decode::decode(r)?),
            OpCode::WhoAmI => WhoAmI,
            OpCode::Ping => Ping,
            OpCode::CloseSession => CloseSession,
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "opcode",
                    value: other.to_i32() as i64,
                })
            }
        })
    }

    /// Every node path the request carries, for chroot prefixing and validation.
    /// getEphemerals' prefix is included (it is prefixed but is not a node path).
    ///
    /// Why: to rewrite or check every path of a request, a multi's included,
    /// without a match over every operation.
    ///
    /// ```
    /// use zk_proto::path::Chroot;
    /// use zk_proto::{DeleteRequest, MultiOp, MultiRequest, Request};
    ///
    /// let delete = |p: &str| MultiOp::Delete(DeleteRequest { path: p.into(), version: -1 });
    /// let mut req = Request::Multi(MultiRequest { ops: vec![delete("/a"), delete("/b")] });
    /// let chroot = Chroot::new("/app").unwrap();
    /// req.for_each_path_mut(|p| chroot.prefix_in_place(p));
    ///
    /// let mut paths = Vec::new();
    /// req.for_each_path_mut(|p| paths.push(p.clone()));
    /// assert_eq!(paths, ["/app/a", "/app/b"]);
    /// ```
    pub fn for_each_path_mut(&mut self, mut f: impl FnMut(&mut String)) {
        use Request::*;
        match self {
            Create(r) | Create2(r) | CreateContainer(r) => f(&mut r.path),
            CreateTtl(r) => f(&mut r.path),
            Delete(r) => f(&mut r.path),
            Exists(r) | GetData(r) | GetChildren(r) | GetChildren2(r) => f(&mut r.path),
            SetData(r) => f(&mut r.path),
            GetAcl(r) | Sync(r) | GetEphemerals(r) | GetAllChildrenNumber(r) => f(&mut r.path),
            SetAcl(r) => f(&mut r.path),
            Check(r) => f(&mut r.path),
            Multi(r) | MultiRead(r) => r.ops.iter_mut().for_each(|op| f(op.path_mut())),
            CheckWatches(r) | RemoveWatches(r) => f(&mut r.path),
            AddWatch(r) => f(&mut r.path),
            SetWatches(r) => {
                for p in r
                    .data_watches
                    .iter_mut()
                    .chain(&mut r.exist_watches)
                    .chain(&mut r.child_watches)
                {
                    f(p)
                }
            }
            SetWatches2(r) => {
                for p in r
                    .data_watches
                    .iter_mut()
                    .chain(&mut r.exist_watches)
                    .chain(&mut r.child_watches)
                    .chain(&mut r.persistent_watches)
                    .chain(&mut r.persistent_recursive_watches)
                {
                    f(p)
                }
            }
            Reconfig(_) | Auth(_) | Sasl(_) | WhoAmI | Ping | CloseSession => {}
        }
    }

    /// Whether the server may have applied it even though the reply was lost.
    /// Reads are safe to repeat; writes are not.
    ///
    /// Why: after `ConnectionLoss`, a retry policy may resend a read blindly but
    /// must check whether a write landed first.
    ///
    /// ```
    /// use zk_proto::{DeleteRequest, PathWatchRequest, Request};
    ///
    /// let read = Request::Exists(PathWatchRequest { path: "/a".into(), watch: false });
    /// let write = Request::Delete(DeleteRequest { path: "/a".into(), version: -1 });
    /// assert!(!read.is_write());
    /// assert!(write.is_write());
    /// ```
    pub fn is_write(&self) -> bool {
        use Request::*;
        matches!(
            self,
            Create(_)
                | Create2(_)
                | CreateContainer(_)
                | CreateTtl(_)
                | Delete(_)
                | SetData(_)
                | SetAcl(_)
                | Multi(_)
                | Reconfig(_)
                | CloseSession
        )
    }
}

/// A successful reply body, by operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// No body: delete, ping, auth, setWatches(2), checkWatches, removeWatches, closeSession.
    Empty,
    /// create.
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    /// exists, setData, setACL.
    Stat(StatResponse),
    /// getData, reconfig.
    GetData(GetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(PathResponse),
    /// multi, multiRead.
    Multi(MultiResponse),
    /// addWatch (a 4-byte code, always 0).
    AddWatch(ErrorResponse),
    /// sasl.
    Sasl(SaslPacket),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
}

impl Response {
    /// Reads the body of a successful reply to a request with opcode `op`.
    /// The whole body must be consumed.
    ///
    /// Why: the reply body has no type tag; only the request's opcode says how to
    /// read it (a tool decoding captured traffic, a test playing the server).
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use zk_proto::error::DecodeError;
    /// use zk_proto::jute::Reader;
    /// use zk_proto::types::OpCode;
    /// use zk_proto::{GetDataResponse, Response, Stat};
    ///
    /// let reply = Response::GetData(GetDataResponse {
    ///     data: Some(Bytes::from_static(b"42")),
    ///     stat: Stat { version: 3, data_length: 2, ..Stat::default() },
    /// });
    /// let mut body = BytesMut::new();
    /// reply.encode_body(&mut body);
    /// let body = body.freeze();
    /// let decoded = Response::decode_body(OpCode::GetData, &mut Reader::new(body.clone()));
    /// assert_eq!(decoded, Ok(reply));
    ///
    /// // Read as an exists reply (a bare 68-byte Stat), the 74 bytes do not fit.
    /// let wrong = Response::decode_body(OpCode::Exists, &mut Reader::new(body));
    /// assert_eq!(wrong, Err(DecodeError::TrailingBytes(6)));
    /// ```
    pub fn decode_body(op: OpCode, r: &mut Reader) -> Result<Response, DecodeError> {
        let resp = match op {
            OpCode::Create => Response::Create(Decode::decode(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Decode::decode(r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Decode::decode(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Decode::decode(r)?),
            OpCode::GetAcl => Response::GetAcl(Decode::decode(r)?),
            OpCode::GetChildren => Response::GetChildren(Decode::decode(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Decode::decode(r)?),
            OpCode::Sync => Response::Sync(Decode::decode(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(Decode::decode(r)?),
            OpCode::AddWatch => {
                // The body is a 4-byte code; tolerate a server that sends none.
                if r.is_empty() {
                    Response::AddWatch(ErrorResponse::default())
                } else {
                    Response::AddWatch(Decode::decode(r)?)
                }
            }
            OpCode::Sasl => Response::Sasl(Decode::decode(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Decode::decode(r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Decode::decode(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Decode::decode(r)?),
            _ => Response::Empty,
        };
        r.finish()?;
        Ok(resp)
    }

    /// Writes the body (used by the simulated server).
    pub fn encode_body(&self, buf: &mut BytesMut) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.encode(buf),
            Response::Create2(r) => r.encode(buf),
            Response::Stat(r) => r.encode(buf),
            Response::GetData(r) => r.encode(buf),
            Response::GetAcl(r) => r.encode(buf),
            Response::GetChildren(r) => r.encode(buf),
            Response::GetChildren2(r) => r.encode(buf),
            Response::Sync(r) => r.encode(buf),
            Response::Multi(r) => r.encode(buf),
            Response::AddWatch(r) => r.encode(buf),
            Response::Sasl(r) => r.encode(buf),
            Response::GetEphemerals(r) => r.encode(buf),
            Response::GetAllChildrenNumber(r) => r.encode(buf),
            Response::WhoAmI(r) => r.encode(buf),
        }
    }
}
