//! Typed operations for transactions and multi-reads.

use bytes::Bytes;

use crate::data::{Data, IntoData};
use zk_proto::{
    Acl, CheckVersionRequest, CreateMode, CreateRequest, CreateTtlRequest, DeleteRequest,
    ErrorCode, MultiOp, MultiResult, OpCode, PathWatchRequest, SetDataRequest, Stat,
};

/// Options of a create.
///
/// ```
/// use zk_client::{acl, CreateMode, CreateOptions};
/// // kazoo's create(path, value, ephemeral=True, sequence=True, makepath=True):
/// let opts = CreateOptions {
///     make_parents: true,
///     ..CreateOptions::mode(CreateMode::EphemeralSequential)
/// };
/// // With an ACL of its own (the client's default ACL otherwise):
/// let read_only = CreateOptions { acl: Some(acl::read_acl_unsafe()), ..Default::default() };
/// assert_eq!(read_only.mode, CreateMode::Persistent);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The mode (persistent by default).
    pub mode: CreateMode,
    /// The ACL; the client's default ACL when `None`.
    pub acl: Option<Vec<Acl>>,
    /// Create missing parents (as persistent nodes), like kazoo's `makepath`.
    pub make_parents: bool,
}

impl CreateOptions {
    /// Options with this mode.
    pub fn mode(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            ..Default::default()
        }
    }
}

/// One write of a transaction, for [`Client::multi`](crate::Client::multi)
/// (or collect them with [`Client::transaction`](crate::Client::transaction)).
///
/// ```
/// use zk_client::{CreateMode, Data, Op};
/// let ops = vec![
///     Op::check("/config", 4),                  // fails the whole multi unless version 4
///     Op::set_data("/config", "v5", Some(4)),
///     Op::create("/config/lock", Data::null(), CreateMode::Ephemeral),
///     Op::delete("/config/old", None),          // any version
/// ];
/// assert_eq!(ops[3], Op::Delete { path: "/config/old".into(), version: -1 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node.
    Create {
        /// Path.
        path: String,
        /// Data (`None`: null).
        data: Option<Bytes>,
        /// ACL (the client default when `None`).
        acl: Option<Vec<Acl>>,
        /// Mode.
        mode: CreateMode,
    },
    /// Delete a node (version -1 for any).
    Delete {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// Set a node's data.
    SetData {
        /// Path.
        path: String,
        /// Data (`None`: null).
        data: Option<Bytes>,
        /// Expected version (-1 for any).
        version: i32,
    },
    /// Require a node's version.
    Check {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
}

impl Op {
    /// A create with the default ACL.
    pub fn create(path: &str, data: impl IntoData, mode: CreateMode) -> Op {
        Op::Create {
            path: path.into(),
            data: data.into_data(),
            acl: None,
            mode,
        }
    }
    /// A delete (`None`: any version).
    pub fn delete(path: &str, version: Option<i32>) -> Op {
        Op::Delete {
            path: path.into(),
            version: version.unwrap_or(-1),
        }
    }
    /// A set-data (`None`: any version).
    pub fn set_data(path: &str, data: impl IntoData, version: Option<i32>) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.into_data(),
            version: version.unwrap_or(-1),
        }
    }
    /// A version check.
    pub fn check(path: &str, version: i32) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }

    pub(crate) fn into_proto(self, default_acl: &[Acl]) -> MultiOp {
        match self {
            Op::Create {
                path,
                data,
                acl,
                mode,
            } => {
                let acl = acl.unwrap_or_else(|| default_acl.to_vec());
                match mode.ttl() {
                    Some(ttl) => MultiOp::CreateTtl(CreateTtlRequest {
                        path,
                        data,
                        acl,
                        flags: mode.flags(),
                        ttl,
                    }),
                    None => MultiOp::Create {
                        op: if mode == CreateMode::Container {
                            OpCode::CreateContainer
                        } else {
                            OpCode::Create
                        },
                        req: CreateRequest {
                            path,
                            data,
                            acl,
                            flags: mode.flags(),
                        },
                    },
                }
            }
            Op::Delete { path, version } => MultiOp::Delete(DeleteRequest { path, version }),
            Op::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData(SetDataRequest {
                path,
                data,
                version,
            }),
            Op::Check { path, version } => MultiOp::Check(CheckVersionRequest { path, version }),
        }
    }
}

/// The result of one op of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// Created this path (with its Stat for containers and TTL nodes).
    Create {
        /// The created path.
        path: String,
        /// Stat, when the server sent it.
        stat: Option<Stat>,
    },
    /// Deleted.
    Delete,
    /// Data set.
    SetData(Stat),
    /// Check passed.
    Check,
    /// This op failed (or was rolled back: Ok / RuntimeInconsistency for the others).
    Error(ErrorCode),
}

impl OpResult {
    pub(crate) fn from_proto(r: MultiResult) -> OpResult {
        match r {
            MultiResult::Create(c) => OpResult::Create {
                path: c.path,
                stat: None,
            },
            MultiResult::Create2(c) => OpResult::Create {
                path: c.path,
                stat: Some(c.stat),
            },
            MultiResult::Delete => OpResult::Delete,
            MultiResult::SetData(s) => OpResult::SetData(s.stat),
            MultiResult::Check => OpResult::Check,
            MultiResult::Error(c) => OpResult::Error(c),
            MultiResult::GetData(_) | MultiResult::GetChildren(_) => {
                OpResult::Error(ErrorCode::MarshallingError)
            }
            _ => OpResult::Error(ErrorCode::MarshallingError),
        }
    }
}

/// One read of a multi-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// Read data.
    GetData(String),
    /// List children.
    GetChildren(String),
}

impl ReadOp {
    pub(crate) fn into_proto(self) -> MultiOp {
        match self {
            ReadOp::GetData(path) => MultiOp::GetData(PathWatchRequest { path, watch: false }),
            ReadOp::GetChildren(path) => {
                MultiOp::GetChildren(PathWatchRequest { path, watch: false })
            }
        }
    }
}

/// The result of one read of a multi-read; each read succeeds or fails alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data(Data, Stat),
    /// Child names.
    Children(Vec<String>),
}
