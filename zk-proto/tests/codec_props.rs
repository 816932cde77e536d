//! Property tests of the codec: encode/decode round trips for every record and
//! every request and reply body, robustness and allocation bounds on arbitrary
//! bytes, frame splitting under any chunking, and path rules.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use zk_proto::frame::{write_frame, FrameDecoder, DEFAULT_MAX_FRAME};
use zk_proto::fuzzing::{self, OPCODES};
use zk_proto::jute::{from_bytes, to_bytes, Decode, Encode, Reader};
use zk_proto::path::{validate_path, Chroot};
use zk_proto::records::*;
use zk_proto::types::{AddWatchMode, EventType, KeeperState, OpCode, Perms, WatcherType};
use zk_proto::{DecodeError, ErrorCode, Request, Response};

// ---------------------------------------------------------------------------
// A counting allocator: how many bytes this thread allocates inside a closure.

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + size;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

// Test-only: forwards to the system allocator and counts per thread.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the most heap bytes it held at once
/// (beyond what was live before it started).
fn peak_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, PEAK.with(Cell::get) - base)
}

#[test]
fn counting_allocator_counts() {
    let (v, peak) = peak_alloc(|| vec![1u8; 10_000]);
    assert_eq!(v.len(), 10_000);
    assert!(peak >= 10_000, "peak {peak}");
    let (_, peak) = peak_alloc(|| 1 + 1);
    assert_eq!(peak, 0);
}

// ---------------------------------------------------------------------------
// Strategies

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9/._-]{0,12}",
        1 => any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn arb_opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(arb_string())
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Node data: null (`None`) about one time in four, sometimes empty, else bytes.
fn arb_opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Bytes::new())),
        4 => arb_bytes().prop_map(Some),
    ]
}

fn arb_strings() -> impl Strategy<Value = Vec<String>> {
    vec(arb_string(), 0..4)
}

/// Mostly named values, sometimes any value at all (kept as `Unknown`).
fn arb_opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        4 => select(OPCODES.to_vec()),
        1 => any::<i32>().prop_map(OpCode::from_i32),
    ]
}

fn arb_error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        4 => (-130i32..=0).prop_map(ErrorCode::from_code),
        1 => any::<i32>().prop_map(ErrorCode::from_code),
    ]
}

fn arb_event_type() -> impl Strategy<Value = EventType> {
    prop_oneof![(-1i32..=8), any::<i32>()].prop_map(EventType::from_i32)
}

fn arb_keeper_state() -> impl Strategy<Value = KeeperState> {
    prop_oneof![(-113i32..=8), any::<i32>()].prop_map(KeeperState::from_i32)
}

fn arb_watcher_type() -> impl Strategy<Value = WatcherType> {
    prop_oneof![(0i32..=6), any::<i32>()].prop_map(WatcherType::from_i32)
}

fn arb_add_watch_mode() -> impl Strategy<Value = AddWatchMode> {
    prop_oneof![(-1i32..=2), any::<i32>()].prop_map(AddWatchMode::from_i32)
}

fn arb_stat() -> impl Strategy<Value = Stat> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(
            |(czxid, mzxid, ctime, mtime, version, cversion, aversion, eo, dl, nc, pzxid)| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner: eo,
                data_length: dl,
                num_children: nc,
                pzxid,
            },
        )
}

fn arb_id() -> impl Strategy<Value = Id> {
    (arb_string(), arb_string()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn arb_acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), arb_id()).prop_map(|(p, id)| Acl {
        perms: Perms(p),
        id,
    })
}

fn arb_acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(arb_acl(), 0..3)
}

fn arb_connect_request() -> impl Strategy<Value = ConnectRequest> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        arb_bytes(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(pv, z, t, s, passwd, ro)| ConnectRequest {
            protocol_version: pv,
            last_zxid_seen: z,
            timeout: t,
            session_id: s,
            passwd,
            read_only: ro,
        })
}

fn arb_connect_response() -> impl Strategy<Value = ConnectResponse> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        arb_bytes(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(pv, t, s, passwd, ro)| ConnectResponse {
            protocol_version: pv,
            timeout: t,
            session_id: s,
            passwd,
            read_only: ro,
        })
}

fn arb_request_header() -> impl Strategy<Value = RequestHeader> {
    (any::<i32>(), arb_opcode()).prop_map(|(xid, op)| RequestHeader { xid, op })
}

fn arb_reply_header() -> impl Strategy<Value = ReplyHeader> {
    (any::<i32>(), any::<i64>(), arb_error_code()).prop_map(|(xid, zxid, err)| ReplyHeader {
        xid,
        zxid,
        err,
    })
}

fn arb_watcher_event() -> impl Strategy<Value = WatcherEvent> {
    (arb_event_type(), arb_keeper_state(), arb_string()).prop_map(|(event_type, state, path)| {
        WatcherEvent {
            event_type,
            state,
            path,
        }
    })
}

fn arb_create_request() -> impl Strategy<Value = CreateRequest> {
    (arb_string(), arb_opt_bytes(), arb_acls(), any::<i32>()).prop_map(
        |(path, data, acl, flags)| CreateRequest {
            path,
            data,
            acl,
            flags,
        },
    )
}

fn arb_create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    (arb_create_request(), any::<i64>()).prop_map(|(c, ttl)| CreateTtlRequest {
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl,
    })
}

fn arb_create_response() -> impl Strategy<Value = CreateResponse> {
    arb_string().prop_map(|path| CreateResponse { path })
}

fn arb_create2_response() -> impl Strategy<Value = Create2Response> {
    (arb_string(), arb_stat()).prop_map(|(path, stat)| Create2Response { path, stat })
}

