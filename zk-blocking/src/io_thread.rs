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

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use zk_client::blocking::BlockingRead;
use zk_client::{CountGuard, DriverPoll, HostAddr, Io, ReadBuf, Shared, TryWrite};
use zk_proto::ConnId;

use crate::read_bufs::with_buf;
use crate::{Connector, Transport};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The mio token of the thread's own wake-up.
const WAKE: Token = Token(usize::MAX);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// A client's driver was woken.
    Client(usize),
    /// A connection's writer was woken.
    Write(usize),
    /// A caller reading a connection saw it end: this thread reads it again and
    /// reports the end.
    Read(usize),
}

#[derive(Default)]
struct Inbox {
    clients: Vec<(Arc<Shared>, Arc<dyn Connector>)>,
    conns: Vec<(usize, ConnId, HostAddr, TcpStream)>,
    work: Vec<Work>,
    sleeps: Vec<(Instant, Arc<Sleep>)>,
}

/// A sleep on this thread's timers ([`sleep`]): done, dropped, and who to wake.
#[derive(Default)]
struct Sleep {
    done: AtomicBool,
    /// Its future was dropped: the entry is let go without a wake-up.
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// The future of [`sleep`]; dropping it cancels the sleep.
struct SleepFuture {
    state: Arc<Sleep>,
    queued: bool,
}

impl std::future::Future for SleepFuture {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.queued {
            return Poll::Pending;
        }
        *lock(&self.state.waker) = Some(cx.waker().clone());
        if self.state.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for SleepFuture {
    fn drop(&mut self) {
        self.state.cancelled.store(true, Ordering::Release);
    }
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

/// What other threads hand the I/O thread.
struct Handle {
    inbox: Mutex<Inbox>,
    waker: mio::Waker,
    /// The epoll set's registry, for callers that take a socket out of it while
    /// they read it themselves.
    registry: mio::Registry,
    /// The thread was told of new work and has not looked yet.
    notified: AtomicBool,
}

thread_local! {
    static ON_IO_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Handle {
    fn push(&self, f: impl FnOnce(&mut Inbox)) {
        f(&mut lock(&self.inbox));
        // The thread looks at its inbox before it waits again.
        if ON_IO_THREAD.with(|t| t.get()) {
            return;
        }
        if !self.notified.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }
}

struct WorkWaker {
    handle: Arc<Handle>,
    work: Work,
}

impl Wake for WorkWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let w = self.work;
        self.handle.push(|i| i.work.push(w));
    }
}

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

/// A plain TCP connection's socket, shared by this thread and the callers that
/// read it while they wait, and lent to the core for the callers' own writes.
struct Socket {
    key: usize,
    conn: ConnId,
    host: HostAddr,
    sock: TcpStream,
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
    /// This thread dropped the connection.
    closed: bool,
    /// A caller read the end of the stream (or a read error): only this thread
    /// reads from now on, to see the end and report it (a caller leading again
    /// would find the end at once, over and over).
    ended: bool,
}

/// How a read of a socket ended.
#[derive(PartialEq, Eq)]
enum ReadEnd {
    /// The socket is empty for now.
    Drained,
    /// A caller reads it: this thread leaves it alone.
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
    fn fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }

    /// Reads what the socket holds into the core (`by_caller`: the leading
    /// caller; otherwise this thread, which skips a socket a caller reads).
    fn read_in(&self, shared: &Shared, buf: &mut [u8], by_caller: bool) -> ReadEnd {
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

    /// Turns writable interest on or off (this thread, after a write).
    fn set_want_write(&self, on: bool) {
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
            // A caller reads it: back in the set for writability (this thread then
            // sees read edges too, and leaves them to the caller).
            r.registered = registry
                .register(&mut SourceFd(&fd), Token(self.key), interest(on))
                .is_ok();
        }
    }

