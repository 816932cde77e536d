//! Four-letter words (`srvr`, `ruok`, ...) and the server mode they report.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::PROBE_TIMEOUT;

/// Sends a four-letter word (`ruok`, `srvr`, `isro`, `mntr`, ...) and reads the answer to EOF.
/// `timeout` bounds the whole exchange.
pub fn four_letter_word(addr: SocketAddr, cmd: &str, timeout: Duration) -> io::Result<String> {
    if cmd.len() != 4 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a four-letter word has 4 bytes, not {cmd:?}"),
        ));
    }
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(cmd.as_bytes())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no EOF from {addr} after {cmd} within {timeout:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The `Mode:` value of a `srvr` answer (`leader`, `follower`, `standalone`, `read-only`, ...).
pub(crate) fn parse_mode(srvr: &str) -> Option<String> {
    srvr.lines()
        .find_map(|line| line.strip_prefix("Mode:"))
        .map(|mode| mode.trim().to_string())
}

/// The server's mode, or `None` if it does not answer or is not serving.
pub(crate) fn mode_at(addr: SocketAddr) -> Option<String> {
    four_letter_word(addr, "srvr", PROBE_TIMEOUT)
        .ok()
        .and_then(|answer| parse_mode(&answer))
}
