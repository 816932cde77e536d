//! The 4-byte big-endian length prefix that delimits every message.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::DecodeError;

/// The server's default `jute.maxbuffer` (0xfffff bytes) plus 1024.
///
/// `jute.maxbuffer` bounds what a server accepts, not what it sends: a node
/// holding the largest data a server accepts comes back in a getData reply of
/// header (16) + data length (4) + data + Stat (68) bytes, which is over
/// `jute.maxbuffer`. The 1024 bytes of room cover the reply header and Stat
/// (like the server's own `jute.maxbuffer.extrasize`).
pub const DEFAULT_MAX_FRAME: usize = 0xfffff + 1024;

/// The largest claimed frame length the session treats as a real (if oversized)
/// reply that can be skipped; a longer claim (up to 2 GiB) is taken for stream
/// corruption and drops the connection at once, without waiting for more bytes.
pub const MAX_SKIPPABLE_FRAME: usize = 1 << 30;

/// Splits a byte stream into frames, however it is chunked.
///
/// The claimed length is checked against the maximum before anything is
/// reserved, and the buffer only grows with bytes that really arrived.
///
/// An oversized frame is an error from [`next_frame`](FrameDecoder::next_frame);
/// the caller may instead drop it with [`skip_frame`](FrameDecoder::skip_frame),
/// after which the rest of its bytes are discarded as they are pushed (counted
/// down, never buffered) and the frames after it decode normally.
///
/// Why: a socket read ends anywhere, not at a message boundary; push what each
/// read returned and take out whole frames, and a hostile length prefix costs
/// nothing.
///
/// ```
/// use bytes::BytesMut;
/// use zk_proto::error::DecodeError;
/// use zk_proto::frame::{write_frame, FrameDecoder};
///
/// let mut wire = BytesMut::new();
/// write_frame(&mut wire, |b| b.extend_from_slice(b"hello"));
/// assert_eq!(&wire[..], b"\0\0\0\x05hello");
///
/// // One frame arriving in three reads.
/// let mut frames = FrameDecoder::new(1024);
/// frames.push(&wire[..2]);
/// assert_eq!(frames.next_frame(), Ok(None));
/// frames.push(&wire[2..6]);
/// assert_eq!(frames.next_frame(), Ok(None));
/// frames.push(&wire[6..]);
/// assert_eq!(frames.next_frame().unwrap().as_deref(), Some(&b"hello"[..]));
/// assert_eq!(frames.buffered(), 0);
///
/// // A claimed length over the maximum is a typed error, before any allocation.
/// let mut frames = FrameDecoder::new(1024);
/// frames.push(&0x7fff_ffffi32.to_be_bytes());
/// assert_eq!(
///     frames.next_frame(),
///     Err(DecodeError::FrameLength { len: 0x7fff_ffff, max: 1024 })
/// );
/// // So is a negative one.
/// let mut frames = FrameDecoder::new(1024);
/// frames.push(&(-5i32).to_be_bytes());
/// assert!(matches!(frames.next_frame(), Err(DecodeError::FrameLength { len: -5, .. })));
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
    /// Bytes of a skipped frame still to come; while non-zero, `buf` is empty.
    skip: usize,
}

impl FrameDecoder {
    /// A decoder rejecting frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max,
            skip: 0,
        }
    }

    /// Appends received bytes (first discarding what is left of a skipped frame).
    pub fn push(&mut self, mut data: &[u8]) {
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of a skipped frame that have not arrived yet (they will be dropped).
    pub fn skipping(&self) -> usize {
        self.skip
    }

    /// Drops buffered bytes (a new connection starts a new stream).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.skip = 0;
    }

    /// The next complete frame's payload, without its prefix; `None` until one is complete.
    /// A negative or over-max length is an error; after it the stream cannot be
    /// resynchronised (drop the connection), unless the caller skips the frame
    /// with [`skip_frame`](FrameDecoder::skip_frame).
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let Some(len) = self.peek_len() else {
            return Ok(None);
        };
        if len < 0 || len as usize > self.max {
            return Err(DecodeError::FrameLength { len, max: self.max });
        }
        let len = len as usize;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// The length prefix of the next frame, once its 4 bytes are buffered.
    pub fn peek_len(&self) -> Option<i32> {
        self.peek_i32(0)
    }

    /// The 4 bytes after the next frame's length prefix (a reply's xid), once buffered.
    pub fn peek_xid(&self) -> Option<i32> {
        self.peek_i32(4)
    }

    fn peek_i32(&self, at: usize) -> Option<i32> {
        let b = self.buf.get(at..at + 4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Drops the next frame, whatever its (non-negative) length: the bytes
    /// buffered now go at once, the rest as they are pushed. Returns the
    /// frame's length; `None` (nothing dropped) if its prefix is not buffered
    /// yet or is negative.
    ///
    /// Why: a reply too large to accept can be answered with an error and
    /// skipped without buffering it and without losing the connection (the
    /// session does this for [`ZkError::ReplyTooLarge`](crate::ZkError::ReplyTooLarge)).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use zk_proto::frame::{write_frame, FrameDecoder};
    ///
    /// let mut wire = BytesMut::new();
    /// write_frame(&mut wire, |b| b.extend_from_slice(&[0u8; 100])); // too big
    /// write_frame(&mut wire, |b| b.extend_from_slice(b"next"));
    ///
    /// let mut frames = FrameDecoder::new(16);
    /// frames.push(&wire[..10]); // only the start of the big one so far
    /// assert!(frames.next_frame().is_err());
    /// assert_eq!(frames.peek_len(), Some(100));
    /// assert_eq!(frames.skip_frame(), Some(100));
    /// assert_eq!(frames.skipping(), 94); // dropped as it arrives, never buffered
    /// frames.push(&wire[10..]);
    /// assert_eq!(frames.next_frame().unwrap().as_deref(), Some(&b"next"[..]));
    /// ```
    pub fn skip_frame(&mut self) -> Option<usize> {
        let len = usize::try_from(self.peek_len()?).ok()?;
        self.buf.advance(4);
        let here = len.min(self.buf.len());
        self.buf.advance(here);
        self.skip = len - here;
        Some(len)
    }
}

/// Appends one frame: reserves the prefix, lets `body` write, then patches the length.
pub fn write_frame(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default bound takes the largest getData reply a server with the
    /// default `jute.maxbuffer` (0xfffff) sends (reply header 16, data length 4,
    /// the data, Stat 68) and refuses a claim past the 1024 bytes of room.
    #[test]
    fn default_max_fits_a_default_servers_largest_reply() {
        const JUTE_MAXBUFFER: usize = 0xfffff;
        let largest = 16 + 4 + JUTE_MAXBUFFER + 68;
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        dec.push(&(largest as i32).to_be_bytes());
        dec.push(&vec![0u8; largest]);
        assert_eq!(dec.next_frame().unwrap().map(|f| f.len()), Some(largest));

        let past_room = JUTE_MAXBUFFER + 1024 + 1;
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        dec.push(&(past_room as i32).to_be_bytes());
        assert!(matches!(
            dec.next_frame(),
            Err(DecodeError::FrameLength { .. })
        ));
    }
}
