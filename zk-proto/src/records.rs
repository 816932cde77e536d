//! Every jute record a client sends or receives (`zookeeper.jute`, ZooKeeper 3.5 to 3.9),
//! field for field in wire order.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, ErrorCode};
use crate::jute::{record, Decode, Encode, Reader};
use crate::types::{AddWatchMode, EventType, KeeperState, OpCode, Perms, WatcherType};

impl Encode for ErrorCode {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.code())
    }
}
impl Decode for ErrorCode {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ErrorCode::from_code(r.i32()?))
    }
    const MIN_SIZE: usize = 4;
}

record! {
    /// Node metadata (68 bytes on the wire).
    #[derive(Copy, Hash)]
    pub struct Stat {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last data change.
        pub mzxid: i64,
        /// Creation time, ms since the epoch (the leader's clock).
        pub ctime: i64,
        /// Last data change time, ms.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child version.
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session for ephemerals, else 0.
        pub ephemeral_owner: i64,
        /// Data length in bytes.
        pub data_length: i32,
        /// Number of direct children.
        pub num_children: i32,
        /// zxid of the last child create or delete.
        pub pzxid: i64,
    }
}

record! {
    /// An identity: scheme and id (`world:anyone`, `digest:user:hash`, `ip:10.0.0.0/8`).
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Id {
        /// The scheme.
        pub scheme: String,
        /// The id within the scheme.
        pub id: String,
    }
}

record! {
    /// One access control entry.
    #[derive(Hash)]
    pub struct Acl {
        /// What the identity may do.
        pub perms: Perms,
        /// Who.
        pub id: Id,
    }
}

/// Why: an ACL entry for a `digest` user is the user name and a hash of the
/// credential, not the password; build it with [`digest_id`](crate::digest::digest_id).
///
/// ```
/// use zk_proto::digest::digest_id;
/// use zk_proto::types::Perms;
/// use zk_proto::Acl;
///
/// let acl = vec![
///     Acl::new(Perms::ALL, "digest", &digest_id("alice:secret")),
///     Acl::new(Perms::READ, "world", "anyone"),
/// ];
/// assert_eq!(acl[0].id.id, "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
/// assert!(acl[0].perms.contains(Perms::READ | Perms::WRITE));
/// assert_eq!(acl[1..], Acl::read_unsafe()[..]);
/// ```
impl Acl {
    /// Everything for everyone (`OPEN_ACL_UNSAFE`).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "world", "anyone")]
    }
    /// Read for everyone (`READ_ACL_UNSAFE`).
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, "world", "anyone")]
    }
    /// Everything for the creator's authenticated ids (`CREATOR_ALL_ACL`).
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "auth", "")]
    }
    /// One entry.
    pub fn new(perms: Perms, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id {
                scheme: scheme.to_owned(),
                id: id.to_owned(),
            },
        }
    }
}

/// The first frame a client sends on a connection (no request header).
/// Its `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// Highest zxid the client has seen.
    pub last_zxid_seen: i64,
    /// Requested session timeout, ms.
    pub timeout: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// 16 zero bytes for a new session, else the server-issued password.
    pub passwd: Bytes,
    /// Whether a read-only server is acceptable. `None`: the byte is not sent (pre-3.4 clients).
    pub read_only: Option<bool>,
}

/// `<redacted N bytes>` for a secret in `Debug` output.
struct Redacted(usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted {} bytes>", self.0)
    }
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("protocol_version", &self.protocol_version)
            .field("last_zxid_seen", &self.last_zxid_seen)
            .field("timeout", &self.timeout)
            .field("session_id", &self.session_id)
            .field("passwd", &Redacted(self.passwd.len()))
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl std::fmt::Debug for ConnectResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectResponse")
            .field("protocol_version", &self.protocol_version)
            .field("timeout", &self.timeout)
            .field("session_id", &self.session_id)
            .field("passwd", &Redacted(self.passwd.len()))
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Encode for ConnectRequest {
    fn encode(&self, buf: &mut BytesMut) {
        self.protocol_version.encode(buf);
        self.last_zxid_seen.encode(buf);
        self.timeout.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        if let Some(ro) = self.read_only {
            ro.encode(buf);
        }
    }
}
impl Decode for ConnectRequest {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.is_empty() { None } else { Some(r.bool()?) },
        })
    }
}