fn arb_delete_request() -> impl Strategy<Value = DeleteRequest> {
    (arb_string(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

fn arb_path_watch_request() -> impl Strategy<Value = PathWatchRequest> {
    (arb_string(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch })
}

fn arb_stat_response() -> impl Strategy<Value = StatResponse> {
    arb_stat().prop_map(|stat| StatResponse { stat })
}

fn arb_get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (arb_opt_bytes(), arb_stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

fn arb_set_data_request() -> impl Strategy<Value = SetDataRequest> {
    (arb_string(), arb_opt_bytes(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

fn arb_path_request() -> impl Strategy<Value = PathRequest> {
    arb_string().prop_map(|path| PathRequest { path })
}

fn arb_get_acl_response() -> impl Strategy<Value = GetAclResponse> {
    (arb_acls(), arb_stat()).prop_map(|(acl, stat)| GetAclResponse { acl, stat })
}

fn arb_set_acl_request() -> impl Strategy<Value = SetAclRequest> {
    (arb_string(), arb_acls(), any::<i32>()).prop_map(|(path, acl, version)| SetAclRequest {
        path,
        acl,
        version,
    })
}

fn arb_get_children_response() -> impl Strategy<Value = GetChildrenResponse> {
    arb_strings().prop_map(|children| GetChildrenResponse { children })
}

fn arb_get_children2_response() -> impl Strategy<Value = GetChildren2Response> {
    (arb_strings(), arb_stat()).prop_map(|(children, stat)| GetChildren2Response { children, stat })
}

fn arb_path_response() -> impl Strategy<Value = PathResponse> {
    arb_string().prop_map(|path| PathResponse { path })
}

fn arb_check_version_request() -> impl Strategy<Value = CheckVersionRequest> {
    (arb_string(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

fn arb_reconfig_request() -> impl Strategy<Value = ReconfigRequest> {
    (
        arb_opt_string(),
        arb_opt_string(),
        arb_opt_string(),
        any::<i64>(),
    )
        .prop_map(|(j, l, n, c)| ReconfigRequest {
            joining_servers: j,
            leaving_servers: l,
            new_members: n,
            cur_config_id: c,
        })
}

fn arb_watches_request() -> impl Strategy<Value = WatchesRequest> {
    (arb_string(), arb_watcher_type())
        .prop_map(|(path, watcher_type)| WatchesRequest { path, watcher_type })
}

fn arb_add_watch_request() -> impl Strategy<Value = AddWatchRequest> {
    (arb_string(), arb_add_watch_mode()).prop_map(|(path, mode)| AddWatchRequest { path, mode })
}

fn arb_error_response() -> impl Strategy<Value = ErrorResponse> {
    arb_error_code().prop_map(|err| ErrorResponse { err })
}

fn arb_get_ephemerals_response() -> impl Strategy<Value = GetEphemeralsResponse> {
    arb_strings().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals })
}

fn arb_get_all_children_number_response() -> impl Strategy<Value = GetAllChildrenNumberResponse> {
    any::<i32>().prop_map(|total_number| GetAllChildrenNumberResponse { total_number })
}

fn arb_client_info() -> impl Strategy<Value = ClientInfo> {
    (arb_string(), arb_string()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
}

fn arb_who_am_i_response() -> impl Strategy<Value = WhoAmIResponse> {
    vec(arb_client_info(), 0..3).prop_map(|client_info| WhoAmIResponse { client_info })
}

fn arb_auth_packet() -> impl Strategy<Value = AuthPacket> {
    (any::<i32>(), arb_string(), arb_bytes()).prop_map(|(auth_type, scheme, auth)| AuthPacket {
        auth_type,
        scheme,
        auth,
    })
}

fn arb_sasl_packet() -> impl Strategy<Value = SaslPacket> {
    arb_bytes().prop_map(|token| SaslPacket { token })
}

fn arb_set_watches() -> impl Strategy<Value = SetWatches> {
    (any::<i64>(), arb_strings(), arb_strings(), arb_strings()).prop_map(|(z, d, e, c)| {
        SetWatches {
            relative_zxid: z,
            data_watches: d,
            exist_watches: e,
            child_watches: c,
        }
    })
}

fn arb_set_watches2() -> impl Strategy<Value = SetWatches2> {
    (
        any::<i64>(),
        arb_strings(),
        arb_strings(),
        arb_strings(),
        arb_strings(),
        arb_strings(),
    )
        .prop_map(|(z, d, e, c, p, pr)| SetWatches2 {
            relative_zxid: z,
            data_watches: d,
            exist_watches: e,
            child_watches: c,
            persistent_watches: p,
            persistent_recursive_watches: pr,
        })
}

fn arb_multi_header() -> impl Strategy<Value = MultiHeader> {
    (arb_opcode(), any::<bool>(), arb_error_code()).prop_map(|(op_type, done, err)| MultiHeader {
        op_type,
        done,
        err,
    })
}

fn arb_multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (
            select(vec![
                OpCode::Create,
                OpCode::Create2,
                OpCode::CreateContainer
            ]),
            arb_create_request()
        )
            .prop_map(|(op, req)| MultiOp::Create { op, req }),
        arb_create_ttl_request().prop_map(MultiOp::CreateTtl),
        arb_delete_request().prop_map(MultiOp::Delete),
        arb_set_data_request().prop_map(MultiOp::SetData),
        arb_check_version_request().prop_map(MultiOp::Check),
        arb_path_watch_request().prop_map(MultiOp::GetData),
        arb_path_watch_request().prop_map(MultiOp::GetChildren),
    ]
}

fn arb_multi_request() -> impl Strategy<Value = MultiRequest> {
    vec(arb_multi_op(), 0..4).prop_map(|ops| MultiRequest { ops })
}

fn arb_multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        arb_create_response().prop_map(MultiResult::Create),
        arb_create2_response().prop_map(MultiResult::Create2),
        Just(MultiResult::Delete),
        arb_stat_response().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        arb_get_data_response().prop_map(MultiResult::GetData),
        arb_get_children_response().prop_map(MultiResult::GetChildren),
        arb_error_code().prop_map(MultiResult::Error),
    ]
}

fn arb_multi_response() -> impl Strategy<Value = MultiResponse> {
    vec(arb_multi_result(), 0..4).prop_map(|results| MultiResponse { results })
}

/// Every `Request` variant.
fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        arb_create_request().prop_map(Request::Create),
        arb_create_request().prop_map(Request::Create2),
        arb_create_request().prop_map(Request::CreateContainer),
        arb_create_ttl_request().prop_map(Request::CreateTtl),
        arb_delete_request().prop_map(Request::Delete),
        arb_path_watch_request().prop_map(Request::Exists),
        arb_path_watch_request().prop_map(Request::GetData),
        arb_set_data_request().prop_map(Request::SetData),
        arb_path_request().prop_map(Request::GetAcl),
        arb_set_acl_request().prop_map(Request::SetAcl),
        arb_path_watch_request().prop_map(Request::GetChildren),
        arb_path_watch_request().prop_map(Request::GetChildren2),
        arb_path_request().prop_map(Request::Sync),
        arb_check_version_request().prop_map(Request::Check),
        arb_multi_request().prop_map(Request::Multi),
        arb_multi_request().prop_map(Request::MultiRead),
        arb_reconfig_request().prop_map(Request::Reconfig),
        arb_watches_request().prop_map(Request::CheckWatches),
        arb_watches_request().prop_map(Request::RemoveWatches),
        arb_add_watch_request().prop_map(Request::AddWatch),
        arb_set_watches().prop_map(Request::SetWatches),
        arb_set_watches2().prop_map(Request::SetWatches2),
        arb_auth_packet().prop_map(Request::Auth),
        arb_sasl_packet().prop_map(Request::Sasl),
        arb_path_request().prop_map(Request::GetEphemerals),
        arb_path_request().prop_map(Request::GetAllChildrenNumber),
        Just(Request::WhoAmI),
        Just(Request::Ping),
        Just(Request::CloseSession),
    ]
}

/// Every `Response` variant, with an opcode whose reply body it is.
fn arb_response() -> impl Strategy<Value = (OpCode, Response)> {
    use OpCode as O;
    prop_oneof![
        select(vec![
            O::Delete,
            O::Ping,
            O::Auth,
            O::SetWatches,
            O::SetWatches2,
            O::CheckWatches,
            O::RemoveWatches,
            O::CloseSession,
            O::Check,
        ])
        .prop_map(|op| (op, Response::Empty)),
        arb_create_response().prop_map(|r| (O::Create, Response::Create(r))),
        (
            select(vec![O::Create2, O::CreateContainer, O::CreateTtl]),
            arb_create2_response()
        )
            .prop_map(|(op, r)| (op, Response::Create2(r))),
        (
            select(vec![O::Exists, O::SetData, O::SetAcl]),
            arb_stat_response()
        )
            .prop_map(|(op, r)| (op, Response::Stat(r))),
        (
            select(vec![O::GetData, O::Reconfig]),
            arb_get_data_response()
        )
            .prop_map(|(op, r)| (op, Response::GetData(r))),
        arb_get_acl_response().prop_map(|r| (O::GetAcl, Response::GetAcl(r))),
        arb_get_children_response().prop_map(|r| (O::GetChildren, Response::GetChildren(r))),
        arb_get_children2_response().prop_map(|r| (O::GetChildren2, Response::GetChildren2(r))),
        arb_path_response().prop_map(|r| (O::Sync, Response::Sync(r))),
        (select(vec![O::Multi, O::MultiRead]), arb_multi_response())
            .prop_map(|(op, r)| (op, Response::Multi(r))),
        arb_error_response().prop_map(|r| (O::AddWatch, Response::AddWatch(r))),
        arb_sasl_packet().prop_map(|r| (O::Sasl, Response::Sasl(r))),
        arb_get_ephemerals_response().prop_map(|r| (O::GetEphemerals, Response::GetEphemerals(r))),
        arb_get_all_children_number_response()
            .prop_map(|r| (O::GetAllChildrenNumber, Response::GetAllChildrenNumber(r))),
        arb_who_am_i_response().prop_map(|r| (O::WhoAmI, Response::WhoAmI(r))),
    ]
}

// ---------------------------------------------------------------------------
// (1) decode(encode(x)) == x

fn assert_roundtrip<T: Encode + Decode + PartialEq + Debug>(x: &T) -> Result<(), TestCaseError> {
    let bytes = to_bytes(x);
    let back: T = from_bytes(bytes.clone())
        .map_err(|e| TestCaseError::fail(format!("{x:?} encodes to bytes that fail: {e}")))?;
    prop_assert_eq!(&back, x);
    prop_assert_eq!(to_bytes(&back), bytes);
    Ok(())
}

/// One property per record type, each over `ROUNDTRIP_CASES` cases.
const ROUNDTRIP_CASES: u32 = 512;

macro_rules! roundtrip_props {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(ROUNDTRIP_CASES))]
            $(
                #[test]
                fn $name(x in $strategy) {
                    assert_roundtrip(&x)?;
                }
            )*
        }
    };
}

