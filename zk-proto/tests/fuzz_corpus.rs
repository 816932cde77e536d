//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz
//! target bodies, so plain `cargo test` exercises them on stable.
//!
//! `cargo test -p zk-proto --test fuzz_corpus -- --ignored generate_seed_corpus`
//! rewrites the seed files from the golden fixtures and hand-made edge cases.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{BufMut, BytesMut};

use zk_proto::fuzzing::{self, body_selector, opcode_selector, record_selector};
use zk_proto::jute::Encode;
use zk_proto::records::*;
use zk_proto::types::{AddWatchMode, EventType, KeeperState, OpCode, Perms, WatcherType};
use zk_proto::{ErrorCode, Request, Response};

type Body = fn(&[u8]);

/// The session body takes its start instant from the caller, as the fuzz target does.
#[allow(clippy::disallowed_methods)]
fn session_stream(data: &[u8]) {
    fuzzing::session_stream(data, std::time::Instant::now())
}

/// Every fuzz target, by its cargo-fuzz name.
const TARGETS: &[(&str, Body)] = &[
    ("frame_split", fuzzing::frame_split),
    ("decode_reply", fuzzing::decode_reply),
    ("connect_response", fuzzing::connect_response),
    ("roundtrip", fuzzing::roundtrip),
    ("session_stream", session_stream),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn corpus_replays_cleanly() {
    for (target, body) in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus dir {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus dir {} is empty", dir.display());
        for f in &files {
            let data = fs::read(f).unwrap();
            let name = f.display().to_string();
            let r = std::panic::catch_unwind(|| body(&data));
            assert!(r.is_ok(), "{target} panicked on {name}");
            // Every prefix too: truncation is the commonest corruption.
            for n in 0..data.len().min(512) {
                let r = std::panic::catch_unwind(|| body(&data[..n]));
                assert!(
                    r.is_ok(),
                    "{target} panicked on the first {n} bytes of {name}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Seed generation

#[path = "common/hex_fixture.rs"]
mod hex_fixture;
use hex_fixture::read_fixture;

/// (request fixture, reply fixture) pairs; the request's opcode decodes the reply.
const PAIRS: &[(&str, &str)] = &[
    ("create2_request", "create2_response"),
    ("get_data_request", "get_data_response"),
    ("set_data_request", "set_data_response"),
    ("get_children2_request", "get_children2_response"),
    ("multi_fail_request", "multi_fail_response"),
    ("error_reply_request", "error_reply"),
    ("ping_request", "ping_response"),
    ("close_request", "close_response"),
];

fn opcode_of_request(frame: &[u8]) -> OpCode {
    OpCode::from_i32(i32::from_be_bytes(frame[8..12].try_into().unwrap()))
}

fn with_prefix(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(rest);
    v
}

fn enc<T: Encode>(x: &T) -> Vec<u8> {
    let mut b = BytesMut::new();
    x.encode(&mut b);
    b.to_vec()
}

fn stat() -> Stat {
    Stat {
        czxid: 0x10,
        mzxid: 0x11,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 1,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
        pzxid: 0x10,
    }
}

fn create() -> CreateRequest {
    CreateRequest {
        path: "/golden".into(),
        data: Some("hello".into()),
        acl: Acl::open_unsafe(),
        flags: 0,
    }
}

fn pw(path: &str) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch: true,
    }
}

/// One request of every body-carrying shape.
fn sample_requests() -> Vec<Request> {
    vec![
        Request::Create2(create()),
        Request::CreateTtl(CreateTtlRequest {
            path: "/ttl".into(),
            data: Some("x".into()),
            acl: Acl::creator_all(),
            flags: 5,
            ttl: 60_000,
        }),
        Request::Delete(DeleteRequest {
            path: "/golden".into(),
            version: -1,
        }),
        Request::Exists(pw("/missing")),
        Request::SetAcl(SetAclRequest {
            path: "/golden".into(),
            acl: vec![Acl::new(Perms::READ | Perms::ADMIN, "digest", "u:hash=")],
            version: 0,
        }),
        Request::Sync(PathRequest { path: "/".into() }),
        Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create,
                    req: create(),
                },
                MultiOp::Check(CheckVersionRequest {
                    path: "/golden".into(),
                    version: 3,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/golden".into(),
                    data: Some("v".into()),
                    version: -1,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/golden".into(),
                    version: 0,
                }),
            ],
        }),
        Request::MultiRead(MultiRequest {
            ops: vec![MultiOp::GetData(pw("/a")), MultiOp::GetChildren(pw("/b"))],
        }),
        Request::Reconfig(ReconfigRequest {
            joining_servers: Some("server.4=h:2888:3888;2181".into()),
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1,
        }),
        Request::RemoveWatches(WatchesRequest {
            path: "/w".into(),
            watcher_type: WatcherType::Any,
        }),
        Request::AddWatch(AddWatchRequest {
            path: "/w".into(),
            mode: AddWatchMode::PersistentRecursive,
        }),
        Request::SetWatches(SetWatches {
            relative_zxid: 42,
            data_watches: vec!["/a".into()],
            exist_watches: vec!["/b".into()],
            child_watches: vec![],
        }),
        Request::SetWatches2(SetWatches2 {
            relative_zxid: 42,
            data_watches: vec!["/a".into()],
            exist_watches: vec![],
            child_watches: vec!["/c".into()],
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec!["/r".into()],
        }),
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: "user:pw".into(),
        }),
        Request::GetEphemerals(PathRequest { path: "/".into() }),
    ]
}