/// The first frame a server sends (no reply header).
/// Its `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout in ms; 0 means the session is expired or invalid.
    pub timeout: i32,
    /// The session id (0 when invalid).
    pub session_id: i64,
    /// The session password.
    pub passwd: Bytes,
    /// Present only when the client sent its read-only byte: whether the server is read-only.
    pub read_only: Option<bool>,
}

impl Encode for ConnectResponse {
    fn encode(&self, buf: &mut BytesMut) {
        self.protocol_version.encode(buf);
        self.timeout.encode(buf);
        self.session_id.encode(buf);
        self.passwd.encode(buf);
        if let Some(ro) = self.read_only {
            ro.encode(buf);
        }
    }
}
impl Decode for ConnectResponse {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            timeout: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.is_empty() { None } else { Some(r.bool()?) },
        })
    }
}

record! {
    /// Precedes every request body after the handshake.
    #[derive(Copy)]
    pub struct RequestHeader {
        /// Request id; special negative values for ping (-2), auth (-4), set-watches (-8).
        pub xid: i32,
        /// The operation.
        pub op: OpCode,
    }
}

record! {
    /// Precedes every reply body; the body follows only when `err` is Ok.
    #[derive(Copy)]
    pub struct ReplyHeader {
        /// The request's xid, or -1 for a notification, -2 ping, -4 auth.
        pub xid: i32,
        /// The server's last zxid when the reply was sent.
        pub zxid: i64,
        /// Result code.
        pub err: ErrorCode,
    }
}

record! {
    /// A watch notification (xid -1).
    pub struct WatcherEvent {
        /// What happened.
        pub event_type: EventType,
        /// Always SyncConnected from a server.
        pub state: KeeperState,
        /// The server-side path.
        pub path: String,
    }
}

record! {
    /// create (1), create2 (15), createContainer (19).
    pub struct CreateRequest {
        /// Path (with the sequence prefix for sequential nodes).
        pub path: String,
        /// Initial data; `None` creates the node with null data (written as length -1),
        /// which reads back as `None`.
        pub data: Option<Bytes>,
        /// Initial ACL.
        pub acl: Vec<Acl>,
        /// CreateMode flags.
        pub flags: i32,
    }
}

record! {
    /// createTTL (21).
    pub struct CreateTtlRequest {
        /// Path.
        pub path: String,
        /// Initial data; `None` creates the node with null data (written as length -1),
        /// which reads back as `None`.
        pub data: Option<Bytes>,
        /// Initial ACL.
        pub acl: Vec<Acl>,
        /// CreateMode flags (5 or 6).
        pub flags: i32,
        /// Time to live, ms.
        pub ttl: i64,
    }
}

record! {
    /// Reply to create (1), and to create sub-ops inside multi.
    pub struct CreateResponse {
        /// The created path, with any sequence suffix.
        pub path: String,
    }
}

