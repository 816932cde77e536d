//! Fuzz target bodies, shared by the cargo-fuzz crate (`fuzz/`) and by
//! `tests/fuzz_corpus.rs`, which replays the checked-in corpus on stable.
//!
//! Every function takes arbitrary bytes and must never panic on them; the only
//! panics are `assert!`s of invariants (a failing one is a codec bug).

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use crate::error::DecodeError;
use crate::frame::{FrameDecoder, DEFAULT_MAX_FRAME};
use crate::jute::{from_bytes, to_bytes, Decode, Encode, Reader};
use crate::ops::{Request, Response};
use crate::records::*;
use crate::time::later;
use crate::types::OpCode;

/// Every named opcode, in wire order of the `OpCode` declaration.
pub const OPCODES: [OpCode; 33] = [
    OpCode::Notification,
    OpCode::Create,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetAcl,
    OpCode::SetAcl,
    OpCode::GetChildren,
    OpCode::Sync,
    OpCode::Ping,
    OpCode::GetChildren2,
    OpCode::Check,
    OpCode::Multi,
    OpCode::Create2,
    OpCode::Reconfig,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::CreateContainer,
    OpCode::DeleteContainer,
    OpCode::CreateTtl,
    OpCode::MultiRead,
    OpCode::Auth,
    OpCode::SetWatches,
    OpCode::Sasl,
    OpCode::GetEphemerals,
    OpCode::GetAllChildrenNumber,
    OpCode::SetWatches2,
    OpCode::AddWatch,
    OpCode::WhoAmI,
    OpCode::CreateSession,
    OpCode::CloseSession,
    OpCode::Error,
];

// Fails to compile when `OpCode` gains a variant, as a reminder to extend `OPCODES`.
#[allow(dead_code)]
fn opcodes_listed(op: OpCode) {
    match op {
        OpCode::Notification
        | OpCode::Create
        | OpCode::Delete
        | OpCode::Exists
        | OpCode::GetData
        | OpCode::SetData
        | OpCode::GetAcl
        | OpCode::SetAcl
        | OpCode::GetChildren
        | OpCode::Sync
        | OpCode::Ping
        | OpCode::GetChildren2
        | OpCode::Check
        | OpCode::Multi
        | OpCode::Create2
        | OpCode::Reconfig
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::CreateContainer
        | OpCode::DeleteContainer
        | OpCode::CreateTtl
        | OpCode::MultiRead
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::Sasl
        | OpCode::GetEphemerals
        | OpCode::GetAllChildrenNumber
        | OpCode::SetWatches2
        | OpCode::AddWatch
        | OpCode::WhoAmI
        | OpCode::CreateSession
        | OpCode::CloseSession
        | OpCode::Error
        | OpCode::Unknown(_) => {}
    }
}

/// The opcode chosen by a 4-byte selector: one of [`OPCODES`], or `Unknown` of the
/// raw value when the selector is past the end.
pub fn opcode_from_selector(sel: [u8; 4]) -> OpCode {
    let raw = u32::from_be_bytes(sel);
    let i = raw as usize % (OPCODES.len() + 1);
    OPCODES
        .get(i)
        .copied()
        .unwrap_or(OpCode::from_i32(raw as i32))
}

/// The 4-byte selector [`decode_reply`] maps to `op` (for building seeds). Every
/// unknown opcode maps to the same selector, which picks `Unknown(33)`.
pub fn opcode_selector(op: OpCode) -> [u8; 4] {
    let i = OPCODES
        .iter()
        .position(|&o| o == op)
        .unwrap_or(OPCODES.len());
    (i as u32).to_be_bytes()
}

// ---------------------------------------------------------------------------
// frame_split

