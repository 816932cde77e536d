//! What the tests against a hand-scripted server share: a start instant, the host
//! list, frames, and the server's answer to the handshake.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use zk_proto::frame::write_frame;
use zk_proto::jute::Encode;
use zk_proto::records::ConnectResponse;
use zk_proto::{ConnId, Event, HostAddr, Session};

#[allow(clippy::disallowed_methods)] // a test needs some instant to start from
pub fn t0() -> Instant {
    Instant::now()
}

/// `n` hosts, `h0:2181` to `h{n-1}:2181`.
pub fn hosts(n: usize) -> Vec<HostAddr> {
    (0..n)
        .map(|i| HostAddr {
            host: format!("h{i}"),
            port: 2181,
        })
        .collect()
}

/// One frame: what `f` writes, behind its length prefix.
pub fn frame(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_frame(&mut b, f);
    b.to_vec()
}

/// The scripted server's ConnectResponse: session 42 with password `[1; 16]`,
/// read-write, the session timeout negotiated to `timeout_ms`.
pub fn connect_response(timeout_ms: i32) -> Vec<u8> {
    frame(|b| {
        ConnectResponse {
            protocol_version: 0,
            timeout: timeout_ms,
            session_id: 42,
            passwd: Bytes::from_static(&[1; 16]),
            read_only: Some(false),
        }
        .encode(b)
    })
}

/// A session the test drives by hand, playing both the adapter and the server;
/// each test file adds the steps it scripts.
pub struct Peer {
    pub s: Session,
    pub conn: ConnId,
    pub now: Instant,
    pub events: Vec<Event>,
}

impl Peer {
    /// Every event the session has emitted so far.
    pub fn events(&mut self) -> &[Event] {
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
        &self.events
    }

    /// Whether any event so far is one `is` picks.
    pub fn any_event(&mut self, is: impl Fn(&Event) -> bool) -> bool {
        self.events().iter().any(is)
    }
}