record! {
    /// Reply to create2, createContainer, createTTL.
    pub struct Create2Response {
        /// The created path.
        pub path: String,
        /// The new node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// delete (2).
    pub struct DeleteRequest {
        /// Path.
        pub path: String,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// exists (3), getData (4), getChildren (8), getChildren2 (12).
    pub struct PathWatchRequest {
        /// Path.
        pub path: String,
        /// Whether to leave a watch.
        pub watch: bool,
    }
}

record! {
    /// A reply that is only a Stat: exists, setData, setACL.
    #[derive(Copy)]
    pub struct StatResponse {
        /// The Stat.
        pub stat: Stat,
    }
}

record! {
    /// Reply to getData (4) and reconfig (16).
    pub struct GetDataResponse {
        /// The data, a slice of the receive buffer; `None` when the node's data is
        /// null (length -1 on the wire: created or last set with null data), as
        /// opposed to `Some` of an empty buffer.
        pub data: Option<Bytes>,
        /// The Stat.
        pub stat: Stat,
    }
}

record! {
    /// setData (5).
    pub struct SetDataRequest {
        /// Path.
        pub path: String,
        /// New data; `None` sets null data (written as length -1).
        pub data: Option<Bytes>,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// A request that is only a path: getACL (6), sync (9), getAllChildrenNumber (104),
    /// getEphemerals (103, a prefix).
    pub struct PathRequest {
        /// Path.
        pub path: String,
    }
}

record! {
    /// Reply to getACL (6).
    pub struct GetAclResponse {
        /// The ACL.
        pub acl: Vec<Acl>,
        /// The Stat.
        pub stat: Stat,
    }
}

record! {
    /// setACL (7).
    pub struct SetAclRequest {
        /// Path.
        pub path: String,
        /// New ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// Reply to getChildren (8); names, not paths.
    pub struct GetChildrenResponse {
        /// Child names.
        pub children: Vec<String>,
    }
}

record! {
    /// Reply to getChildren2 (12).
    pub struct GetChildren2Response {
        /// Child names.
        pub children: Vec<String>,
        /// The parent's Stat.
        pub stat: Stat,
    }
}

record! {
    /// Reply to sync (9), or a path-only reply.
    pub struct PathResponse {
        /// Path.
        pub path: String,
    }
}

record! {
    /// check (13), inside multi only.
    pub struct CheckVersionRequest {
        /// Path.
        pub path: String,
        /// Expected version.
        pub version: i32,
    }
}

record! {
    /// reconfig (16).
    pub struct ReconfigRequest {
        /// Servers to add, comma separated.
        pub joining_servers: Option<String>,
        /// Server ids to remove, comma separated.
        pub leaving_servers: Option<String>,
        /// A whole new membership (non-incremental reconfig).
        pub new_members: Option<String>,
        /// Expected config version, -1 for any.
        pub cur_config_id: i64,
    }
}

record! {
    /// checkWatches (17) and removeWatches (18).
    pub struct WatchesRequest {
        /// Path.
        pub path: String,
        /// Which watches.
        pub watcher_type: WatcherType,
    }
}

record! {
    /// addWatch (106).
    pub struct AddWatchRequest {
        /// Path.
        pub path: String,
        /// Persistent or persistent-recursive.
        pub mode: AddWatchMode,
    }
}

record! {
    /// An error result inside a multi response; addWatch's reply body.
    #[derive(Copy)]
    pub struct ErrorResponse {
        /// The code.
        pub err: ErrorCode,
    }
}

record! {
    /// Reply to getEphemerals (103): full paths.
    pub struct GetEphemeralsResponse {
        /// Paths of the session's ephemeral nodes.
        pub ephemerals: Vec<String>,
    }
}

record! {
    /// Reply to getAllChildrenNumber (104).
    #[derive(Copy)]
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total_number: i32,
    }
}

record! {
    /// One authenticated identity of the connection.
    pub struct ClientInfo {
        /// The scheme (`ip`, `digest`, `sasl`, ...).
        pub auth_scheme: String,
        /// The user within the scheme.
        pub user: String,
    }
}

record! {
    /// Reply to whoAmI (107).
    pub struct WhoAmIResponse {
        /// The identities.
        pub client_info: Vec<ClientInfo>,
    }
}

/// auth (100), xid -4. Its `Debug` does not print the credentials.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthPacket {
    /// Always 0.
    pub auth_type: i32,
    /// The scheme (`digest`, ...).
    pub scheme: String,
    /// The credentials (`user:password` for digest).
    pub auth: Bytes,
}

impl std::fmt::Debug for AuthPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPacket")
            .field("auth_type", &self.auth_type)
            .field("scheme", &self.scheme)
            .field("auth", &Redacted(self.auth.len()))
            .finish()
    }
}

impl Encode for AuthPacket {
    fn encode(&self, buf: &mut BytesMut) {
        self.auth_type.encode(buf);
        self.scheme.encode(buf);
        self.auth.encode(buf);
    }
}
impl Decode for AuthPacket {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AuthPacket {
            auth_type: Decode::decode(r)?,
            scheme: Decode::decode(r)?,
            auth: Decode::decode(r)?,
        })
    }
    const MIN_SIZE: usize =
        <i32 as Decode>::MIN_SIZE + <String as Decode>::MIN_SIZE + <Bytes as Decode>::MIN_SIZE;
}