/// Splits `data[2..]` into frames with [`FrameDecoder`], once fed whole and once in
/// chunks whose sizes are derived from the data; both must give the same frames and
/// the same error. `data[0]` picks the maximum frame length, `data[1]` seeds the chunking.
pub fn frame_split(data: &[u8]) {
    let [max_sel, seed, stream @ ..] = data else {
        return;
    };
    const MAXES: [usize; 8] = [0, 1, 4, 9, 16, 64, 1024, DEFAULT_MAX_FRAME];
    let max = MAXES[*max_sel as usize % MAXES.len()];

    let whole = split_frames(max, stream, |_| stream.len().max(1));
    let chunked = split_frames(max, stream, |i| {
        // Chunk sizes 1..=16 (or up to 256 when the seed's top bit is set), varying with the data.
        let b = stream.get(i % stream.len().max(1)).copied().unwrap_or(0);
        let span = if seed & 0x80 != 0 { 256 } else { 16 };
        1 + ((b ^ seed).wrapping_add(i as u8) as usize) % span
    });
    assert_eq!(whole.frames, chunked.frames, "frames depend on chunking");
    assert_eq!(whole.error, chunked.error, "errors depend on chunking");
    if whole.error.is_none() {
        assert_eq!(whole.left, chunked.left, "leftover depends on chunking");
    }

    // The frames and the leftover account for every byte of the stream.
    let mut framed = 0;
    for f in &whole.frames {
        assert!(
            f.len() <= max,
            "frame of {} bytes passed max {max}",
            f.len()
        );
        let prefix: [u8; 4] = stream[framed..framed + 4].try_into().unwrap();
        assert_eq!(i32::from_be_bytes(prefix) as usize, f.len());
        assert_eq!(&stream[framed + 4..framed + 4 + f.len()], &f[..]);
        framed += 4 + f.len();
    }
    match &whole.error {
        None => assert_eq!(framed + whole.left, stream.len()),
        Some(DecodeError::FrameLength { len, max: m }) => {
            assert_eq!(*m, max);
            assert!(*len < 0 || *len as usize > max);
            let prefix = &stream[framed..framed + 4];
            assert_eq!(i32::from_be_bytes(prefix.try_into().unwrap()), *len);
        }
        Some(other) => panic!("unexpected frame error {other:?}"),
    }
}

struct Split {
    frames: Vec<Bytes>,
    error: Option<DecodeError>,
    left: usize,
}

fn split_frames(max: usize, stream: &[u8], mut chunk: impl FnMut(usize) -> usize) -> Split {
    let mut dec = FrameDecoder::new(max);
    let mut out = Split {
        frames: Vec::new(),
        error: None,
        left: 0,
    };
    let mut pos = 0;
    let mut pushed = 0;
    let mut i = 0;
    loop {
        // Drain everything the decoder has.
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => {
                    pushed -= 4 + f.len();
                    out.frames.push(f);
                }
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
        // The decoder holds no more than what was pushed and not yet returned.
        assert_eq!(dec.buffered(), pushed);
        if pos >= stream.len() {
            out.left = dec.buffered();
            return out;
        }
        let n = chunk(i).clamp(1, stream.len() - pos);
        dec.push(&stream[pos..pos + n]);
        pos += n;
        pushed += n;
        i += 1;
    }
}

// ---------------------------------------------------------------------------
// decode_reply

/// `data[..4]` picks an opcode (see [`opcode_from_selector`]); the rest is a reply
/// payload: a ReplyHeader, then when its err is Ok the body for that opcode. Whatever
/// decodes must re-encode to bytes that decode to the same value. The body (and the
/// whole payload) are also tried as a WatcherEvent.
pub fn decode_reply(data: &[u8]) {
    let Some((sel, payload)) = data.split_first_chunk::<4>() else {
        return;
    };
    let op = opcode_from_selector(*sel);
    let mut r = Reader::new(Bytes::copy_from_slice(payload));
    let Ok(header) = ReplyHeader::decode(&mut r) else {
        return;
    };
    let rest = payload.len() - 16;
    assert_eq!(r.remaining(), rest);
    check_record::<WatcherEvent>(&payload[16..]);
    check_record::<WatcherEvent>(payload);
    if !header.err.is_ok() {
        return;
    }
    let Ok(resp) = Response::decode_body(op, &mut r) else {
        return;
    };
    assert!(r.is_empty(), "decode_body left bytes");

    let mut first = BytesMut::new();
    header.encode(&mut first);
    resp.encode_body(&mut first);
    let first = first.freeze();
    assert_eq!(
        &first[..16],
        &payload[..16],
        "ReplyHeader re-encodes differently"
    );

    let mut r2 = Reader::new(first.clone());
    let header2 = ReplyHeader::decode(&mut r2).expect("re-encoded header decodes");
    assert_eq!(header, header2);
    let resp2 = Response::decode_body(op, &mut r2)
        .unwrap_or_else(|e| panic!("re-encoded {op:?} reply {resp:?} fails: {e}"));
    assert_eq!(resp, resp2);
    let mut second = BytesMut::new();
    header2.encode(&mut second);
    resp2.encode_body(&mut second);
    assert_eq!(
        first,
        second.freeze(),
        "encoding of {op:?} reply is not stable"
    );
}

