//! ZooKeeper's framing by hand, for the suites that play a server of their own
//! over a plain socket (a server older than 3.6, a hostile one, one that stops
//! reading): read a length-prefixed frame, make one, and the handshake's answer.

use std::io::Read;
use std::net::TcpStream;

/// Reads one length-prefixed frame (its length clamped to 1 MiB).
pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 20) as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// `payload` behind its length.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// The answer to a connect request: session `session` with a negotiated
/// timeout of `timeout_ms`, a 16-byte password, read-write.
pub fn connect_response(session: i64, timeout_ms: i32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0i32.to_be_bytes()); // protocol version
    p.extend_from_slice(&timeout_ms.to_be_bytes()); // negotiated timeout
    p.extend_from_slice(&session.to_be_bytes());
    p.extend_from_slice(&16i32.to_be_bytes());
    p.extend_from_slice(&[7u8; 16]); // password
    p.push(0); // not read-only
    frame(&p)
}