roundtrip_props! {
    roundtrip_stat: arb_stat();
    roundtrip_id: arb_id();
    roundtrip_acl: arb_acl();
    roundtrip_acl_list: arb_acls();
    roundtrip_connect_request: arb_connect_request();
    roundtrip_connect_response: arb_connect_response();
    roundtrip_request_header: arb_request_header();
    roundtrip_reply_header: arb_reply_header();
    roundtrip_watcher_event: arb_watcher_event();
    roundtrip_create_request: arb_create_request();
    roundtrip_create_ttl_request: arb_create_ttl_request();
    roundtrip_create_response: arb_create_response();
    roundtrip_create2_response: arb_create2_response();
    roundtrip_delete_request: arb_delete_request();
    roundtrip_path_watch_request: arb_path_watch_request();
    roundtrip_stat_response: arb_stat_response();
    roundtrip_get_data_response: arb_get_data_response();
    roundtrip_set_data_request: arb_set_data_request();
    roundtrip_path_request: arb_path_request();
    roundtrip_get_acl_response: arb_get_acl_response();
    roundtrip_set_acl_request: arb_set_acl_request();
    roundtrip_get_children_response: arb_get_children_response();
    roundtrip_get_children2_response: arb_get_children2_response();
    roundtrip_path_response: arb_path_response();
    roundtrip_check_version_request: arb_check_version_request();
    roundtrip_reconfig_request: arb_reconfig_request();
    roundtrip_watches_request: arb_watches_request();
    roundtrip_add_watch_request: arb_add_watch_request();
    roundtrip_error_response: arb_error_response();
    roundtrip_error_code: arb_error_code();
    roundtrip_get_ephemerals_response: arb_get_ephemerals_response();
    roundtrip_get_all_children_number_response: arb_get_all_children_number_response();
    roundtrip_client_info: arb_client_info();
    roundtrip_who_am_i_response: arb_who_am_i_response();
    roundtrip_auth_packet: arb_auth_packet();
    roundtrip_sasl_packet: arb_sasl_packet();
    roundtrip_set_watches: arb_set_watches();
    roundtrip_set_watches2: arb_set_watches2();
    roundtrip_multi_header: arb_multi_header();
    roundtrip_multi_request: arb_multi_request();
    roundtrip_multi_response: arb_multi_response();
}

