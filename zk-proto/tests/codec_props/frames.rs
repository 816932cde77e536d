//! Frames: splitting and reassembly under any chunking, size limits.

use proptest::collection::vec;
use proptest::prelude::*;

use zk_proto::frame::{FrameDecoder, DEFAULT_MAX_FRAME};
use zk_proto::DecodeError;

use super::alloc::peak_alloc;

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

/// Where `cuts` split a stream of `len` bytes: 0, the cuts in order, and `len`
/// (chunk `i` is `points[i]..points[i + 1]`, some of them empty).
fn cut_points(cuts: &[prop::sample::Index], len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points
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
        let points = cut_points(&cuts, stream.len());
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
        let points = cut_points(&cuts, stream.len());
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