// ---------------------------------------------------------------------------
// connect_response

/// Decodes a ConnectResponse (and a ConnectRequest); what decodes must re-encode
/// to bytes of the same length that decode to the same value.
pub fn connect_response(data: &[u8]) {
    check_record::<ConnectResponse>(data);
    check_record::<ConnectRequest>(data);
    if let Ok(resp) = from_bytes::<ConnectResponse>(Bytes::copy_from_slice(data)) {
        // The optional trailing byte is there exactly when the input had 37+ bytes
        // with a 16-byte password, i.e. whenever a byte followed the password.
        let passwd_end = 20 + resp.passwd.len();
        assert_eq!(resp.read_only.is_some(), data.len() > passwd_end);
    }
}

// ---------------------------------------------------------------------------
// roundtrip

type Check = fn(&[u8]);

/// The record types [`roundtrip`] selects from, by name, in selector order.
/// Requests and responses by opcode follow: selector `RECORDS.len() + i` is the
/// request body of `OPCODES[i]`, `RECORDS.len() + OPCODES.len() + i` its reply body.
pub const RECORDS: &[(&str, Check)] = &[
    ("Stat", check_record::<Stat>),
    ("Id", check_record::<Id>),
    ("Acl", check_record::<Acl>),
    ("ConnectRequest", check_record::<ConnectRequest>),
    ("ConnectResponse", check_record::<ConnectResponse>),
    ("RequestHeader", check_record::<RequestHeader>),
    ("ReplyHeader", check_record::<ReplyHeader>),
    ("WatcherEvent", check_record::<WatcherEvent>),
    ("CreateRequest", check_record::<CreateRequest>),
    ("CreateTtlRequest", check_record::<CreateTtlRequest>),
    ("CreateResponse", check_record::<CreateResponse>),
    ("Create2Response", check_record::<Create2Response>),
    ("DeleteRequest", check_record::<DeleteRequest>),
    ("PathWatchRequest", check_record::<PathWatchRequest>),
    ("StatResponse", check_record::<StatResponse>),
    ("GetDataResponse", check_record::<GetDataResponse>),
    ("SetDataRequest", check_record::<SetDataRequest>),
    ("PathRequest", check_record::<PathRequest>),
    ("GetAclResponse", check_record::<GetAclResponse>),
    ("SetAclRequest", check_record::<SetAclRequest>),
    ("GetChildrenResponse", check_record::<GetChildrenResponse>),
    ("GetChildren2Response", check_record::<GetChildren2Response>),
    ("PathResponse", check_record::<PathResponse>),
    ("CheckVersionRequest", check_record::<CheckVersionRequest>),
    ("ReconfigRequest", check_record::<ReconfigRequest>),
    ("WatchesRequest", check_record::<WatchesRequest>),
    ("AddWatchRequest", check_record::<AddWatchRequest>),
    ("ErrorResponse", check_record::<ErrorResponse>),
    (
        "GetEphemeralsResponse",
        check_record::<GetEphemeralsResponse>,
    ),
    (
        "GetAllChildrenNumberResponse",
        check_record::<GetAllChildrenNumberResponse>,
    ),
    ("ClientInfo", check_record::<ClientInfo>),
    ("WhoAmIResponse", check_record::<WhoAmIResponse>),
    ("AuthPacket", check_record::<AuthPacket>),
    ("SaslPacket", check_record::<SaslPacket>),
    ("SetWatches", check_record::<SetWatches>),
    ("SetWatches2", check_record::<SetWatches2>),
    ("MultiHeader", check_record::<MultiHeader>),
    ("MultiRequest", check_record::<MultiRequest>),
    ("MultiResponse", check_record::<MultiResponse>),
    ("ErrorCode", check_record::<crate::error::ErrorCode>),
    ("Vec<Acl>", check_record::<Vec<Acl>>),
    ("Vec<String>", check_record::<Vec<String>>),
];

