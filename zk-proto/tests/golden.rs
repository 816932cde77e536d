//! Golden bytes captured from a real ZooKeeper 3.8 server (`tests/fixtures/*.hex`,
//! written by `tests/fixtures/capture.py`): each frame is split off with the
//! FrameDecoder, decoded, checked against what the capture says, and re-encoded
//! to the identical bytes.

use bytes::{Bytes, BytesMut};

use zk_proto::frame::{write_frame, FrameDecoder, DEFAULT_MAX_FRAME};
use zk_proto::jute::{from_bytes, Decode, Encode, Reader};
use zk_proto::records::*;
use zk_proto::types::{EventType, KeeperState, OpCode};
use zk_proto::{ErrorCode, Request, Response};

#[path = "common/hex_fixture.rs"]
mod hex_fixture;

/// The whole frame of a fixture, length prefix included.
fn wire(name: &str) -> Vec<u8> {
    hex_fixture::read_fixture(name).unwrap_or_else(|| {
        panic!(
            "{name}: no such fixture in {}",
            hex_fixture::fixtures_dir().display()
        )
    })
}

/// The payload of the one frame in a fixture, split off by the FrameDecoder.
fn payload(name: &str) -> Bytes {
    let bytes = wire(name);
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    dec.push(&bytes);
    let frame = dec
        .next_frame()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: incomplete frame"));
    assert_eq!(dec.buffered(), 0, "{name}: bytes after the frame");
    assert_eq!(frame.len() + 4, bytes.len());
    frame
}

fn framed(body: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut buf = BytesMut::new();
    write_frame(&mut buf, body);
    buf.to_vec()
}

/// Decodes a request fixture: header and body, checking the body is consumed
/// and that re-encoding gives the captured bytes.
fn request(name: &str) -> (RequestHeader, Request) {
    let mut r = Reader::new(payload(name));
    let header = RequestHeader::decode(&mut r).unwrap();
    let req = Request::decode_body(header.op, &mut r).unwrap_or_else(|e| panic!("{name}: {e}"));
    r.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(req.opcode(), header.op);
    let again = framed(|b| {
        header.encode(b);
        req.encode_body(b);
    });
    assert_eq!(again, wire(name), "{name}: re-encoding differs");
    (header, req)
}

/// Decodes a reply fixture to the request with opcode `op`: the header, then the
/// body only when err is Ok; re-encoding must give the captured bytes.
fn reply(name: &str, op: OpCode) -> (ReplyHeader, Option<Response>) {
    let mut r = Reader::new(payload(name));
    let header = ReplyHeader::decode(&mut r).unwrap();
    let body = if header.err.is_ok() {
        Some(Response::decode_body(op, &mut r).unwrap_or_else(|e| panic!("{name}: {e}")))
    } else {
        None
    };
    r.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = framed(|b| {
        header.encode(b);
        if let Some(body) = &body {
            body.encode_body(b);
        }
    });
    assert_eq!(again, wire(name), "{name}: re-encoding differs");
    (header, body)
}

fn expect_stat(body: Option<Response>) -> Stat {
    match body {
        Some(Response::Stat(StatResponse { stat })) => stat,
        other => panic!("expected a Stat reply, got {other:?}"),
    }
}

#[test]
fn connect_request() {
    let req: ConnectRequest = from_bytes(payload("connect_request")).unwrap();
    assert_eq!(
        req,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        }
    );
    assert_eq!(payload("connect_request").len(), 45);
    assert_eq!(framed(|b| req.encode(b)), wire("connect_request"));
}

