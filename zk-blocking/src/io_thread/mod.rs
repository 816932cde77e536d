//! One I/O thread for every blocking client of the process.
//!
//! The thread runs each client's driver (timers, connects, closes) and reads and
//! writes every plain TCP connection through one epoll set (`mio`), so an idle
//! client costs no thread of its own. Callers write their requests themselves
//! when the socket is free (the core's lent-socket path) and park until the reply
//! is read here: one wake-up per reply, none per request. Nothing here waits on a
//! socket: reads and writes are non-blocking, a write the socket does not take is
//! finished when it becomes writable, so a peer that stops reading stalls only its
//! own connection and the timers keep running (the session drops it at its read
//! timeout).
//!
//! A caller blocked waiting for its reply reads the socket itself (it takes the
//! socket out of the epoll set, waits on it with `poll(2)`, feeds what it reads
//! to the core and puts it back: `Socket::lead`), so a reply costs one wake-up by
//! the kernel of the thread that waits for it, not a wake-up of this thread and
//! then a hand-off to the caller. This thread reads whatever no caller waits for
//! (watch events, pings, the end of the stream).
//!
//! Connecting (which resolves names and may block) runs on a short-lived thread per
//! attempt. Transports that are not plain TCP (TLS, a connector's own) keep a
//! reader and a writer thread of their own, as before.
//!
//! This file holds the loop (the turn, each client's driver, connects, reads and
//! writes); its parts: `handle.rs` (how other threads reach the I/O thread: its
//! inbox and wake-up), `sleep.rs` (sleeps on its timers), `socket.rs` (a plain
//! TCP socket, and the reads callers make of it themselves), `threaded.rs`
//! (transports on threads of their own) and `slab.rs`. The parts use one another
//! one way only (`socket` → `handle` → `sleep`), and of this file only `lock`.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use zk_client::{CountGuard, DriverPoll, HostAddr, Io, Shared};
use zk_proto::ConnId;

use crate::Connector;

mod handle;
mod slab;
mod sleep;
mod socket;
mod threaded;

use handle::{mark_io_thread, Handle, Work, WorkWaker, WAKE};
use slab::Slab;
use sleep::{Sleep, SleepFuture};
use socket::{ReadEnd, Socket};
use threaded::{run_threaded, Handles};

/// A poisoned lock's data is used as it is: every lock here guards state a
/// panic leaves consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Completes after `d`, on the I/O thread's timers (no thread of its own): the
/// blocking runtime's sleep, for retries and `connect`'s deadline. A sleep
/// dropped before its time keeps a timer entry, which wakes nothing: the thread
/// lets cancelled entries go before it picks its next wake-up.
#[allow(clippy::disallowed_methods)]
pub(crate) fn sleep(d: Duration) -> zk_client::runtime::BoxFuture<()> {
    let state = Arc::new(Sleep::default());
    let queued = match (handle(), Instant::now().checked_add(d)) {
        (Ok(h), Some(at)) => {
            let st = state.clone();
            h.push(|i| i.sleeps.push((at, st)));
            true
        }
        // No I/O thread, or a sleep past any representable instant: never done.
        _ => false,
    };
    Box::pin(SleepFuture { state, queued })
}

/// The I/O thread's handle; the first call starts the thread.
fn handle() -> std::io::Result<Arc<Handle>> {
    static HANDLE: OnceLock<Arc<Handle>> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let _one = lock(&START);
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let poll = mio::Poll::new()?;
    let waker = mio::Waker::new(poll.registry(), WAKE)?;
    let h = Arc::new(Handle {
        inbox: Mutex::default(),
        waker,
        registry: poll.registry().try_clone()?,
        notified: AtomicBool::new(false),
    });
    let h2 = h.clone();
    std::thread::Builder::new()
        .name("zk-io".into())
        .spawn(move || IoThread::new(h2, poll).run())?;
    let _ = HANDLE.set(h.clone());
    Ok(h)
}

/// Hands a new client to the I/O thread (started on first use).
pub(crate) fn start(shared: Arc<Shared>, connector: Arc<dyn Connector>) -> std::io::Result<()> {
    let h = handle()?;
    h.push(|i| i.clients.push((shared, connector)));
    Ok(())
}

