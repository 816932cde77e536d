//! The 4-byte big-endian length prefix that delimits every message.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::DecodeError;

/// The server's default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

/// Splits a byte stream into frames, however it is chunked.
///
/// The claimed length is checked against the maximum before anything is
/// reserved, and the buffer only grows with bytes that really arrived.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
}

impl FrameDecoder {
    /// A decoder rejecting frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops buffered bytes (a new connection starts a new stream).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next complete frame's payload, without its prefix; `None` until one is complete.
    /// After an error the stream cannot be resynchronised; drop the connection.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
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
}

/// Appends one frame: reserves the prefix, lets `body` write, then patches the length.
pub fn write_frame(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}
