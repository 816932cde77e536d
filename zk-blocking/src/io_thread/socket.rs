//! A plain TCP connection's socket on the I/O thread, and the reads callers
//! make of it themselves (leader/follower): a caller waiting for its reply takes
//! the socket out of the epoll set, waits on it with `poll(2)`, feeds what it
//! reads to the core and puts it back (`Socket::lead`), so a reply costs one
//! wake-up by the kernel of the thread that waits for it. One caller at a time
//! leads; the others park. The I/O thread reads whatever no caller waits for.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use zk_client::blocking::BlockingRead;
use zk_client::{HostAddr, Shared, TryWrite};
use zk_proto::ConnId;

use super::handle::{Handle, Work};
use super::lock;
use crate::read_bufs::with_buf;

/// A plain TCP connection's socket, shared by the I/O thread and the callers that
/// read it while they wait, and lent to the core for the callers' own writes.
pub(super) struct Socket {
    key: usize,
    conn: ConnId,
    host: HostAddr,
    pub(super) sock: TcpStream,
    handle: Arc<Handle>,
    reg: Mutex<Reg>,
    /// Held while reading and feeding what was read in: the session sees the
    /// stream in order, whoever reads it.
    reading: Mutex<()>,
}

/// A socket's place in the epoll set, and who reads it.
#[derive(Default)]
struct Reg {
    /// In the epoll set.
    registered: bool,
    /// Writable interest is on (a write hit a full socket).
    want_write: bool,
    /// A caller reads the socket now (it is out of the epoll set unless
    /// `want_write` needed it back in).
    leader: bool,
    /// The I/O thread dropped the connection.
    closed: bool,
    /// A caller read the end of the stream (or a read error): only the I/O thread
    /// reads from now on, to see the end and report it (a caller leading again
    /// would find the end at once, over and over).
    ended: bool,
}

/// How a read of a socket ended.
#[derive(PartialEq, Eq)]
pub(super) enum ReadEnd {
    /// The socket is empty for now.
    Drained,
    /// A caller reads it: the I/O thread leaves it alone.
    Led,
    /// The end of the stream, or a read error (reported).
    Ended,
}

impl TryWrite for Socket {
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
        (&self.sock).write(buf)
    }
}

fn interest(want_write: bool) -> Interest {
    if want_write {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    }
}

impl Socket {
    /// The socket of connection `conn` (mio token `key`), already in the epoll set.
    pub(super) fn new(
        key: usize,
        conn: ConnId,
        host: HostAddr,
        sock: TcpStream,
        handle: Arc<Handle>,
    ) -> Socket {
        Socket {
            key,
            conn,
            host,
            sock,
            handle,
            reg: Mutex::new(Reg {
                registered: true,
                ..Reg::default()
            }),
            reading: Mutex::new(()),
        }
    }