// ---------------------------------------------------------------------------
// Null node data is not empty node data

/// The data length field as written: -1 for null, else the length.
fn data_len_field(data: &Option<Bytes>) -> i32 {
    data.as_ref().map_or(-1, |d| d.len() as i32)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Node data is written with length -1 exactly when it is `None`, and reads
    /// back as `None`; empty data is length 0 and reads back as `Some(empty)`.
    #[test]
    fn node_data_null_written_as_minus_one(
        path in arb_string(),
        data in arb_opt_bytes(),
        stat in arb_stat(),
    ) {
        let at_path_end = 4 + path.len();
        let len_at = |b: &Bytes, at: usize| i32::from_be_bytes(b[at..at + 4].try_into().unwrap());

        let set = SetDataRequest { path: path.clone(), data: data.clone(), version: -1 };
        let wire = to_bytes(&set);
        prop_assert_eq!(len_at(&wire, at_path_end), data_len_field(&data));
        prop_assert_eq!(from_bytes::<SetDataRequest>(wire).unwrap().data, data.clone());

        let create = CreateRequest { path: path.clone(), data: data.clone(), acl: vec![], flags: 0 };
        let wire = to_bytes(&create);
        prop_assert_eq!(len_at(&wire, at_path_end), data_len_field(&data));
        prop_assert_eq!(from_bytes::<CreateRequest>(wire).unwrap().data, data.clone());

        let ttl = CreateTtlRequest { path, data: data.clone(), acl: vec![], flags: 5, ttl: 1 };
        let wire = to_bytes(&ttl);
        prop_assert_eq!(len_at(&wire, at_path_end), data_len_field(&data));
        prop_assert_eq!(from_bytes::<CreateTtlRequest>(wire).unwrap().data, data.clone());

        let get = GetDataResponse { data: data.clone(), stat };
        let wire = to_bytes(&get);
        prop_assert_eq!(len_at(&wire, 0), data_len_field(&data));
        prop_assert_eq!(from_bytes::<GetDataResponse>(wire).unwrap().data, data.clone());

        // The same inside a multiRead reply.
        let multi = MultiResponse { results: vec![MultiResult::GetData(get)] };
        let back = from_bytes::<MultiResponse>(to_bytes(&multi)).unwrap();
        prop_assert_eq!(back, multi);
    }
}

/// The server's bytes: a getData reply with data length -1 is null, with 0 is empty.
#[test]
fn get_data_reply_null_and_empty_differ() {
    let stat = to_bytes(&Stat::default());
    let mut null = BytesMut::new();
    null.put_i32(-1);
    null.put_slice(&stat);
    let mut empty = BytesMut::new();
    empty.put_i32(0);
    empty.put_slice(&stat);
    let decode =
        |b: BytesMut| Response::decode_body(OpCode::GetData, &mut Reader::new(b.freeze())).unwrap();
    let Response::GetData(n) = decode(null.clone()) else {
        panic!()
    };
    let Response::GetData(e) = decode(empty.clone()) else {
        panic!()
    };
    assert_eq!(n.data, None);
    assert_eq!(e.data, Some(Bytes::new()));
    // And each re-encodes to its own bytes.
    let mut b = BytesMut::new();
    Response::GetData(n).encode_body(&mut b);
    assert_eq!(b, null);
    let mut b = BytesMut::new();
    Response::GetData(e).encode_body(&mut b);
    assert_eq!(b, empty);
}

fn encode_request(xid: i32, req: &Request) -> Bytes {
    let mut buf = BytesMut::new();
    write_frame(&mut buf, |b| {
        RequestHeader {
            xid,
            op: req.opcode(),
        }
        .encode(b);
        req.encode_body(b);
    });
    buf.freeze()
}