record! {
    /// sasl (102) request and reply: one token.
    pub struct SaslPacket {
        /// The token.
        pub token: Bytes,
    }
}

record! {
    /// setWatches (101): re-arms watches after a reconnect.
    pub struct SetWatches {
        /// The client's last zxid; changes after it fire at once.
        pub relative_zxid: i64,
        /// Data watches.
        pub data_watches: Vec<String>,
        /// Exist watches (on missing nodes).
        pub exist_watches: Vec<String>,
        /// Child watches.
        pub child_watches: Vec<String>,
    }
}

record! {
    /// setWatches2 (105): setWatches plus persistent watches (3.6+).
    pub struct SetWatches2 {
        /// The client's last zxid.
        pub relative_zxid: i64,
        /// Data watches.
        pub data_watches: Vec<String>,
        /// Exist watches.
        pub exist_watches: Vec<String>,
        /// Child watches.
        pub child_watches: Vec<String>,
        /// Persistent watches.
        pub persistent_watches: Vec<String>,
        /// Persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// Precedes each op and each result in multi.
    #[derive(Copy)]
    pub struct MultiHeader {
        /// Op or result type (-1 terminates the list, or marks an error result).
        pub op_type: OpCode,
        /// True only on the terminator.
        pub done: bool,
        /// -1 in requests; the result code in responses.
        pub err: ErrorCode,
    }
}

/// One operation of a multi (14) or multiRead (22).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiOp {
    /// create (1), create2 (15) or createContainer (19), per `op`.
    Create {
        /// Which create opcode.
        op: OpCode,
        /// The body.
        req: CreateRequest,
    },
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// check (13).
    Check(CheckVersionRequest),
    /// getData (4), multiRead only.
    GetData(PathWatchRequest),
    /// getChildren (8), multiRead only.
    GetChildren(PathWatchRequest),
}

impl MultiOp {
    /// The op type in its header.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetData(_) => OpCode::GetData,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
        }
    }

    /// The path it addresses.
    pub fn path_mut(&mut self) -> &mut String {
        match self {
            MultiOp::Create { req, .. } => &mut req.path,
            MultiOp::CreateTtl(r) => &mut r.path,
            MultiOp::Delete(r) => &mut r.path,
            MultiOp::SetData(r) => &mut r.path,
            MultiOp::Check(r) => &mut r.path,
            MultiOp::GetData(r) | MultiOp::GetChildren(r) => &mut r.path,
        }
    }

    /// Whether this is a read (allowed only in multiRead).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetData(_) | MultiOp::GetChildren(_))
    }
}

const MULTI_END: MultiHeader = MultiHeader {
    op_type: OpCode::Error,
    done: true,
    err: ErrorCode::SystemError,
};

/// The body of multi (14) and multiRead (22).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The operations, in order.
    pub ops: Vec<MultiOp>,
}

impl Encode for MultiRequest {
    fn encode(&self, buf: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader {
                op_type: op.opcode(),
                done: false,
                err: ErrorCode::SystemError,
            }
            .encode(buf);
            match op {
                MultiOp::Create { req, .. } => req.encode(buf),
                MultiOp::CreateTtl(r) => r.encode(buf),
                MultiOp::Delete(r) => r.encode(buf),
                MultiOp::SetData(r) => r.encode(buf),
                MultiOp::Check(r) => r.encode(buf),
                MultiOp::GetData(r) | MultiOp::GetChildren(r) => r.encode(buf),
            }
        }
        MULTI_END.encode(buf);
    }
}

impl Decode for MultiRequest {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(MultiRequest { ops });
            }
            let op = match h.op_type {
                op @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) => {
                    MultiOp::Create {
                        op,
                        req: CreateRequest::decode(r)?,
                    }
                }
                OpCode::CreateTtl => MultiOp::CreateTtl(Decode::decode(r)?),
                OpCode::Delete => MultiOp::Delete(Decode::decode(r)?),
                OpCode::SetData => MultiOp::SetData(Decode::decode(r)?),
                OpCode::Check => MultiOp::Check(Decode::decode(r)?),
                OpCode::GetData => MultiOp::GetData(Decode::decode(r)?),
                OpCode::GetChildren => MultiOp::GetChildren(Decode::decode(r)?),
                other => {
                    return Err(DecodeError::InvalidValue {
                        field: "multi op type",
                        value: other.to_i32() as i64,
                    })
                }
            };
            ops.push(op);
        }
    }
}