/// How many values [`roundtrip`]'s selector byte distinguishes.
pub const ROUNDTRIP_KINDS: usize = RECORDS.len() + 2 * OPCODES.len();

/// The selector byte [`roundtrip`] maps to the record named `name`.
pub fn record_selector(name: &str) -> Option<u8> {
    RECORDS
        .iter()
        .position(|(n, _)| *n == name)
        .map(|i| i as u8)
}

/// The selector byte [`roundtrip`] maps to the request (or, with `reply`, the reply) body of `op`.
pub fn body_selector(op: OpCode, reply: bool) -> Option<u8> {
    let i = OPCODES.iter().position(|&o| o == op)?;
    let base = RECORDS.len() + if reply { OPCODES.len() } else { 0 };
    Some((base + i) as u8)
}

/// `data[0]` picks a record type, or a request or reply body by opcode; the rest
/// is decoded as that. If it decodes (consuming everything), its encoding has the
/// input's length and decodes to the same value, and encoding that again gives the
/// same bytes.
pub fn roundtrip(data: &[u8]) {
    let [sel, input @ ..] = data else {
        return;
    };
    let k = *sel as usize % ROUNDTRIP_KINDS;
    if let Some((_, check)) = RECORDS.get(k) {
        check(input);
        return;
    }
    let k = k - RECORDS.len();
    if k < OPCODES.len() {
        check_request(OPCODES[k], input);
    } else {
        check_response(OPCODES[k - OPCODES.len()], input);
    }
}

/// Decodes `input` as one `T`; if that works, checks the encoding round trip.
fn check_record<T: Encode + Decode + PartialEq + Debug>(input: &[u8]) {
    let Ok(x) = from_bytes::<T>(Bytes::copy_from_slice(input)) else {
        return;
    };
    let first = to_bytes(&x);
    // Normalisation (null → empty outside node data, any non-zero boolean → 1)
    // never changes a length.
    assert_eq!(
        first.len(),
        input.len(),
        "{x:?} re-encodes to another length"
    );
    let y = from_bytes::<T>(first.clone())
        .unwrap_or_else(|e| panic!("re-encoded {x:?} fails to decode: {e}"));
    assert_eq!(x, y);
    assert_eq!(first, to_bytes(&y), "encoding of {x:?} is not stable");
}

fn check_request(op: OpCode, input: &[u8]) {
    let decode = |b: Bytes| -> Result<Request, DecodeError> {
        let mut r = Reader::new(b);
        let req = Request::decode_body(op, &mut r)?;
        r.finish()?;
        Ok(req)
    };
    let Ok(req) = decode(Bytes::copy_from_slice(input)) else {
        return;
    };
    assert_eq!(req.opcode(), op, "decode_body({op:?}) gave {req:?}");
    let mut first = BytesMut::new();
    req.encode_body(&mut first);
    let first = first.freeze();
    assert_eq!(
        first.len(),
        input.len(),
        "{req:?} re-encodes to another length"
    );
    let again =
        decode(first.clone()).unwrap_or_else(|e| panic!("re-encoded {req:?} fails to decode: {e}"));
    assert_eq!(req, again);
    let mut second = BytesMut::new();
    again.encode_body(&mut second);
    assert_eq!(first, second.freeze(), "encoding of {req:?} is not stable");
}

fn check_response(op: OpCode, input: &[u8]) {
    let Ok(resp) = Response::decode_body(op, &mut Reader::new(Bytes::copy_from_slice(input)))
    else {
        return;
    };
    let mut first = BytesMut::new();
    resp.encode_body(&mut first);
    let first = first.freeze();
    // addWatch tolerates a missing body, which then re-encodes as 4 bytes.
    if !(op == OpCode::AddWatch && input.is_empty()) {
        assert_eq!(
            first.len(),
            input.len(),
            "{resp:?} re-encodes to another length"
        );
    }
    let again = Response::decode_body(op, &mut Reader::new(first.clone()))
        .unwrap_or_else(|e| panic!("re-encoded {resp:?} fails to decode: {e}"));
    assert_eq!(resp, again);
    let mut second = BytesMut::new();
    again.encode_body(&mut second);
    assert_eq!(first, second.freeze(), "encoding of {resp:?} is not stable");
}

// ---------------------------------------------------------------------------
// session_stream