fn one_frame(wire: Bytes) -> Bytes {
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    dec.push(&wire);
    let frame = dec.next_frame().unwrap().expect("a whole frame");
    assert_eq!(dec.buffered(), 0);
    frame
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Every Request variant, framed with its header, comes back through the
    /// header's opcode.
    #[test]
    fn request_roundtrip_via_opcode(xid in any::<i32>(), req in arb_request()) {
        let wire = encode_request(xid, &req);
        let mut r = Reader::new(one_frame(wire.clone()));
        let header = RequestHeader::decode(&mut r).unwrap();
        prop_assert_eq!(header.xid, xid);
        prop_assert_eq!(header.op, req.opcode());
        let back = Request::decode_body(header.op, &mut r).unwrap();
        r.finish().unwrap();
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(encode_request(xid, &back), wire);
    }

    /// Every Response variant, after a ReplyHeader, comes back through the opcode
    /// of the request it answers.
    #[test]
    fn response_roundtrip_via_opcode(header in arb_reply_header(), (op, resp) in arb_response()) {
        let header = ReplyHeader { err: ErrorCode::Ok, ..header };
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |b| {
            header.encode(b);
            resp.encode_body(b);
        });
        let mut r = Reader::new(one_frame(buf.freeze()));
        prop_assert_eq!(ReplyHeader::decode(&mut r).unwrap(), header);
        let back = Response::decode_body(op, &mut r).unwrap();
        prop_assert_eq!(back, resp);
    }
}

// ---------------------------------------------------------------------------
// (2) arbitrary bytes: no panic, no allocation beyond the input

