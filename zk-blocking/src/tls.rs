//! TLS over std sockets (the `tls` feature): rustls's own `ClientConnection`,
//! shared by the reader and writer threads.
//!
//! The blocking driver reads on one thread and writes on another, each with its
//! own handle on the transport, and shuts it down from a third. One rustls
//! connection serves both directions, so it sits behind a mutex, and **no lock is
//! ever held across a blocking socket read**:
//!
//! * the reader reads ciphertext from its own clone of the socket with no lock
//!   held, then takes the rustls lock only to feed it, decrypt and take plaintext;
//! * the writer takes the rustls lock to encrypt, takes the records out, and
//!   writes them with the rustls lock released. A second lock (the write lock),
//!   taken before the rustls lock is released, keeps records on the wire in the
//!   order rustls made them (TLS numbers them);
//! * when reading makes rustls want to send (a TLS 1.3 key update answer, an
//!   alert) the reader sends it only if the write lock is free at once, and
//!   otherwise leaves it to the writer's next write, so a reader never waits for a
//!   writer stuck on a full socket;
//! * `shutdown` only shuts the socket down, which wakes a blocked read or write;
//!   it takes no lock.
//!
//! The handshake runs in [`Connector::connect`], on
//! the connecting thread, with socket timeouts set to what is left of the
//! per-attempt connect timeout, so a TLS client pointed at a server that never
//! answers gives up in time.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::ClientConnection;
pub use zk_tls::{TlsConfig, TlsError, TlsHosts, TlsOptions};

use crate::{Connector, HostAddr, Transport};

/// Dials each host over TCP, then runs the TLS handshake, all within the
/// per-attempt connect timeout; a failed handshake is an `io::Error` wrapping the
/// [`TlsError`] that names it. The table and constructors are `zk_tls`'s, the
/// handshake this crate's.
pub type TlsConnector = zk_tls::TlsConnector<dyn Connector>;

/// What makes `TlsConnector::into()` an `Arc<dyn Connector>`.
impl zk_tls::SharedConnector for dyn Connector {
    fn share(c: TlsConnector) -> Arc<dyn Connector> {
        Arc::new(c)
    }
}

impl Connector for TlsConnector {
    #[allow(clippy::disallowed_methods)]
    fn connect(&self, host: &HostAddr, timeout: Duration) -> io::Result<Box<dyn Transport>> {
        let Some(tls) = self.for_host(&host.host, host.port) else {
            return crate::TcpConnector.connect(host, timeout);
        };
        let deadline = Instant::now().checked_add(timeout);
        let mut conn = tls.connection(&host.host)?;
        let sock = crate::tcp_connect(host, timeout)?;
        handshake(&mut conn, &sock, deadline)?;
        Ok(Box::new(TlsTransport {
            shared: Arc::new(TlsShared {
                conn: Mutex::new(conn),
                write: Mutex::new(()),
            }),
            sock,
            buf: Vec::new(),
            pos: 0,
            len: 0,
            eof: false,
        }))
    }
}

/// What is left until `deadline`, or the handshake timeout.
#[allow(clippy::disallowed_methods)]
fn left(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(l) if !l.is_zero() => Ok(Some(l)),
            _ => Err(TlsError::HandshakeTimeout.into()),
        },
    }
}