/// One result of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiResult {
    /// create / create2 sub-op: the path only.
    Create(CreateResponse),
    /// createContainer / createTTL sub-op: path and Stat.
    Create2(Create2Response),
    /// delete.
    Delete,
    /// setData.
    SetData(StatResponse),
    /// check.
    Check,
    /// getData (multiRead).
    GetData(GetDataResponse),
    /// getChildren (multiRead).
    GetChildren(GetChildrenResponse),
    /// This op failed with the code, or (code Ok / RuntimeInconsistency) was rolled
    /// back because another op of the multi failed.
    Error(ErrorCode),
}

/// The body of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// One result per op, in order.
    pub results: Vec<MultiResult>,
}

impl MultiResponse {
    /// The first failing code, if the multi failed (rolled-back ops carry Ok or
    /// RuntimeInconsistency; the cause is the first other code).
    ///
    /// Why: a failed multi completes as `Ok(Response::Multi(..))` with error results
    /// inside, not as an `Err`; this finds the cause.
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::types::OpCode;
    /// use zk_proto::{
    ///     Acl, CheckVersionRequest, CreateRequest, ErrorCode, MultiOp, MultiRequest, MultiResult,
    ///     Request, Response,
    /// };
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let config = net.config(&[0]);
    /// let ci = net.add_client(config);
    ///
    /// // Create /job only if /lock is still at version 0: /lock does not exist.
    /// let multi = Request::Multi(MultiRequest {
    ///     ops: vec![
    ///         MultiOp::Check(CheckVersionRequest { path: "/lock".into(), version: 0 }),
    ///         MultiOp::Create {
    ///             op: OpCode::Create,
    ///             req: CreateRequest {
    ///                 path: "/job".into(),
    ///                 data: None,
    ///                 acl: Acl::open_unsafe(),
    ///                 flags: 0,
    ///             },
    ///         },
    ///     ],
    /// });
    /// let Some(Ok(Response::Multi(reply))) = net.call(ci, multi, Duration::from_secs(5)) else {
    ///     panic!()
    /// };
    /// assert_eq!(reply.first_error(), Some(ErrorCode::NoNode));
    /// assert!(matches!(reply.results[0], MultiResult::Error(ErrorCode::NoNode)));
    /// assert!(net.cluster.get("/job").is_none()); // nothing applied
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn first_error(&self) -> Option<ErrorCode> {
        let mut fallback = None;
        for r in &self.results {
            if let MultiResult::Error(c) = r {
                match c {
                    ErrorCode::Ok => fallback = fallback.or(Some(*c)),
                    ErrorCode::RuntimeInconsistency => {
                        fallback = Some(ErrorCode::RuntimeInconsistency)
                    }
                    c => return Some(*c),
                }
            }
        }
        fallback.map(|_| ErrorCode::RuntimeInconsistency)
    }
}

impl Encode for MultiResponse {
    fn encode(&self, buf: &mut BytesMut) {
        for res in &self.results {
            let (op_type, err) = match res {
                MultiResult::Create(_) => (OpCode::Create, ErrorCode::Ok),
                MultiResult::Create2(_) => (OpCode::Create2, ErrorCode::Ok),
                MultiResult::Delete => (OpCode::Delete, ErrorCode::Ok),
                MultiResult::SetData(_) => (OpCode::SetData, ErrorCode::Ok),
                MultiResult::Check => (OpCode::Check, ErrorCode::Ok),
                MultiResult::GetData(_) => (OpCode::GetData, ErrorCode::Ok),
                MultiResult::GetChildren(_) => (OpCode::GetChildren, ErrorCode::Ok),
                MultiResult::Error(e) => (OpCode::Error, *e),
            };
            MultiHeader {
                op_type,
                done: false,
                err,
            }
            .encode(buf);
            match res {
                MultiResult::Create(r) => r.encode(buf),
                MultiResult::Create2(r) => r.encode(buf),
                MultiResult::SetData(r) => r.encode(buf),
                MultiResult::GetData(r) => r.encode(buf),
                MultiResult::GetChildren(r) => r.encode(buf),
                MultiResult::Error(e) => ErrorResponse { err: *e }.encode(buf),
                MultiResult::Delete | MultiResult::Check => {}
            }
        }
        MULTI_END.encode(buf);
    }
}