/// Upper bound on heap bytes decoding `n` input bytes may hold: the largest
/// in-memory element (a multi result, ~120 bytes) per 9-byte header, doubled for
/// `Vec` growth, plus slack.
fn alloc_bound(n: usize) -> usize {
    64 * n + 4096
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Any bytes, as every record type and as every request and reply body:
    /// no panic, and what decodes re-encodes to the same length and value.
    #[test]
    fn arbitrary_bytes_every_kind(data in vec(any::<u8>(), 0..96)) {
        let mut input = Vec::with_capacity(data.len() + 4);
        for sel in 0..fuzzing::ROUNDTRIP_KINDS {
            input.clear();
            input.push(sel as u8);
            input.extend_from_slice(&data);
            let (_, peak) = peak_alloc(|| fuzzing::roundtrip(&input));
            // The fuzz body copies the input at most a few times.
            prop_assert!(peak <= alloc_bound(input.len()) * 4, "kind {} held {} bytes", sel, peak);
        }
        fuzzing::connect_response(&data);
        fuzzing::decode_reply(&data);
        fuzzing::frame_split(&data);
    }

    /// Valid encodings with one byte changed and/or cut short: no panic, and the
    /// fuzz invariants hold for whatever still decodes.
    #[test]
    fn mutated_requests(
        req in arb_request(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        op in select(OPCODES.to_vec()),
    ) {
        let mut body = BytesMut::new();
        req.encode_body(&mut body);
        let mut body = body.to_vec();
        if !body.is_empty() {
            let i = at.index(body.len());
            body[i] = byte;
            body.truncate(cut.index(body.len() + 1).max(i));
        }
        let mut input = vec![fuzzing::body_selector(req.opcode(), false).unwrap()];
        input.extend_from_slice(&body);
        fuzzing::roundtrip(&input);
        // And as the reply body of any opcode.
        input[0] = fuzzing::body_selector(op, true).unwrap();
        fuzzing::roundtrip(&input);
    }

    /// Replies with one byte changed, through the decode_reply fuzz body.
    #[test]
    fn mutated_replies(
        header in arb_reply_header(),
        (op, resp) in arb_response(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut buf = BytesMut::new();
        buf.put_slice(&fuzzing::opcode_selector(op));
        ReplyHeader { err: ErrorCode::Ok, ..header }.encode(&mut buf);
        resp.encode_body(&mut buf);
        fuzzing::decode_reply(&buf);
        let i = 4 + at.index(buf.len() - 4);
        buf[i] = byte;
        fuzzing::decode_reply(&buf);
    }

    /// A decoded vector never holds more elements' room than its input could encode.
    #[test]
    fn vector_capacity_bounded_by_input(
        count in prop_oneof![0i32..16, Just(i32::MAX), any::<i32>()],
        tail in vec(any::<u8>(), 0..128),
    ) {
        let mut input = BytesMut::new();
        input.put_i32(count);
        input.put_slice(&tail);
        let input = input.freeze();
        let n = input.len();
        macro_rules! check {
            ($t:ty) => {{
                let mut r = Reader::new(input.clone());
                let (res, peak) = peak_alloc(|| r.vec::<$t>());
                prop_assert!(peak <= alloc_bound(n), "Vec<{}> held {} bytes for {} input", stringify!($t), peak, n);
                if let Ok(v) = res {
                    prop_assert!(v.capacity() <= n, "capacity {} for {} bytes", v.capacity(), n);
                }
            }};
        }
        check!(String);
        check!(Acl);
        check!(Id);
        check!(ClientInfo);
        check!(i64);
        check!(i32);
        check!(bool);
        check!(Stat);
        check!(Bytes);
        check!(Option<String>);
        check!(Option<Bytes>);
        check!(Vec<String>);
    }
}

/// A frame of `n` bytes claiming huge counts or lengths fails fast, without
/// allocating for the claim.
#[test]
#[allow(clippy::disallowed_methods)] // a test may read the clock to bound its own time
fn huge_claims_fail_fast() {
    let claims = [i32::MAX, i32::MAX - 1, 1 << 30, 0x0fff_ffff, 1 << 20];
    for claim in claims {
        let claim_bytes = Bytes::copy_from_slice(&claim.to_be_bytes());
        let start = Instant::now();
        macro_rules! must_fail {
            ($t:ty) => {{
                let (res, peak) = peak_alloc(|| from_bytes::<$t>(claim_bytes.clone()));
                assert!(
                    matches!(res, Err(DecodeError::Truncated { .. })),
                    "{} claiming {claim}: {res:?}",
                    stringify!($t)
                );
                assert!(
                    peak < 1024,
                    "{} claiming {claim} allocated {peak} bytes",
                    stringify!($t)
                );
            }};
        }
        must_fail!(Vec<String>);
        must_fail!(Vec<Acl>);
        must_fail!(Vec<Stat>);
        must_fail!(Vec<i64>);
        must_fail!(Vec<Vec<String>>);
        must_fail!(Bytes);
        must_fail!(String);
        must_fail!(Option<String>);
        must_fail!(Option<Bytes>);
        must_fail!(GetDataResponse);
        must_fail!(GetChildrenResponse);
        must_fail!(GetEphemeralsResponse);
        must_fail!(WhoAmIResponse);
        must_fail!(SaslPacket);
        must_fail!(CreateResponse);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "claim {claim} took {:?}",
            start.elapsed()
        );

        // The same claim inside a larger record, after valid leading fields.
        let mut b = BytesMut::new();
        "/x".to_string().encode(&mut b);
        b.put_i32(claim); // data length
        let (res, peak) = peak_alloc(|| from_bytes::<CreateRequest>(b.clone().freeze()));
        assert!(matches!(res, Err(DecodeError::Truncated { .. })), "{res:?}");
        assert!(
            peak < 1024,
            "CreateRequest with data claim {claim} allocated {peak}"
        );

        let mut b = BytesMut::new();
        b.put_i64(7);
        for _ in 0..3 {
            b.put_i32(0);
        }
        b.put_i32(claim); // persistent watches count
        let (res, peak) = peak_alloc(|| from_bytes::<SetWatches2>(b.clone().freeze()));
        assert!(matches!(res, Err(DecodeError::Truncated { .. })), "{res:?}");
        assert!(peak < 1024, "SetWatches2 claim {claim} allocated {peak}");
    }
    // Lengths below -1 are refused outright.
    for bad in [-2i32, -100, i32::MIN] {
        let b = Bytes::copy_from_slice(&bad.to_be_bytes());
        assert_eq!(
            from_bytes::<String>(b.clone()),
            Err(DecodeError::InvalidLength(bad))
        );
        assert_eq!(
            from_bytes::<Bytes>(b.clone()),
            Err(DecodeError::InvalidLength(bad))
        );
        assert_eq!(
            from_bytes::<Option<Bytes>>(b.clone()),
            Err(DecodeError::InvalidLength(bad))
        );
        assert_eq!(
            from_bytes::<Vec<String>>(b),
            Err(DecodeError::InvalidLength(bad))
        );
    }
}

/// Many elements claimed, each element itself claiming a huge length: the
/// allocation stays proportional to the input.
#[test]
fn nested_claims_stay_proportional() {
    let mut b = BytesMut::new();
    b.put_i32(1000); // children count
    for _ in 0..1000 {
        b.put_i32(0); // empty names...
    }
    b.put_i32(i32::MAX); // ...and one that claims 2 GiB
    let n = b.len();
    let (res, peak) = peak_alloc(|| from_bytes::<Vec<String>>(b.freeze()));
    assert!(res.is_err());
    assert!(peak <= alloc_bound(n), "held {peak} for {n} bytes");
}

// ---------------------------------------------------------------------------
// (3) frames

/// Whole frames, and the payload of a trailing frame that stays incomplete.
fn arb_frame_stream() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>)> {
    (vec(vec(any::<u8>(), 0..40), 0..6), vec(any::<u8>(), 0..6))
}

fn stream_of(frames: &[Vec<u8>], partial: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as i32).to_be_bytes());
        out.extend_from_slice(f);
    }
    if !partial.is_empty() {
        // A frame of `partial` cut one byte short, so it is never complete.
        let start = out.len();
        out.extend_from_slice(&(partial.len() as i32).to_be_bytes());
        out.extend_from_slice(partial);
        out.truncate(out.len() - 1);
        debug_assert!(out.len() > start);
    }
    out
}