    fn fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }

    /// Reads what the socket holds into the core (`by_caller`: the leading
    /// caller; otherwise the I/O thread, which skips a socket a caller reads).
    pub(super) fn read_in(&self, shared: &Shared, buf: &mut [u8], by_caller: bool) -> ReadEnd {
        let _reading = lock(&self.reading);
        // Under `reading`: a caller that leads from now on waits for this read.
        if !by_caller && lock(&self.reg).leader {
            return ReadEnd::Led;
        }
        loop {
            match (&self.sock).read(buf) {
                Ok(0) => return ReadEnd::Ended,
                Ok(n) => {
                    shared.input(self.conn, &buf[..n]);
                    // A short read emptied the socket: the next bytes raise a new edge.
                    if n < buf.len() {
                        return ReadEnd::Drained;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    return ReadEnd::Drained
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // Kept only while the session handshake is not done (a reset).
                    shared.report_connect_error(self.conn, format!("{}: {err}", self.host));
                    return ReadEnd::Ended;
                }
            }
        }
    }

    /// Turns writable interest on or off (the I/O thread, after a write).
    pub(super) fn set_want_write(&self, on: bool) {
        let mut r = lock(&self.reg);
        if r.want_write == on || r.closed {
            return;
        }
        r.want_write = on;
        let registry = &self.handle.registry;
        let fd = self.fd();
        if r.registered {
            let _ = registry.reregister(&mut SourceFd(&fd), Token(self.key), interest(on));
        } else if on {
            // A caller reads it: back in the set for writability (the I/O thread then
            // sees read edges too, and leaves them to the caller).
            r.registered = registry
                .register(&mut SourceFd(&fd), Token(self.key), interest(on))
                .is_ok();
        }
    }

    /// Back in the epoll set if nobody leads it and it is not there (a failed
    /// re-register at the end of a lead).
    pub(super) fn ensure_registered(&self) {
        let mut r = lock(&self.reg);
        if r.registered || r.leader || r.closed {
            return;
        }
        let fd = self.fd();
        r.registered = self
            .handle
            .registry
            .register(&mut SourceFd(&fd), Token(self.key), interest(r.want_write))
            .is_ok();
    }

    /// Out of the epoll set for good (the I/O thread drops the connection).
    pub(super) fn close(&self) {
        let mut r = lock(&self.reg);
        r.closed = true;
        if r.registered {
            r.registered = false;
            let fd = self.fd();
            let _ = self.handle.registry.deregister(&mut SourceFd(&fd));
        }
    }
}

impl BlockingRead for Socket {
    fn lead(&self, shared: &Shared, timeout: Duration, done: &dyn Fn() -> bool) -> bool {
        let fd = self.fd();
        {
            let mut r = lock(&self.reg);
            // A full socket's writes are the I/O thread's: it needs the read edges
            // then, so the caller parks.
            if r.leader || r.closed || r.ended || r.want_write {
                return false;
            }
            if r.registered {
                if self.handle.registry.deregister(&mut SourceFd(&fd)).is_err() {
                    return false;
                }
                r.registered = false;
            }
            r.leader = true;
        }
        // However the lead ends (a panic in what the input wakes included), the
        // socket goes back in the epoll set.
        let mut lead = Lead {
            sock: self,
            ended: false,
        };
        // A read the I/O thread began before is over once `reading` is had, and
        // none starts now: the reply is either in already or still to come.
        drop(lock(&self.reading));
        if !done() {
            let ready = {
                use rustix::event::{poll, PollFd, PollFlags, Timespec};
                let mut fds = [PollFd::new(&self.sock, PollFlags::IN)];
                let t = Timespec {
                    tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
                    tv_nsec: timeout.subsec_nanos().into(),
                };
                matches!(poll(&mut fds, Some(&t)), Ok(n) if n > 0)
            };
            if ready {
                lead.ended = with_buf(|buf| self.read_in(shared, buf, true)) == ReadEnd::Ended;
            }
        }
        drop(lead);
        true
    }
}

/// A caller's lead of a socket: dropping it hands the socket back.
struct Lead<'a> {
    sock: &'a Socket,
    /// The caller read the end of the stream.
    ended: bool,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let s = self.sock;
        let mut r = lock(&s.reg);
        r.leader = false;
        r.ended |= self.ended || std::thread::panicking();
        if r.closed {
            return;
        }
        // Re-arming reports what is there already: bytes that came after the
        // last read here raise an edge for the I/O thread.
        let fd = s.fd();
        let registry = &s.handle.registry;
        let i = interest(r.want_write);
        let armed = if r.registered {
            registry.reregister(&mut SourceFd(&fd), Token(s.key), i)
        } else {
            registry.register(&mut SourceFd(&fd), Token(s.key), i)
        };
        r.registered = armed.is_ok();
        if r.ended || armed.is_err() {
            // The I/O thread sees the end, or registers the socket again and reads on.
            let key = s.key;
            drop(r);
            s.handle.push(|i| i.work.push(Work::Read(key)));
        }
    }
}