impl Decode for MultiResponse {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(MultiResponse { results });
            }
            let res = match h.op_type {
                OpCode::Create => MultiResult::Create(Decode::decode(r)?),
                OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                    MultiResult::Create2(Decode::decode(r)?)
                }
                OpCode::Delete => MultiResult::Delete,
                OpCode::SetData => MultiResult::SetData(Decode::decode(r)?),
                OpCode::Check => MultiResult::Check,
                OpCode::GetData => MultiResult::GetData(Decode::decode(r)?),
                OpCode::GetChildren => MultiResult::GetChildren(Decode::decode(r)?),
                OpCode::Error => MultiResult::Error(ErrorResponse::decode(r)?.err),
                other => {
                    return Err(DecodeError::InvalidValue {
                        field: "multi result type",
                        value: other.to_i32() as i64,
                    })
                }
            };
            results.push(res);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MIN_SIZE` is the fewest bytes a packet takes on the wire (the bound a
    /// list's pre-allocation is computed from): an empty scheme and no
    /// credentials.
    #[test]
    fn auth_packet_min_size_is_its_smallest_encoding() {
        let mut b = BytesMut::new();
        AuthPacket::default().encode(&mut b);
        assert_eq!(b.len(), AuthPacket::MIN_SIZE);
    }

    /// The handshake records print their fields but never the session password,
    /// only its length (a `Debug` in a log must not leak a session).
    #[test]
    fn handshake_debug_redacts_the_password() {
        let passwd = Bytes::from_static(b"secret-password!");
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 5,
            timeout: 30_000,
            session_id: 0x1234,
            passwd: passwd.clone(),
            read_only: Some(true),
        };
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout: 30_000,
            session_id: 0x1234,
            passwd,
            read_only: Some(true),
        };
        for s in [format!("{req:?}"), format!("{resp:?}")] {
            assert!(s.contains("session_id: 4660"), "{s}");
            assert!(s.contains("timeout: 30000"), "{s}");
            assert!(s.contains("passwd: <redacted 16 bytes>"), "{s}");
            assert!(!s.contains("secret"), "{s}");
        }
    }

    /// An auth packet prints its scheme but not its credentials, only their
    /// length (a `digest` packet carries `user:password` in the clear).
    #[test]
    fn auth_packet_debug_redacts_the_credentials() {
        let p = AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"bob:bobsecret"),
        };
        let s = format!("{p:?}");
        assert!(s.contains("scheme: \"digest\""), "{s}");
        assert!(s.contains("auth: <redacted 13 bytes>"), "{s}");
        assert!(!s.contains("bobsecret"), "{s}");
    }

    /// The well-known ACLs are the Java client's `ZooDefs.Ids`, one entry each:
    /// OPEN_ACL_UNSAFE (all, world:anyone), READ_ACL_UNSAFE (read, world:anyone),
    /// CREATOR_ALL_ACL (all, auth with an empty id).
    #[test]
    fn well_known_acls_are_zoodefs_ids() {
        let entries = |acl: Vec<Acl>| -> Vec<(i32, String, String)> {
            acl.into_iter()
                .map(|a| (a.perms.0, a.id.scheme, a.id.id))
                .collect()
        };
        let one = |perms: i32, scheme: &str, id: &str| vec![(perms, scheme.into(), id.into())];
        assert_eq!(entries(Acl::open_unsafe()), one(31, "world", "anyone"));
        assert_eq!(entries(Acl::read_unsafe()), one(1, "world", "anyone"));
        assert_eq!(entries(Acl::creator_all()), one(31, "auth", ""));
    }
}