/// Reply bodies the captures do not cover.
fn sample_responses() -> Vec<(OpCode, Response)> {
    vec![
        (
            OpCode::Multi,
            Response::Multi(MultiResponse {
                results: vec![
                    MultiResult::Create(CreateResponse {
                        path: "/golden".into(),
                    }),
                    MultiResult::Create2(Create2Response {
                        path: "/c".into(),
                        stat: stat(),
                    }),
                    MultiResult::SetData(StatResponse { stat: stat() }),
                    MultiResult::Delete,
                    MultiResult::Check,
                ],
            }),
        ),
        (
            OpCode::MultiRead,
            Response::Multi(MultiResponse {
                results: vec![
                    MultiResult::GetData(GetDataResponse {
                        data: Some("hello".into()),
                        stat: stat(),
                    }),
                    MultiResult::GetChildren(GetChildrenResponse {
                        children: vec!["a".into(), "b".into()],
                    }),
                    MultiResult::Error(ErrorCode::NoNode),
                ],
            }),
        ),
        (
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse {
                acl: Acl::open_unsafe(),
                stat: stat(),
            }),
        ),
        (
            OpCode::WhoAmI,
            Response::WhoAmI(WhoAmIResponse {
                client_info: vec![ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                }],
            }),
        ),
        (
            OpCode::AddWatch,
            Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }),
        ),
        (
            OpCode::GetAllChildrenNumber,
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 7 }),
        ),
    ]
}

fn body_of(resp: &Response) -> Vec<u8> {
    let mut b = BytesMut::new();
    resp.encode_body(&mut b);
    b.to_vec()
}

fn reply_payload(xid: i32, zxid: i64, err: ErrorCode, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    ReplyHeader { xid, zxid, err }.encode(&mut b);
    b.put_slice(body);
    b.to_vec()
}