    /// Back in the epoll set if nobody leads it and it is not there (a failed
    /// re-register at the end of a lead).
    fn ensure_registered(&self) {
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

    /// Out of the epoll set for good (this thread drops the connection).
    fn close(&self) {
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
            // A full socket's writes are this thread's: it needs the read edges
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
        // A read this thread began before is over once `reading` is had, and
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
        // last read here raise an edge for this thread.
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
            // This thread sees the end, or registers the socket again and reads on.
            let key = s.key;
            drop(r);
            s.handle.push(|i| i.work.push(Work::Read(key)));
        }
    }
}

type Handles = Arc<Mutex<HashMap<ConnId, Box<dyn Transport>>>>;

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

struct ConnEntry {
    client: usize,
    conn: ConnId,
    sock: Arc<Socket>,
    /// Bytes taken from the core and not yet all written, and how far.
    out: Option<(Bytes, usize)>,
    waker: Waker,
    _open: CountGuard,
}

/// A slab: entries by index, with free indexes reused.
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
    fn insert(&mut self, v: T) -> usize {
        match self.free.pop() {
            Some(k) => {
                self.items[k] = Some(v);
                k
            }
            None => {
                self.items.push(Some(v));
                self.items.len() - 1
            }
        }
    }
    fn next_key(&self) -> usize {
        self.free.last().copied().unwrap_or(self.items.len())
    }
    fn get_mut(&mut self, k: usize) -> Option<&mut T> {
        self.items.get_mut(k).and_then(Option::as_mut)
    }
    fn remove(&mut self, k: usize) -> Option<T> {
        let v = self.items.get_mut(k).and_then(Option::take);
        if v.is_some() {
            self.free.push(k);
        }
        v
    }
}

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
        ON_IO_THREAD.with(|t| t.set(true));
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
        let sock = Arc::new(Socket {
            key,
            conn,
            host,
            sock,
            handle: self.handle.clone(),
            reg: Mutex::new(Reg {
                registered: true,
                ..Reg::default()
            }),
            reading: Mutex::new(()),
        });
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

    fn shared_of(&mut self, ck: usize) -> Option<Arc<Shared>> {
        let client = self.conns.get_mut(ck)?.client;
        Some(self.clients.get_mut(client)?.shared.clone())
    }

    fn read(&mut self, ck: usize) {
        let Some(shared) = self.shared_of(ck) else {
            return;
        };
        let Some(e) = self.conns.get_mut(ck) else {
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
        let Some(shared) = self.shared_of(ck) else {
            return;
        };
        let Some(e) = self.conns.get_mut(ck) else {
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

/// A transport that is not plain TCP, on threads of its own: this one reads, a
/// second writes (a write that blocks stalls only the writer thread).
fn run_threaded(
    shared: Arc<Shared>,
    handles: Handles,
    conn: ConnId,
    host: HostAddr,
    mut rd: Box<dyn Transport>,
) {
    let opened = rd
        .try_clone_box()
        .and_then(|wr| Ok((wr, rd.try_clone_box()?)));
    let (wr, handle) = match opened {
        Ok(t) => t,
        Err(e) => {
            shared.report_connect_error(conn, format!("{host}: {e}"));
            shared.connect_failed(conn);
            return;
        }
    };
    let _open = shared.transport_guard();
    lock(&handles).insert(conn, handle);
    shared.connected(conn);
    let sh = shared.clone();
    let writer = std::thread::Builder::new()
        .name("zk-writer".into())
        .stack_size(64 * 1024)
        .spawn(move || write_loop(sh, conn, wr));
    if writer.is_ok() {
        let mut buf = ReadBuf::default();
        loop {
            match rd.read(buf.space()) {
                Ok(0) => break,
                Ok(n) => {
                    shared.input(conn, &buf.space()[..n]);
                    buf.after_read(n);
                }
                Err(e) => {
                    // Kept only while the session handshake is not done (a TLS alert
                    // after the handshake, a reset).
                    shared.report_connect_error(conn, format!("{host}: {e}"));
                    break;
                }
            }
        }
    }
    if let Some(t) = lock(&handles).remove(&conn) {
        t.shutdown();
    }
    shared.disconnected(conn);
    if let Ok(w) = writer {
        let _ = w.join();
    }
}

fn write_loop(shared: Arc<Shared>, conn: ConnId, mut wr: Box<dyn Transport>) {
    let waker = zk_client::blocking::thread_waker(std::thread::current());
    let mut cx = Context::from_waker(&waker);
    loop {
        match shared.poll_write(conn, &mut cx) {
            Poll::Ready(Some(bytes)) => {
                if wr.write_all(&bytes).and_then(|()| wr.flush()).is_err() {
                    break;
                }
            }
            Poll::Ready(None) => break,
            Poll::Pending => std::thread::park(),
        }
    }
    // The reader sees the end and reports it.
    wr.shutdown();
}
