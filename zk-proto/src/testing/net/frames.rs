//! What a client wrote, reassembled into frames: the handshake, requests (header
//! and raw body), four-letter words, and bytes that do not frame.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;

use crate::frame::FrameDecoder;
use crate::jute::{Decode, Reader};
use crate::records::ConnectRequest;
use crate::session::ConnId;
use crate::types::OpCode;

use super::SimNet;

/// What a client wrote, frame by frame (see [`SimNet::client_frames`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// The handshake.
    Connect(ConnectRequest),
    /// A request: header fields and the raw body.
    Request {
        /// The xid.
        xid: i32,
        /// The opcode.
        op: OpCode,
        /// The body after the header.
        body: Bytes,
    },
    /// A four-letter word on a fresh connection.
    FourLetter(String),
    /// Bytes that do not frame (a truncated tail).
    Garbage(Bytes),
}

impl SimNet {
    /// Everything the client wrote, reassembled into frames per connection, in
    /// send order (needs [`SimNet::record_wire`]).
    pub fn client_frames(&self, ci: usize) -> Vec<(Instant, ConnId, ClientFrame)> {
        let mut decoders: BTreeMap<ConnId, (FrameDecoder, bool)> = BTreeMap::new();
        let mut out = Vec::new();
        for (t, conn, data) in &self.clients[ci].sent {
            let (dec, started) = decoders
                .entry(*conn)
                .or_insert_with(|| (FrameDecoder::new(usize::MAX >> 1), false));
            if !*started && data.len() == 4 && data.iter().all(u8::is_ascii_lowercase) {
                out.push((
                    *t,
                    *conn,
                    ClientFrame::FourLetter(String::from_utf8_lossy(data).into_owned()),
                ));
                continue;
            }
            dec.push(data);
            while let Ok(Some(f)) = dec.next_frame() {
                let frame = if !*started {
                    *started = true;
                    match ConnectRequest::decode(&mut Reader::new(f.clone())) {
                        Ok(c) => ClientFrame::Connect(c),
                        Err(_) => ClientFrame::Garbage(f),
                    }
                } else if f.len() >= 8 {
                    ClientFrame::Request {
                        xid: i32::from_be_bytes([f[0], f[1], f[2], f[3]]),
                        op: OpCode::from_i32(i32::from_be_bytes([f[4], f[5], f[6], f[7]])),
                        body: f.slice(8..),
                    }
                } else {
                    ClientFrame::Garbage(f)
                };
                out.push((*t, *conn, frame));
            }
        }
        out
    }
}
