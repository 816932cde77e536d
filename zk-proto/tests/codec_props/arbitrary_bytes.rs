//! Arbitrary bytes: no panic, no allocation beyond the input.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use zk_proto::fuzzing::{self, OPCODES};
use zk_proto::jute::{from_bytes, Encode, Reader};
use zk_proto::records::*;
use zk_proto::{DecodeError, ErrorCode};

use super::alloc::peak_alloc;
use super::strategies::{arb_reply_header, arb_request, arb_response};

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
