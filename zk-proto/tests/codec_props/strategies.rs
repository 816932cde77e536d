//! Proptest strategies: an arbitrary value of every record, request and reply.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use zk_proto::fuzzing::OPCODES;
use zk_proto::records::*;
use zk_proto::types::{AddWatchMode, EventType, KeeperState, OpCode, Perms, WatcherType};
use zk_proto::{ErrorCode, Request, Response};

pub(crate) fn arb_string() -> impl Strategy<Value = String> {
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
pub(crate) fn arb_opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
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

pub(crate) fn arb_error_code() -> impl Strategy<Value = ErrorCode> {
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

pub(crate) fn arb_stat() -> impl Strategy<Value = Stat> {
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

pub(crate) fn arb_id() -> impl Strategy<Value = Id> {
    (arb_string(), arb_string()).prop_map(|(scheme, id)| Id { scheme, id })
}

pub(crate) fn arb_acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), arb_id()).prop_map(|(p, id)| Acl {
        perms: Perms(p),
        id,
    })
}

pub(crate) fn arb_acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(arb_acl(), 0..3)
}

pub(crate) fn arb_connect_request() -> impl Strategy<Value = ConnectRequest> {
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

pub(crate) fn arb_connect_response() -> impl Strategy<Value = ConnectResponse> {
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

pub(crate) fn arb_request_header() -> impl Strategy<Value = RequestHeader> {
    (any::<i32>(), arb_opcode()).prop_map(|(xid, op)| RequestHeader { xid, op })
}

pub(crate) fn arb_reply_header() -> impl Strategy<Value = ReplyHeader> {
    (any::<i32>(), any::<i64>(), arb_error_code()).prop_map(|(xid, zxid, err)| ReplyHeader {
        xid,
        zxid,
        err,
    })
}

pub(crate) fn arb_watcher_event() -> impl Strategy<Value = WatcherEvent> {
    (arb_event_type(), arb_keeper_state(), arb_string()).prop_map(|(event_type, state, path)| {
        WatcherEvent {
            event_type,
            state,
            path,
        }
    })
}

pub(crate) fn arb_create_request() -> impl Strategy<Value = CreateRequest> {
    (arb_string(), arb_opt_bytes(), arb_acls(), any::<i32>()).prop_map(
        |(path, data, acl, flags)| CreateRequest {
            path,
            data,
            acl,
            flags,
        },
    )
}

pub(crate) fn arb_create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    (arb_create_request(), any::<i64>()).prop_map(|(c, ttl)| CreateTtlRequest {
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl,
    })
}

pub(crate) fn arb_create_response() -> impl Strategy<Value = CreateResponse> {
    arb_string().prop_map(|path| CreateResponse { path })
}

pub(crate) fn arb_create2_response() -> impl Strategy<Value = Create2Response> {
    (arb_string(), arb_stat()).prop_map(|(path, stat)| Create2Response { path, stat })
}

pub(crate) fn arb_delete_request() -> impl Strategy<Value = DeleteRequest> {
    (arb_string(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

pub(crate) fn arb_path_watch_request() -> impl Strategy<Value = PathWatchRequest> {
    (arb_string(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch })
}

pub(crate) fn arb_stat_response() -> impl Strategy<Value = StatResponse> {
    arb_stat().prop_map(|stat| StatResponse { stat })
}

pub(crate) fn arb_get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (arb_opt_bytes(), arb_stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

pub(crate) fn arb_set_data_request() -> impl Strategy<Value = SetDataRequest> {
    (arb_string(), arb_opt_bytes(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

pub(crate) fn arb_path_request() -> impl Strategy<Value = PathRequest> {
    arb_string().prop_map(|path| PathRequest { path })
}

pub(crate) fn arb_get_acl_response() -> impl Strategy<Value = GetAclResponse> {
    (arb_acls(), arb_stat()).prop_map(|(acl, stat)| GetAclResponse { acl, stat })
}

pub(crate) fn arb_set_acl_request() -> impl Strategy<Value = SetAclRequest> {
    (arb_string(), arb_acls(), any::<i32>()).prop_map(|(path, acl, version)| SetAclRequest {
        path,
        acl,
        version,
    })
}

pub(crate) fn arb_get_children_response() -> impl Strategy<Value = GetChildrenResponse> {
    arb_strings().prop_map(|children| GetChildrenResponse { children })
}

pub(crate) fn arb_get_children2_response() -> impl Strategy<Value = GetChildren2Response> {
    (arb_strings(), arb_stat()).prop_map(|(children, stat)| GetChildren2Response { children, stat })
}

pub(crate) fn arb_path_response() -> impl Strategy<Value = PathResponse> {
    arb_string().prop_map(|path| PathResponse { path })
}

pub(crate) fn arb_check_version_request() -> impl Strategy<Value = CheckVersionRequest> {
    (arb_string(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

pub(crate) fn arb_reconfig_request() -> impl Strategy<Value = ReconfigRequest> {
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

pub(crate) fn arb_watches_request() -> impl Strategy<Value = WatchesRequest> {
    (arb_string(), arb_watcher_type())
        .prop_map(|(path, watcher_type)| WatchesRequest { path, watcher_type })
}

pub(crate) fn arb_add_watch_request() -> impl Strategy<Value = AddWatchRequest> {
    (arb_string(), arb_add_watch_mode()).prop_map(|(path, mode)| AddWatchRequest { path, mode })
}

pub(crate) fn arb_error_response() -> impl Strategy<Value = ErrorResponse> {
    arb_error_code().prop_map(|err| ErrorResponse { err })
}

pub(crate) fn arb_get_ephemerals_response() -> impl Strategy<Value = GetEphemeralsResponse> {
    arb_strings().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals })
}

pub(crate) fn arb_get_all_children_number_response(
) -> impl Strategy<Value = GetAllChildrenNumberResponse> {
    any::<i32>().prop_map(|total_number| GetAllChildrenNumberResponse { total_number })
}

pub(crate) fn arb_client_info() -> impl Strategy<Value = ClientInfo> {
    (arb_string(), arb_string()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
}

pub(crate) fn arb_who_am_i_response() -> impl Strategy<Value = WhoAmIResponse> {
    vec(arb_client_info(), 0..3).prop_map(|client_info| WhoAmIResponse { client_info })
}

pub(crate) fn arb_auth_packet() -> impl Strategy<Value = AuthPacket> {
    (any::<i32>(), arb_string(), arb_bytes()).prop_map(|(auth_type, scheme, auth)| AuthPacket {
        auth_type,
        scheme,
        auth,
    })
}

pub(crate) fn arb_sasl_packet() -> impl Strategy<Value = SaslPacket> {
    arb_bytes().prop_map(|token| SaslPacket { token })
}

pub(crate) fn arb_set_watches() -> impl Strategy<Value = SetWatches> {
    (any::<i64>(), arb_strings(), arb_strings(), arb_strings()).prop_map(|(z, d, e, c)| {
        SetWatches {
            relative_zxid: z,
            data_watches: d,
            exist_watches: e,
            child_watches: c,
        }
    })
}

pub(crate) fn arb_set_watches2() -> impl Strategy<Value = SetWatches2> {
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

pub(crate) fn arb_multi_header() -> impl Strategy<Value = MultiHeader> {
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

pub(crate) fn arb_multi_request() -> impl Strategy<Value = MultiRequest> {
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

pub(crate) fn arb_multi_response() -> impl Strategy<Value = MultiResponse> {
    vec(arb_multi_result(), 0..4).prop_map(|results| MultiResponse { results })
}

/// Every `Request` variant.
pub(crate) fn arb_request() -> impl Strategy<Value = Request> {
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
pub(crate) fn arb_response() -> impl Strategy<Value = (OpCode, Response)> {
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