#[test]
fn connect_response() {
    let resp: ConnectResponse = from_bytes(payload("connect_response")).unwrap();
    assert_eq!(resp.protocol_version, 0);
    assert_eq!(resp.timeout, 30_000, "negotiated timeout");
    assert_ne!(resp.session_id, 0);
    assert_eq!(
        resp.session_id >> 56,
        1,
        "standalone server id in the top byte"
    );
    assert_eq!(resp.passwd.len(), 16);
    assert_eq!(resp.read_only, Some(false));
    assert_eq!(payload("connect_response").len(), 37);
    assert_eq!(framed(|b| resp.encode(b)), wire("connect_response"));

    // Without the trailing byte (a client that did not send readOnly) it still decodes.
    let short = payload("connect_response").slice(..36);
    let resp36: ConnectResponse = from_bytes(short.clone()).unwrap();
    assert_eq!(resp36.read_only, None);
    assert_eq!(
        ConnectResponse {
            read_only: Some(false),
            ..resp36.clone()
        },
        resp
    );
    assert_eq!(zk_proto::jute::to_bytes(&resp36), short);
}

#[test]
fn create2() {
    let (h, req) = request("create2_request");
    assert_eq!((h.xid, h.op), (1, OpCode::Create2));
    assert_eq!(
        req,
        Request::Create2(CreateRequest {
            path: "/golden".into(),
            data: Some(Bytes::from_static(b"hello")),
            acl: Acl::open_unsafe(),
            flags: 0,
        })
    );

    let (h, body) = reply("create2_response", OpCode::Create2);
    assert_eq!((h.xid, h.err), (1, ErrorCode::Ok));
    let Some(Response::Create2(Create2Response { path, stat })) = body else {
        panic!("{body:?}");
    };
    assert_eq!(path, "/golden");
    assert_eq!(
        (stat.czxid, stat.mzxid, stat.pzxid),
        (h.zxid, h.zxid, h.zxid)
    );
    assert_eq!(stat.ctime, stat.mtime);
    assert!(
        stat.ctime > 1_600_000_000_000,
        "a plausible wall clock time"
    );
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(
        (stat.ephemeral_owner, stat.data_length, stat.num_children),
        (0, 5, 0)
    );
}

#[test]
fn get_data() {
    let (h, req) = request("get_data_request");
    assert_eq!((h.xid, h.op), (2, OpCode::GetData));
    assert_eq!(
        req,
        Request::GetData(PathWatchRequest {
            path: "/golden".into(),
            watch: true,
        })
    );

    let (h, body) = reply("get_data_response", OpCode::GetData);
    assert_eq!((h.xid, h.err), (2, ErrorCode::Ok));
    let Some(Response::GetData(GetDataResponse { data, stat })) = body else {
        panic!("{body:?}");
    };
    assert_eq!(data.as_deref().unwrap(), b"hello");
    assert_eq!(
        (stat.version, stat.data_length, stat.num_children),
        (0, 5, 0)
    );
    assert_eq!(stat.czxid, stat.mzxid);
}

#[test]
fn set_data_and_notification() {
    let (h, req) = request("set_data_request");
    assert_eq!((h.xid, h.op), (3, OpCode::SetData));
    assert_eq!(
        req,
        Request::SetData(SetDataRequest {
            path: "/golden".into(),
            data: Some(Bytes::from_static(b"world")),
            version: -1,
        })
    );

    // The watch set by getData fires before the setData reply: xid -1, and the
    // body is a WatcherEvent, not a reply to any request.
    let mut r = Reader::new(payload("watch_notification"));
    let h = ReplyHeader::decode(&mut r).unwrap();
    assert_eq!(
        h,
        ReplyHeader {
            xid: -1,
            zxid: -1,
            err: ErrorCode::Ok
        }
    );
    let event = WatcherEvent::decode(&mut r).unwrap();
    r.finish().unwrap();
    assert_eq!(
        event,
        WatcherEvent {
            event_type: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: "/golden".into(),
        }
    );
    let again = framed(|b| {
        h.encode(b);
        event.encode(b);
    });
    assert_eq!(again, wire("watch_notification"));

    let (h, body) = reply("set_data_response", OpCode::SetData);
    assert_eq!((h.xid, h.err), (3, ErrorCode::Ok));
    let stat = expect_stat(body);
    assert_eq!(stat.version, 1);
    assert_eq!(stat.mzxid, h.zxid);
    assert!(stat.czxid < stat.mzxid);
    assert!(stat.mtime >= stat.ctime);
    assert_eq!(stat.data_length, 5);
}