fn drain(dec: &mut FrameDecoder, out: &mut Vec<Vec<u8>>) -> Result<(), DecodeError> {
    while let Some(f) = dec.next_frame()? {
        out.push(f.to_vec());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// However a stream is cut, the same frames come out, in order, and a
    /// trailing incomplete frame stays buffered.
    #[test]
    fn frames_independent_of_chunking(
        (frames, partial) in arb_frame_stream(),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream = stream_of(&frames, &partial);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        for w in points.windows(2) {
            dec.push(&stream[w[0]..w[1]]);
            drain(&mut dec, &mut got).unwrap();
        }
        prop_assert_eq!(&got, &frames);
        let framed: usize = frames.iter().map(|f| 4 + f.len()).sum();
        prop_assert_eq!(dec.buffered(), stream.len() - framed);
    }

    /// Byte at a time gives the same as all at once.
    #[test]
    fn frames_byte_at_a_time((frames, partial) in arb_frame_stream()) {
        let stream = stream_of(&frames, &partial);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        for b in &stream {
            dec.push(std::slice::from_ref(b));
            drain(&mut dec, &mut got).unwrap();
        }
        prop_assert_eq!(got, frames);
    }

    /// A negative or over-max length prefix is refused with FrameLength as soon
    /// as its 4 bytes are in, after the good frames before it, without buffering
    /// (or allocating) the claimed size; and the same wherever the stream is cut.
    #[test]
    fn frames_bad_length_rejected(
        frames in vec(vec(any::<u8>(), 0..20), 0..4),
        max in 0usize..64,
        bad in prop_oneof![i32::MIN..0, 64i32..=i32::MAX],
        junk in vec(any::<u8>(), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let frames: Vec<Vec<u8>> = frames.into_iter().map(|mut f| { f.truncate(max); f }).collect();
        let mut stream = stream_of(&frames, &[]);
        let good_len = stream.len();
        stream.extend_from_slice(&bad.to_be_bytes());
        stream.extend_from_slice(&junk);
        let split = cut.index(stream.len() + 1);

        let (result, peak) = peak_alloc(|| {
            let mut dec = FrameDecoder::new(max);
            let mut got = Vec::new();
            dec.push(&stream[..split]);
            let mut pushed = split;
            let mut res = drain(&mut dec, &mut got);
            if res.is_ok() {
                dec.push(&stream[split..]);
                pushed = stream.len();
                res = drain(&mut dec, &mut got);
            }
            (res, got, dec.buffered(), pushed)
        });
        let (res, got, buffered, pushed) = result;
        prop_assert_eq!(res, Err(DecodeError::FrameLength { len: bad, max }));
        prop_assert_eq!(&got, &frames);
        // Only the bytes from the bad prefix on are held: nothing for the claim.
        prop_assert_eq!(buffered, pushed - good_len);
        prop_assert!(peak < 8 * stream.len() + 1024, "allocated {} for {} bytes", peak, stream.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// An oversized frame dropped with skip_frame is discarded as it arrives,
    /// never buffered (however the stream is cut), and the frames after it come
    /// out whole.
    #[test]
    fn frames_skip_an_oversized_frame(
        before in vec(vec(any::<u8>(), 0..20), 0..3),
        big in 21usize..5000,
        after in vec(vec(any::<u8>(), 0..20), 0..3),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let max = 20;
        let mut stream = stream_of(&before, &[]);
        stream.extend_from_slice(&(big as i32).to_be_bytes());
        stream.extend(std::iter::repeat_n(0xab, big));
        stream.extend_from_slice(&stream_of(&after, &[]));
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = FrameDecoder::new(max);
        let mut got = Vec::new();
        let mut skipped = Vec::new();
        for w in points.windows(2) {
            let chunk = &stream[w[0]..w[1]];
            dec.push(chunk);
            loop {
                match dec.next_frame() {
                    Ok(Some(f)) => got.push(f.to_vec()),
                    Ok(None) => break,
                    Err(DecodeError::FrameLength { len, .. }) => {
                        prop_assert_eq!(len as usize, big);
                        skipped.push(dec.skip_frame());
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
                }
            }
            // Bounded: a frame and a chunk at most, never the skipped frame.
            prop_assert!(dec.buffered() <= 4 + max + chunk.len());
        }
        let mut want = before.clone();
        want.extend(after.iter().cloned());
        prop_assert_eq!(got, want);
        prop_assert_eq!(skipped, vec![Some(big)]);
        prop_assert_eq!(dec.buffered(), 0);
        prop_assert_eq!(dec.skipping(), 0);
    }
}

#[test]
fn frame_skip_details() {
    let mut dec = FrameDecoder::new(4);
    assert_eq!(dec.skip_frame(), None, "nothing buffered");
    dec.push(&10i32.to_be_bytes());
    assert_eq!(dec.peek_len(), Some(10));
    assert_eq!(dec.peek_xid(), None);
    dec.push(&[0, 0, 0, 7, 1]);
    assert_eq!(dec.peek_xid(), Some(7));
    assert_eq!(dec.skip_frame(), Some(10));
    assert_eq!((dec.buffered(), dec.skipping()), (0, 5));
    // The rest of the skipped frame and a whole frame in one chunk.
    dec.push(&[9, 9, 9, 9, 9, 0, 0, 0, 2, 3, 4]);
    assert_eq!(dec.next_frame().unwrap().as_deref(), Some(&[3u8, 4][..]));
    assert_eq!((dec.buffered(), dec.skipping()), (0, 0));
    // A negative length cannot be skipped; clear() forgets a pending skip.
    dec.push(&(-1i32).to_be_bytes());
    assert_eq!(dec.skip_frame(), None);
    dec.clear();
    dec.push(&100i32.to_be_bytes());
    assert_eq!(dec.skip_frame(), Some(100));
    dec.clear();
    dec.push(&[0, 0, 0, 1, 5]);
    assert_eq!(dec.next_frame().unwrap().as_deref(), Some(&[5u8][..]));
}

#[test]
fn frame_length_limits() {
    // Exactly max is accepted; max + 1 is not.
    let mut dec = FrameDecoder::new(3);
    dec.push(&[0, 0, 0, 3, 1, 2, 3]);
    assert_eq!(dec.next_frame().unwrap().as_deref(), Some(&[1u8, 2, 3][..]));
    dec.push(&[0, 0, 0, 4]);
    assert_eq!(
        dec.next_frame(),
        Err(DecodeError::FrameLength { len: 4, max: 3 })
    );

    // Zero-length frames are frames.
    let mut dec = FrameDecoder::new(0);
    dec.push(&[0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(dec.next_frame().unwrap().as_deref(), Some(&[][..]));
    assert_eq!(dec.next_frame().unwrap().as_deref(), Some(&[][..]));
    assert_eq!(dec.next_frame().unwrap(), None);

    // A legal but large claim waits for the bytes without reserving room for them.
    let (pending, peak) = peak_alloc(|| {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        dec.push(&(DEFAULT_MAX_FRAME as i32).to_be_bytes());
        dec.push(b"abc");
        (dec.next_frame(), dec.buffered())
    });
    assert_eq!(pending, (Ok(None), 7));
    assert!(
        peak < 1024,
        "waiting for a 1 MiB frame allocated {peak} bytes"
    );

    for bad in [-1i32, i32::MIN, i32::MAX, DEFAULT_MAX_FRAME as i32 + 1] {
        let (res, peak) = peak_alloc(|| {
            let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
            dec.push(&bad.to_be_bytes());
            dec.next_frame()
        });
        assert_eq!(
            res,
            Err(DecodeError::FrameLength {
                len: bad,
                max: DEFAULT_MAX_FRAME
            })
        );
        assert!(peak < 1024, "claim {bad} allocated {peak}");
    }
}

// ---------------------------------------------------------------------------
// (4) paths

/// The server's forbidden characters (PathUtils.validatePath) that a Rust string can hold.
fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}')
}

fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_.:-]{1,8}",
        1 => vec(any::<char>(), 1..6).prop_map(|cs| cs.into_iter().collect::<String>()),
    ]
    .prop_map(|s| {
        s.chars()
            .filter(|&c| c != '/' && !forbidden(c))
            .collect::<String>()
    })
    .prop_filter("a real name", |s| !s.is_empty() && s != "." && s != "..")
}

fn arb_segments() -> impl Strategy<Value = Vec<String>> {
    vec(arb_segment(), 0..6)
}

fn join(segs: &[String]) -> String {
    if segs.is_empty() {
        "/".to_owned()
    } else {
        segs.iter().map(|s| format!("/{s}")).collect()
    }
}

fn arb_control() -> impl Strategy<Value = char> {
    use proptest::char::range;
    prop_oneof![
        range('\u{0}', '\u{1f}'),
        range('\u{7f}', '\u{9f}'),
        range('\u{e000}', '\u{f8ff}'),
        range('\u{fff0}', '\u{ffff}'),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Any path made of valid segments is accepted (also as a sequential prefix,
    /// with or without a trailing slash).
    #[test]
    fn path_valid_segments_accepted(segs in arb_segments()) {
        let p = join(&segs);
        prop_assert!(validate_path(&p, false).is_ok(), "{:?}", p);
        prop_assert!(validate_path(&p, true).is_ok(), "{:?}", p);
        if !segs.is_empty() {
            let seq = format!("{p}/");
            prop_assert!(validate_path(&seq, true).is_ok(), "{:?}", seq);
            prop_assert!(validate_path(&seq, false).is_err(), "{:?}", seq);
        }
    }

    /// An empty segment anywhere is rejected (a sequential path may still end in one `/`).
    #[test]
    fn path_empty_segment_rejected(
        segs in vec(arb_segment(), 1..6),
        at in any::<prop::sample::Index>(),
    ) {
        let mut segs = segs;
        let i = at.index(segs.len() + 1);
        let trailing = i == segs.len();
        segs.insert(i, String::new());
        let p = join(&segs);
        prop_assert!(validate_path(&p, false).is_err(), "{:?}", p);
        // A sequential create's path may end in `/`, but nowhere else may a name be empty.
        prop_assert_eq!(validate_path(&p, true).is_ok(), trailing, "{:?}", p);
    }

    /// A `.` or `..` segment anywhere is rejected.
    #[test]
    fn path_relative_segment_rejected(
        segs in arb_segments(),
        at in any::<prop::sample::Index>(),
        dots in select(vec![".", ".."]),
        seq in any::<bool>(),
    ) {
        let mut segs = segs;
        segs.insert(at.index(segs.len() + 1), dots.to_owned());
        let p = join(&segs);
        prop_assert!(validate_path(&p, seq).is_err(), "{:?}", p);
    }

    /// NUL or any other forbidden character anywhere after the leading `/` is rejected.
    #[test]
    fn path_control_char_rejected(
        segs in arb_segments(),
        c in prop_oneof![Just('\0'), arb_control()],
        at in any::<prop::sample::Index>(),
        seq in any::<bool>(),
    ) {
        let p = join(&segs);
        let boundaries: Vec<usize> = p.char_indices().map(|(i, _)| i).skip(1).chain([p.len()]).collect();
        let i = boundaries[at.index(boundaries.len())];
        let mut bad = p.clone();
        bad.insert(i, c);
        prop_assert!(validate_path(&bad, seq).is_err(), "{:?}", bad);
    }

    /// Paths not starting with `/` are rejected.
    #[test]
    fn path_relative_rejected(segs in arb_segments(), seq in any::<bool>()) {
        let p = join(&segs);
        prop_assert!(validate_path(&p[1..], seq).is_err(), "{:?}", &p[1..]);
    }

    /// Chroot::strip undoes Chroot::prefix, and a prefixed valid path is valid.
    #[test]
    fn chroot_strip_undoes_prefix(root in arb_segments(), segs in arb_segments()) {
        let root = join(&root);
        let chroot = Chroot::new(&root).unwrap();
        let p = join(&segs);
        let server = chroot.prefix(&p);
        prop_assert!(validate_path(&server, false).is_ok(), "{:?}", server);
        prop_assert_eq!(chroot.strip(&server), p.clone());
        let mut in_place = server.clone();
        chroot.strip_in_place(&mut in_place);
        prop_assert_eq!(in_place, p.clone());
        if root == "/" {
            prop_assert_eq!(&server, &p);
        } else {
            prop_assert!(server.starts_with(&root));
        }
    }
}