fn handshake(
    conn: &mut ClientConnection,
    sock: &TcpStream,
    deadline: Option<Instant>,
) -> io::Result<()> {
    let mut s = sock;
    let fail = |e: io::Error| -> io::Error { TlsError::handshake_failed(e) };
    loop {
        while conn.wants_write() {
            sock.set_write_timeout(left(deadline)?)?;
            conn.write_tls(&mut s).map_err(fail)?;
        }
        if !conn.is_handshaking() {
            break;
        }
        sock.set_read_timeout(left(deadline)?)?;
        match conn.read_tls(&mut s) {
            Ok(0) => return Err(TlsError::ClosedDuringHandshake.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        }
        if let Err(e) = conn.process_new_packets() {
            // The alert rustls queued for the server, best effort.
            let _ = conn.write_tls(&mut s);
            return Err(TlsError::from_rustls(&e).into());
        }
    }
    sock.set_read_timeout(None)?;
    sock.set_write_timeout(None)?;
    Ok(())
}

struct TlsShared {
    conn: Mutex<ClientConnection>,
    /// Held while records go onto the socket: keeps them in rustls's order.
    write: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes every record rustls has ready.
fn take_records(c: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while c.wants_write() {
        // Writing into a Vec cannot fail.
        if c.write_tls(&mut out).is_err() {
            break;
        }
    }
    out
}

/// One handle on a TLS connection: the reader's, the writer's, or the driver's
/// (for `shutdown`). Only one handle may read.
pub struct TlsTransport {
    shared: Arc<TlsShared>,
    sock: TcpStream,
    /// Ciphertext read from the socket and not yet fed to rustls: `buf[pos..len]`.
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// The socket reached its end (fed to rustls).
    eof: bool,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport")
            .field("peer", &self.sock.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl TlsTransport {
    /// Sends the records rustls has ready, if nobody is writing right now
    /// (otherwise that writer sends them after its own).
    fn send_ready_if_free(&self, mut c: MutexGuard<'_, ClientConnection>) -> io::Result<()> {
        if !c.wants_write() {
            return Ok(());
        }
        let Ok(w) = self.shared.write.try_lock() else {
            return Ok(());
        };
        let out = take_records(&mut c);
        drop(c);
        let r = (&self.sock).write_all(&out);
        drop(w);
        r
    }
}

impl Read for TlsTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut refused = 0;
        loop {
            let mut c = lock(&self.shared.conn);
            match c.reader().read(buf) {
                // 0: the server sent close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: the socket ended without close_notify.
                Err(e) => return Err(e),
            }
            if self.pos < self.len {
                let mut rd = &self.buf[self.pos..self.len];
                let before = rd.len();
                match c.read_tls(&mut rd) {
                    Ok(_) => {
                        self.pos += before - rd.len();
                        refused = 0;
                    }
                    // Backpressure (its buffers are full): decrypt, then try again.
                    Err(e) => {
                        refused += 1;
                        if refused > 2 {
                            return Err(e);
                        }
                    }
                }
                if let Err(e) = c.process_new_packets() {
                    let _ = self.send_ready_if_free(c);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        TlsError::from_rustls(&e),
                    ));
                }
                self.send_ready_if_free(c)?;
                continue;
            }
            if self.eof {
                return Ok(0);
            }
            drop(c);
            if self.buf.is_empty() {
                self.buf = vec![0; 16 * 1024];
            }
            // The only blocking read, with no lock held.
            let n = loop {
                match (&self.sock).read(&mut self.buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => break r?,
                }
            };
            self.pos = 0;
            self.len = n;
            if n == 0 {
                self.eof = true;
                let mut c = lock(&self.shared.conn);
                let _ = c.read_tls(&mut io::empty());
                let _ = c.process_new_packets();
            }
        }
    }
}

impl Write for TlsTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut c = lock(&self.shared.conn);
        let n = c.writer().write(buf)?;
        let mut out = take_records(&mut c);
        loop {
            // Taken before the rustls lock is released: records go out in order.
            let w = lock(&self.shared.write);
            drop(c);
            let r = (&self.sock).write_all(&out);
            drop(w);
            r?;
            // Records the reader left for us meanwhile.
            c = lock(&self.shared.conn);
            if !c.wants_write() {
                return Ok(n);
            }
            out = take_records(&mut c);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every record is on the socket when `write` returns.
        Ok(())
    }
}

impl Transport for TlsTransport {
    fn try_clone_box(&self) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(TlsTransport {
            shared: self.shared.clone(),
            sock: self.sock.try_clone()?,
            buf: Vec::new(),
            pos: 0,
            len: 0,
            eof: false,
        }))
    }

    fn shutdown(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}