/// A client the I/O thread drives.
struct ClientEntry {
    shared: Arc<Shared>,
    connector: Arc<dyn Connector>,
    waker: Waker,
    /// The real-time instant this client's timer is set for (in `timers`).
    timer: Option<Instant>,
    /// Connections on this thread, by id.
    conns: HashMap<ConnId, usize>,
    /// Transports with threads of their own, to shut down when told.
    threaded: Handles,
    _running: CountGuard,
}

/// A plain TCP connection in the epoll set.
struct ConnEntry {
    client: usize,
    conn: ConnId,
    sock: Arc<Socket>,
    /// Bytes taken from the core and not yet all written, and how far.
    out: Option<(Bytes, usize)>,
    waker: Waker,
    _open: CountGuard,
}

/// The I/O thread's own state: its clients, connections, timers and sleeps.
struct IoThread {
    handle: Arc<Handle>,
    poll: mio::Poll,
    clients: Slab<ClientEntry>,
    conns: Slab<ConnEntry>,
    timers: BTreeSet<(Instant, usize)>,
    /// Sleeps ([`sleep`]) by due time, then arrival.
    sleeps: std::collections::BTreeMap<(Instant, u64), Arc<Sleep>>,
    next_sleep: u64,
    /// At this many sleeps the cancelled ones are swept out (not only those
    /// first in line), so dropped sleeps behind a long one do not pile up.
    sweep_sleeps_at: usize,
    io: Vec<Io>,
    /// The one read buffer of every connection here (an idle one holds none).
    scratch: Vec<u8>,
}

impl IoThread {
    fn new(handle: Arc<Handle>, poll: mio::Poll) -> Self {
        IoThread {
            handle,
            poll,
            clients: Slab::new(),
            conns: Slab::new(),
            timers: BTreeSet::new(),
            sleeps: std::collections::BTreeMap::new(),
            next_sleep: 0,
            sweep_sleeps_at: 64,
            io: Vec::new(),
            scratch: vec![0; 64 * 1024],
        }
    }