/// Writes the seed corpus. Run by hand after the codec or the fixtures change.
#[test]
#[ignore]
fn generate_seed_corpus() {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let mut add =
        |t: &'static str, name: &str, data: Vec<u8>| seeds.push((t, name.to_owned(), data));

    // Golden captures.
    let mut request_stream = Vec::new();
    let mut reply_stream = Vec::new();
    if let (Some(req), Some(resp)) = (
        read_fixture("connect_request"),
        read_fixture("connect_response"),
    ) {
        request_stream.extend_from_slice(&req);
        reply_stream.extend_from_slice(&resp);
        add(
            "connect_response",
            "golden_connect_response",
            resp[4..].to_vec(),
        );
        add(
            "connect_response",
            "golden_connect_request",
            req[4..].to_vec(),
        );
        add(
            "roundtrip",
            "golden_connect_request",
            with_prefix(&[record_selector("ConnectRequest").unwrap()], &req[4..]),
        );
    }
    for (req_name, resp_name) in PAIRS {
        let (Some(req), Some(resp)) = (read_fixture(req_name), read_fixture(resp_name)) else {
            continue;
        };
        request_stream.extend_from_slice(&req);
        reply_stream.extend_from_slice(&resp);
        let op = opcode_of_request(&req);
        add(
            "decode_reply",
            &format!("golden_{resp_name}"),
            with_prefix(&opcode_selector(op), &resp[4..]),
        );
        add(
            "roundtrip",
            &format!("golden_{req_name}"),
            with_prefix(&[body_selector(op, false).unwrap()], &req[12..]),
        );
        if resp.len() > 20 {
            add(
                "roundtrip",
                &format!("golden_{resp_name}"),
                with_prefix(&[body_selector(op, true).unwrap()], &resp[20..]),
            );
        }
    }
    if let Some(n) = read_fixture("watch_notification") {
        reply_stream.extend_from_slice(&n);
        add(
            "decode_reply",
            "golden_watch_notification",
            with_prefix(&opcode_selector(OpCode::Notification), &n[4..]),
        );
        add(
            "roundtrip",
            "golden_watch_notification",
            with_prefix(&[record_selector("WatcherEvent").unwrap()], &n[20..]),
        );
    }
    if !request_stream.is_empty() {
        add(
            "frame_split",
            "golden_requests",
            with_prefix(&[7, 0], &request_stream),
        );
        add(
            "frame_split",
            "golden_replies_random_chunks",
            with_prefix(&[7, 0x93], &reply_stream),
        );
        add(
            "frame_split",
            "golden_replies_small_max",
            with_prefix(&[6, 5], &reply_stream),
        );
    }

    // session_stream: [control byte, server's bytes]. The body queues create2,
    // getData and setData of /golden, as in the capture (xids 1, 2, 3).
    let session_replies = [
        "connect_response",
        "create2_response",
        "get_data_response",
        "watch_notification",
        "set_data_response",
        "ping_response",
    ];
    if let Some(stream) = session_replies
        .iter()
        .map(|n| read_fixture(n))
        .collect::<Option<Vec<_>>>()
        .map(|v| v.concat())
    {
        // Low 3 bits: chunk size; next 3: time step per chunk.
        add(
            "session_stream",
            "golden_whole",
            with_prefix(&[0x05], &stream),
        );
        add(
            "session_stream",
            "golden_bytewise",
            with_prefix(&[0x08], &stream),
        );
        add(
            "session_stream",
            "golden_slow",
            with_prefix(&[0x23], &stream),
        );
        let mut garbage = stream[..41].to_vec();
        garbage.extend_from_slice(&[0, 0, 0, 3, 1, 2, 3, 0xff, 0xff, 0xff, 0xff]);
        add(
            "session_stream",
            "garbage_after_handshake",
            with_prefix(&[0x04], &garbage),
        );
    }
    let mut expired = vec![0x04];
    expired.extend_from_slice(&(37i32).to_be_bytes());
    expired.extend_from_slice(&enc(&ConnectResponse {
        protocol_version: 0,
        timeout: 0,
        session_id: 0,
        passwd: vec![0; 16].into(),
        read_only: Some(false),
    }));
    add("session_stream", "expired", expired);

    // frame_split edge cases: [max selector, chunk seed, stream].
    add(
        "frame_split",
        "empty_frames",
        vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    add(
        "frame_split",
        "negative_length",
        with_prefix(&[7, 2], &[0, 0, 0, 1, 9, 0xff, 0xff, 0xff, 0xff, 1, 2]),
    );
    add(
        "frame_split",
        "over_max",
        with_prefix(
            &[2, 3],
            &[0, 0, 0, 4, 1, 2, 3, 4, 0, 0, 0, 5, 1, 2, 3, 4, 5],
        ),
    );
    add(
        "frame_split",
        "huge_claim",
        with_prefix(&[7, 4], &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]),
    );
    add(
        "frame_split",
        "incomplete_tail",
        with_prefix(&[5, 0x85], &[0, 0, 0, 2, 7, 7, 0, 0, 0, 9, 1, 2]),
    );

    // decode_reply edge cases: [opcode selector, reply payload].
    let notif = enc(&WatcherEvent {
        event_type: EventType::NodeChildrenChanged,
        state: KeeperState::SyncConnected,
        path: "/dir".into(),
    });
    add(
        "decode_reply",
        "notification",
        with_prefix(
            &opcode_selector(OpCode::Notification),
            &reply_payload(-1, -1, ErrorCode::Ok, &notif),
        ),
    );
    add(
        "decode_reply",
        "error_no_body",
        with_prefix(
            &opcode_selector(OpCode::GetData),
            &reply_payload(5, 9, ErrorCode::NoNode, &[]),
        ),
    );
    add(
        "decode_reply",
        "add_watch_empty",
        with_prefix(
            &opcode_selector(OpCode::AddWatch),
            &reply_payload(6, 9, ErrorCode::Ok, &[]),
        ),
    );
    add(
        "decode_reply",
        "unknown_opcode",
        with_prefix(
            &opcode_selector(OpCode::Unknown(55)),
            &reply_payload(7, -1, ErrorCode::Unimplemented, &[]),
        ),
    );
    add(
        "decode_reply",
        "children_huge_count",
        with_prefix(
            &opcode_selector(OpCode::GetChildren),
            &reply_payload(8, 9, ErrorCode::Ok, &[0x7f, 0xff, 0xff, 0xff]),
        ),
    );
    for (op, resp) in sample_responses() {
        let name = format!("reply_{op:?}").to_lowercase();
        add(
            "decode_reply",
            &name,
            with_prefix(
                &opcode_selector(op),
                &reply_payload(9, 10, ErrorCode::Ok, &body_of(&resp)),
            ),
        );
        add(
            "roundtrip",
            &name,
            with_prefix(&[body_selector(op, true).unwrap()], &body_of(&resp)),
        );
    }

    // connect_response edge cases.
    let cr = |timeout, session_id, passwd: &[u8], ro: Option<bool>| {
        enc(&ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id,
            passwd: passwd.to_vec().into(),
            read_only: ro,
        })
    };
    add(
        "connect_response",
        "without_read_only",
        cr(30_000, 0x0100_0000_0000_0007, &[7; 16], None),
    );
    add(
        "connect_response",
        "expired",
        cr(0, 0, &[0; 16], Some(false)),
    );
    add(
        "connect_response",
        "read_only",
        cr(4000, 0x0200_0000_0000_0001, &[1; 16], Some(true)),
    );
    let mut null_passwd = cr(4000, 1, &[], Some(false));
    null_passwd[16..20].copy_from_slice(&(-1i32).to_be_bytes());
    add("connect_response", "null_passwd", null_passwd);
    let mut huge = cr(4000, 1, &[], None);
    huge[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
    add("connect_response", "huge_passwd_claim", huge);

    // roundtrip: a few records, one request of each shape, edge cases.
    let sel = |name| [record_selector(name).unwrap()];
    add(
        "roundtrip",
        "stat",
        with_prefix(&sel("Stat"), &enc(&stat())),
    );
    add(
        "roundtrip",
        "multi_header_end",
        with_prefix(
            &sel("MultiHeader"),
            &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff],
        ),
    );
    add(
        "roundtrip",
        "reconfig_nulls",
        with_prefix(&sel("ReconfigRequest"), &[0xff; 20]),
    );
    add(
        "roundtrip",
        "acl_list_huge_count",
        with_prefix(&sel("Vec<Acl>"), &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 31]),
    );
    add(
        "roundtrip",
        "bool_two",
        with_prefix(&sel("PathWatchRequest"), &[0, 0, 0, 1, b'/', 2]),
    );
    add(
        "roundtrip",
        "bad_utf8",
        with_prefix(&sel("PathRequest"), &[0, 0, 0, 2, 0xc3, 0x28]),
    );
    for req in sample_requests() {
        let op = req.opcode();
        let mut b = BytesMut::new();
        req.encode_body(&mut b);
        add(
            "roundtrip",
            &format!("request_{op:?}").to_lowercase(),
            with_prefix(&[body_selector(op, false).unwrap()], &b),
        );
    }

    for (target, _) in TARGETS {
        let dir = corpus_dir(target);
        if dir.exists() {
            for e in fs::read_dir(&dir).unwrap() {
                fs::remove_file(e.unwrap().path()).unwrap();
            }
        }
        fs::create_dir_all(&dir).unwrap();
    }
    for (target, name, data) in &seeds {
        fs::write(corpus_dir(target).join(name), data).unwrap();
    }
    eprintln!("wrote {} seeds", seeds.len());
}
