//! Null node data is not empty node data, on the wire and after decoding.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use zk_proto::frame::{write_frame, FrameDecoder, DEFAULT_MAX_FRAME};
use zk_proto::jute::{from_bytes, to_bytes, Decode, Encode, Reader};
use zk_proto::records::*;
use zk_proto::types::OpCode;
use zk_proto::{ErrorCode, Request, Response};

use super::strategies::{
    arb_opt_bytes, arb_reply_header, arb_request, arb_response, arb_stat, arb_string,
};

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