    fn run(mut self) {
        mark_io_thread();
        let mut events = Events::with_capacity(256);
        loop {
            // A panic in one client's code must not stop every other client.
            let turn =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.turn(&mut events)));
            if turn.is_err() {
                tracing::error!("zk-io: a turn of the I/O thread panicked");
            }
        }
    }

    /// One turn: the inbox, the timers due, then a wait for socket events.
    #[allow(clippy::disallowed_methods)]
    fn turn(&mut self, events: &mut Events) {
        self.handle.notified.store(false, Ordering::SeqCst);
        let inbox = std::mem::take(&mut *lock(&self.handle.inbox));
        for (shared, connector) in inbox.clients {
            self.add_client(shared, connector);
        }
        for (client, conn, host, sock) in inbox.conns {
            self.add_conn(client, conn, host, sock);
        }
        for (at, st) in inbox.sleeps {
            self.next_sleep += 1;
            self.sleeps.insert((at, self.next_sleep), st);
        }
        if self.sleeps.len() >= self.sweep_sleeps_at {
            self.sleeps
                .retain(|_, st| !st.cancelled.load(Ordering::Acquire));
            self.sweep_sleeps_at = (self.sleeps.len() * 2).max(64);
        }
        for w in inbox.work {
            match w {
                Work::Client(k) => self.drive(k),
                Work::Write(k) => self.write(k),
                Work::Read(k) => self.read(k),
            }
        }
        let now = Instant::now();
        while let Some(&(at, k)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(c) = self.clients.get_mut(k) {
                c.timer = None;
            }
            self.drive(k);
        }
        while let Some(entry) = self.sleeps.first_entry() {
            // Cancelled sleeps go whenever they are first: they never set a wake-up.
            if entry.key().0 > now && !entry.get().cancelled.load(Ordering::Acquire) {
                break;
            }
            let st = entry.remove();
            if st.cancelled.load(Ordering::Acquire) {
                continue;
            }
            st.done.store(true, Ordering::Release);
            let w = lock(&st.waker).take();
            if let Some(w) = w {
                w.wake();
            }
        }
        // Work this turn queued (wake-ups from this thread) is taken next turn.
        let queued = {
            let i = lock(&self.handle.inbox);
            !i.work.is_empty()
                || !i.clients.is_empty()
                || !i.conns.is_empty()
                || !i.sleeps.is_empty()
        };
        let timeout = if queued {
            Some(Duration::ZERO)
        } else {
            let timer = self.timers.first().map(|&(at, _)| at);
            let sleep = self.sleeps.first_key_value().map(|(&(at, _), _)| at);
            let next = match (timer, sleep) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            next.map(|at| at.saturating_duration_since(Instant::now()))
        };
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!(error = %e, "zk-io: poll failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        for ev in events.iter() {
            let t = ev.token();
            if t == WAKE {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                self.read(t.0);
            }
            if ev.is_writable() || ev.is_write_closed() {
                self.write(t.0);
            }
        }
    }

    fn add_client(&mut self, shared: Arc<Shared>, connector: Arc<dyn Connector>) {
        let key = self.clients.next_key();
        let waker = Waker::from(Arc::new(WorkWaker {
            handle: self.handle.clone(),
            work: Work::Client(key),
        }));
        let running = shared.driver_guard();
        let k = self.clients.insert(ClientEntry {
            shared,
            connector,
            waker,
            timer: None,
            conns: HashMap::new(),
            threaded: Arc::default(),
            _running: running,
        });
        debug_assert_eq!(k, key);
        self.drive(k);
    }

    /// One round of a client's driver: transport work, then its timer.
    fn drive(&mut self, k: usize) {
        let Some(c) = self.clients.get_mut(k) else {
            return;
        };
        let shared = c.shared.clone();
        let poll = shared.poll_driver(&mut self.io, &c.waker);
        let io = std::mem::take(&mut self.io);
        for item in io {
            match item {
                Io::Connect {
                    conn,
                    host,
                    timeout,
                } => self.connect(k, conn, host, timeout),
                Io::Disconnect(conn) => self.disconnect(k, conn),
            }
        }
        let Some(c) = self.clients.get_mut(k) else {
            return;
        };
        if let Some(t) = c.timer.take() {
            self.timers.remove(&(t, k));
        }
        match poll {
            DriverPoll::Finished => {
                if let Some(c) = self.clients.remove(k) {
                    for (_, ck) in c.conns {
                        self.close(ck);
                    }
                    for (_, t) in lock(&c.threaded).drain() {
                        t.shutdown();
                    }
                }
            }
            DriverPoll::Run { deadline: None } => {}
            DriverPoll::Run { deadline: Some(d) } => {
                // A virtual clock wakes the driver itself.
                if !shared.clock().wake_at(d, &c.waker) {
                    let left = d.saturating_duration_since(shared.clock().now());
                    #[allow(clippy::disallowed_methods)]
                    let at = Instant::now() + left;
                    c.timer = Some(at);
                    self.timers.insert((at, k));
                }
            }
        }
    }

    fn connect(&mut self, k: usize, conn: ConnId, host: HostAddr, timeout: Duration) {
        let Some(c) = self.clients.get_mut(k) else {
            return;
        };
        let (shared, connector, threaded) =
            (c.shared.clone(), c.connector.clone(), c.threaded.clone());
        let handle = self.handle.clone();
        let spawned = std::thread::Builder::new()
            .name("zk-connect".into())
            .stack_size(256 * 1024)
            .spawn(move || match connector.connect(&host, timeout) {
                Err(e) => {
                    shared.report_connect_error(conn, format!("{host}: {e}"));
                    shared.connect_failed(conn);
                }
                Ok(t) => match t.as_tcp().map(TcpStream::try_clone) {
                    Some(tcp) => match tcp.and_then(|s| s.set_nonblocking(true).map(|()| s)) {
                        Ok(tcp) => handle.push(|i| i.conns.push((k, conn, host, tcp))),
                        Err(e) => {
                            shared.report_connect_error(conn, format!("{host}: {e}"));
                            shared.connect_failed(conn);
                        }
                    },
                    // Not plain TCP: this thread reads it, another writes it.
                    None => run_threaded(shared, threaded, conn, host, t),
                },
            });
        if spawned.is_err() {
            c.shared.connect_failed(conn);
        }
    }

    fn add_conn(&mut self, k: usize, conn: ConnId, host: HostAddr, sock: TcpStream) {
        let Some(c) = self.clients.get_mut(k) else {
            // The client finished while this connected.
            return;
        };
        let shared = c.shared.clone();
        let key = self.conns.next_key();
        let fd = sock.as_raw_fd();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), Token(key), Interest::READABLE)
        {
            shared.report_connect_error(conn, format!("{host}: {e}"));
            shared.connect_failed(conn);
            return;
        }
        c.conns.insert(conn, key);
        let waker = Waker::from(Arc::new(WorkWaker {
            handle: self.handle.clone(),
            work: Work::Write(key),
        }));
        let open = shared.transport_guard();
        let sock = Arc::new(Socket::new(key, conn, host, sock, self.handle.clone()));
        let k2 = self.conns.insert(ConnEntry {
            client: k,
            conn,
            sock: sock.clone(),
            out: None,
            waker,
            _open: open,
        });
        debug_assert_eq!(k2, key);
        shared.lend_socket(conn, sock.clone());
        shared.lend_blocking_reader(conn, sock);
        shared.connected(conn);
        self.write(key);
        // Bytes may have come before the registration saw them.
        self.read(key);
    }

    /// Connection `ck` and its client's core (`None` once either is gone).
    fn conn_of(&mut self, ck: usize) -> Option<(Arc<Shared>, &mut ConnEntry)> {
        let client = self.conns.get_mut(ck)?.client;
        let shared = self.clients.get_mut(client)?.shared.clone();
        Some((shared, self.conns.get_mut(ck)?))
    }

    fn read(&mut self, ck: usize) {
        let Some((shared, e)) = self.conn_of(ck) else {
            return;
        };
        let sock = e.sock.clone();
        if sock.read_in(&shared, &mut self.scratch, false) == ReadEnd::Ended {
            self.drop_conn(ck, true);
            return;
        }
        // A lead that could not put the socket back in the epoll set asked for
        // this read: try again, so watch events and pings are not left unread.
        sock.ensure_registered();
    }

    fn write(&mut self, ck: usize) {
        let Some((shared, e)) = self.conn_of(ck) else {
            return;
        };
        let waker = e.waker.clone();
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Some((bytes, off)) = &mut e.out {
                match (&e.sock.sock).write(&bytes[*off..]) {
                    Ok(n) => {
                        *off += n;
                        if *off < bytes.len() {
                            continue;
                        }
                        e.out = None;
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                        e.sock.set_want_write(true);
                        return;
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            match shared.poll_write(e.conn, &mut cx) {
                Poll::Ready(Some(b)) => e.out = Some((b, 0)),
                Poll::Ready(None) => break,
                Poll::Pending => {
                    e.sock.set_want_write(false);
                    return;
                }
            }
        }
        // A write failed, or the core is done with this transport.
        self.drop_conn(ck, true);
    }

    fn disconnect(&mut self, k: usize, conn: ConnId) {
        let Some(c) = self.clients.get_mut(k) else {
            return;
        };
        if let Some(ck) = c.conns.get(&conn).copied() {
            self.drop_conn(ck, true);
        } else if let Some(t) = lock(&c.threaded).remove(&conn) {
            t.shutdown();
        }
    }

    /// Closes a connection; `report` tells the core it ended.
    fn drop_conn(&mut self, ck: usize, report: bool) {
        let Some(e) = self.conns.remove(ck) else {
            return;
        };
        e.sock.close();
        // A caller waiting on the socket wakes up to the shutdown.
        let _ = e.sock.sock.shutdown(std::net::Shutdown::Both);
        if let Some(c) = self.clients.get_mut(e.client) {
            c.conns.remove(&e.conn);
            if report {
                let shared = c.shared.clone();
                shared.disconnected(e.conn);
            }
        }
    }

    fn close(&mut self, ck: usize) {
        self.drop_conn(ck, false);
    }
}