/// Drives a [`Session`](crate::session::Session) whose server sends `data[1..]`:
/// three requests are queued, the session connects, and the bytes arrive as
/// input in chunks while time moves on (`data[0]` picks the chunk size and the
/// time step), reconnects included. Then the session is closed and time runs out.
///
/// Checks: nothing is ever written to a connection after the session asked for
/// it to be closed, and every submitted request completes exactly once.
///
pub fn session_stream(data: &[u8], start: std::time::Instant) {
    use std::time::Duration;

    use crate::config::{Config, HostAddr};
    use crate::session::Session;

    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    // The caller supplies the start instant: zk-proto never reads the clock.
    let mut now = start;
    let config = Config::new(vec![HostAddr {
        host: "zk".into(),
        port: 2181,
    }]);
    let mut run = SessionRun {
        session: Session::new(config, now),
        conn: None,
        closed: Vec::new(),
        completed: Vec::new(),
    };
    // Queued until the handshake is done; they get xids 1, 2, 3.
    let mut submitted = Vec::new();
    for req in [
        Request::Create2(CreateRequest {
            path: "/golden".into(),
            data: Some(Bytes::from_static(b"hello")),
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
        Request::GetData(PathWatchRequest {
            path: "/golden".into(),
            watch: true,
        }),
        Request::SetData(SetDataRequest {
            path: "/golden".into(),
            data: Some(Bytes::from_static(b"world")),
            version: -1,
        }),
    ] {
        if let Ok(s) = run.session.submit(req, now) {
            submitted.push(s.id);
        }
    }

    let chunk_max = [1, 3, 7, 16, 64, 4096][(ctl & 7) as usize % 6];
    let step = Duration::from_millis([0, 1, 50, 500, 3000, 20_000][(ctl >> 3 & 7) as usize % 6]);
    let mut pos = 0;
    for round in 0..100_000usize {
        run.drain(now);
        if pos >= stream.len() || run.session.state().is_terminal() {
            break;
        }
        if let Some(conn) = run.conn {
            let b = stream[pos];
            let n = (1 + (b as usize ^ round) % chunk_max).min(stream.len() - pos);
            run.session.handle_input(conn, &stream[pos..pos + n], now);
            pos += n;
        }
        now = later(
            now,
            step.max(Duration::from_millis(if run.conn.is_none() {
                100
            } else {
                0
            })),
        );
        if run.session.poll_timeout().is_some_and(|t| t <= now) {
            run.session.handle_timeout(now);
        }
    }

    // Close, and let every timer run out: each request has completed by then.
    run.session.close(now);
    for _ in 0..1000 {
        run.drain(now);
        if run.session.state().is_terminal() {
            break;
        }
        now = later(now, Duration::from_millis(500));
        if run.session.poll_timeout().is_some_and(|t| t <= now) {
            run.session.handle_timeout(now);
        }
    }
    run.drain(now);
    if run.session.state().is_terminal() {
        for id in &submitted {
            let n = run.completed.iter().filter(|c| *c == id).count();
            assert_eq!(n, 1, "request {id:?} completed {n} times");
        }
    }
}

struct SessionRun {
    session: crate::session::Session,
    conn: Option<crate::session::ConnId>,
    closed: Vec<crate::session::ConnId>,
    completed: Vec<crate::session::RequestId>,
}

impl SessionRun {
    /// Performs every output: connects at once, drops transmits, records completions.
    fn drain(&mut self, now: std::time::Instant) {
        use crate::session::{Action, Event};
        loop {
            let mut progress = false;
            while let Some(a) = self.session.poll_action() {
                progress = true;
                if let Action::Connect { conn, .. } = a {
                    self.conn = Some(conn);
                    self.session.handle_connected(conn, now);
                } else if let Action::Disconnect { conn } = a {
                    self.closed.push(conn);
                    if self.conn == Some(conn) {
                        self.conn = None;
                    }
                }
            }
            while let Some(t) = self.session.poll_transmit(now) {
                progress = true;
                assert!(
                    !self.closed.contains(&t.conn),
                    "transmit on closed connection {:?}",
                    t.conn
                );
            }
            while let Some(e) = self.session.poll_event() {
                progress = true;
                if let Event::Completed { id, .. } = e {
                    assert!(!self.completed.contains(&id), "{id:?} completed twice");
                    self.completed.push(id);
                }
            }
            if !progress {
                return;
            }
        }
    }
}