#[test]
fn get_children2() {
    let (h, req) = request("get_children2_request");
    assert_eq!((h.xid, h.op), (6, OpCode::GetChildren2));
    assert_eq!(
        req,
        Request::GetChildren2(PathWatchRequest {
            path: "/golden".into(),
            watch: false,
        })
    );

    let (h, body) = reply("get_children2_response", OpCode::GetChildren2);
    assert_eq!((h.xid, h.err), (6, ErrorCode::Ok));
    let Some(Response::GetChildren2(GetChildren2Response { children, stat })) = body else {
        panic!("{body:?}");
    };
    assert_eq!(children, ["a", "b"]);
    assert_eq!((stat.num_children, stat.cversion, stat.version), (2, 2, 1));
    assert_eq!(stat.pzxid, h.zxid, "the last child create");
}

#[test]
fn multi_fail() {
    let (h, req) = request("multi_fail_request");
    assert_eq!((h.xid, h.op), (7, OpCode::Multi));
    assert_eq!(
        req,
        Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create {
                    op: OpCode::Create,
                    req: CreateRequest {
                        path: "/golden/c".into(),
                        data: Some(Bytes::new()),
                        acl: Acl::open_unsafe(),
                        flags: 0,
                    },
                },
                MultiOp::SetData(SetDataRequest {
                    path: "/golden".into(),
                    data: Some(Bytes::from_static(b"x")),
                    version: 99,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/golden/a".into(),
                    version: -1,
                }),
            ],
        })
    );

    let (h, body) = reply("multi_fail_response", OpCode::Multi);
    assert_eq!(
        (h.xid, h.err),
        (7, ErrorCode::Ok),
        "a failed multi still has err 0"
    );
    let Some(Response::Multi(multi)) = body else {
        panic!("{body:?}");
    };
    assert_eq!(
        multi.results,
        [
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::BadVersion),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert_eq!(multi.first_error(), Some(ErrorCode::BadVersion));
}

#[test]
fn error_reply() {
    let (h, req) = request("error_reply_request");
    assert_eq!((h.xid, h.op), (8, OpCode::GetData));
    assert_eq!(
        req,
        Request::GetData(PathWatchRequest {
            path: "/missing".into(),
            watch: false,
        })
    );

    let (h, body) = reply("error_reply", OpCode::GetData);
    assert_eq!((h.xid, h.err), (8, ErrorCode::NoNode));
    assert_eq!(body, None);
    assert_eq!(payload("error_reply").len(), 16, "header only");
}

#[test]
fn ping() {
    let (h, req) = request("ping_request");
    assert_eq!((h.xid, h.op, req), (-2, OpCode::Ping, Request::Ping));
    let (h, body) = reply("ping_response", OpCode::Ping);
    assert_eq!((h.xid, h.err), (-2, ErrorCode::Ok));
    assert!(h.zxid > 0, "the server's last zxid");
    assert_eq!(body, Some(Response::Empty));
}

#[test]
fn close() {
    let (h, req) = request("close_request");
    assert_eq!(
        (h.xid, h.op, req),
        (9, OpCode::CloseSession, Request::CloseSession)
    );
    let (h, body) = reply("close_response", OpCode::CloseSession);
    assert_eq!((h.xid, h.err), (9, ErrorCode::Ok));
    assert_eq!(body, Some(Response::Empty));
}

/// The server's side of the session as one stream, in capture order, cut at
/// every byte: the frames come out the same.
#[test]
fn reply_stream_any_chunking() {
    let names = [
        "connect_response",
        "create2_response",
        "get_data_response",
        "watch_notification",
        "set_data_response",
        "get_children2_response",
        "multi_fail_response",
        "error_reply",
        "ping_response",
        "close_response",
    ];
    let stream: Vec<u8> = names.iter().flat_map(|n| wire(n)).collect();
    let expected: Vec<Bytes> = names.iter().map(|n| payload(n)).collect();
    for chunk in [1, 2, 3, 5, 7, 16, 41, 64, stream.len()] {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            dec.push(piece);
            while let Some(f) = dec.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, expected, "chunk size {chunk}");
        assert_eq!(dec.buffered(), 0);
    }
}
