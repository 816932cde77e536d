//! Reliability regressions, written once and run against every adapter (tokio, smol,
//! blocking). Each test documents one defect; until it is fixed the test fails, for
//! that reason, and loudly: every wait is bounded (a watchdog around each test, a bound
//! around each call that may hang), nothing is skipped.
//!
//! | test | defect it covers |
//! | --- | --- |
//! | `idle_soak` | an idle session sends no pings: after the handshake the driver sleeps until the old connect deadline, so an idle client drops (read timeout) or the server sees too few pings |
//! | `stalled_reader` | a socket write that blocks (the server stopped reading) stops the driver's clock: no read timeout, calls never complete, `close()` hangs |
//! | `listener_calls_client` | state listeners run on the I/O reader/driver: a listener that calls the client blocks the very thread that must read the reply (the blocking adapter livelocks) |
//! | `ensure_path_under_missing_chroot` | `ensure_path` stops at the chroot's root and never creates the chroot's own missing nodes (kazoo does) |
//! | `ensure_path_existing_without_create_perm` | `ensure_path` creates before it checks: an existing path under a parent without CREATE permission fails with NoAuth (kazoo checks `exists` first) |
//! | `duration_max_is_forever` | `Duration::MAX` as connect deadline, request timeout, connect timeout or call timeout overflows `Instant + Duration` (panic or hang) instead of meaning "no limit" |
//! | `chroot_config_node` | under a chroot, `get_data("/zookeeper/config")` bypasses the chroot (only `get_config` should) |
//! | `big_reply` | the default max frame (0xfffff) is smaller than the reply to the largest node the server accepts; and an oversized reply drops the whole connection (ConnectionLoss for every call in flight) instead of failing that one call with a typed error |
//! | `state_stream_ends_after_close` | a state stream never ends after `close()`: it only times out |
//! | `remove_watches_oneshot_reports_removed` | a one-shot watch removed by `remove_watches` resolves to `SessionClosed` though the session is alive |
//! | `dropped_watch_future_removes_server_watch` | dropping a `get_data_watch` future while its request is in flight leaks the watch on the server (the local registration is never removed) |
//!
//! Tests run in parallel. Each works under its own unique path, or on its own fake server
//! or proxy; the ZooKeeper servers are shared per binary: [`shared_server`] (tickTime 2 s)
//! and [`fast_server`] (tickTime 500 ms, for short session timeouts). `listener_calls_client`
//! runs alone (it blocks executor threads on purpose, which would disturb timing in the
//! others).

use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::task::Poll;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::{
    Acl, AddWatchMode, ClientBuilder, CreateMode, Error, ErrorCode, EventType, Perms, SessionState,
    Stat, WatcherType,
};
use zk_tests::facade::{AsyncZk, BlockingZk, Runner, SmolZk, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::{four_letter_word, shared_server, ServerOptions, ZkServer};
use zk_tests::wire::{connect_response, read_frame};

// =============================================================================================
// Harness: bounds, watchdogs, unique paths, servers

/// Watchdog of one whole test (generous: it may include starting a JVM on a busy machine).
const TEST_LIMIT: Duration = Duration::from_secs(150);
/// Bound of one call that is expected to be quick.
const CALL_LIMIT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Every panic in the process, in order, with its thread's name (the default hook still
/// prints them): lets a test name a panic that happened on a driver thread it does not own.
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn install_panic_log() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = thread::current().name().unwrap_or("<unnamed>").to_string();
            lock(&PANICS).push((name, info.to_string()));
            previous(info);
        }));
    });
}

fn panic_mark() -> usize {
    lock(&PANICS).len()
}

/// Panics since `mark` on threads the tests do not run themselves (drivers, readers,
/// runtime workers): test bodies and [`bounded`] threads report their own panics.
fn driver_panics_since(mark: usize) -> String {
    let found: Vec<String> = lock(&PANICS)[mark..]
        .iter()
        .filter(|(name, _)| !name.contains("::") && !name.starts_with("bounded: "))
        .map(|(name, msg)| format!("thread '{name}' {}", msg.replace('\n', " ")))
        .collect();
    if found.is_empty() {
        String::new()
    } else {
        format!(" [meanwhile: {}]", found.join("; "))
    }
}

/// Runs `f` on its own thread; `Err` with a message if it panics or is still running
/// after `limit` (the thread is then left behind).
fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("bounded: {what}"))
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn a bounded thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(p)) => Err(format!("{what}: panicked: {}", panic_text(&*p))),
        Err(_) => Err(format!("{what}: still running after {limit:?} (hung)")),
    }
}

/// Tests take this shared; a test that blocks executor threads on purpose takes it alone.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

/// Runs one test body under the watchdog: a panic in the body fails the test with the
/// body's own message; a body still running after [`TEST_LIMIT`] fails it as hung.
fn run(name: &str, exclusive: bool, body: fn()) {
    install_panic_log();
    let _guard: Box<dyn std::any::Any> = if exclusive {
        Box::new(EXCLUSIVE.write().unwrap_or_else(|p| p.into_inner()))
    } else {
        Box::new(EXCLUSIVE.read().unwrap_or_else(|p| p.into_inner()))
    };
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(catch_unwind(body));
        })
        .expect("spawn the test body");
    match rx.recv_timeout(TEST_LIMIT) {
        Ok(Ok(())) => {}
        Ok(Err(p)) => resume_unwind(p),
        Err(_) => panic!("{name}: WATCHDOG: the test did not finish within {TEST_LIMIT:?}"),
    }
}

/// Panics with every collected failure, one per line.
fn check(test: &str, failures: Vec<String>) {
    if !failures.is_empty() {
        panic!(
            "{test}: {} failure(s):\n  - {}",
            failures.len(),
            failures.join("\n  - ")
        );
    }
}

/// A path no other test (adapter, process) uses: `/<tag>-<adapter>-<pid>-<n>`.
fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("", tag, Z::NAME)
}

/// A server with tickTime 500 ms: session timeouts from 1 s to 10 s.
fn fast_server() -> &'static ZkServer {
    static FAST: OnceLock<ZkServer> = OnceLock::new();
    FAST.get_or_init(|| {
        ZkServer::start_with(ServerOptions {
            tick_time_ms: 500,
            ..ServerOptions::default()
        })
    })
}

fn connect_to<Z: Zk>(b: &ClientBuilder) -> Z {
    Z::connect(b).unwrap_or_else(|e| panic!("{}: connect: {e:?}", Z::NAME))
}

fn connect_shared<Z: Zk>() -> Z {
    connect_to(&ClientBuilder::new(&shared_server().connect_string()))
}

/// Every state a client's [`zk_client::StateStream`] delivers, with the time it was seen,
/// recorded by a thread of its own (the stream starts with the current state).
struct StateLog {
    seen: Arc<Mutex<Vec<(Instant, SessionState)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StateLog {
    fn start<Z: Zk>(zk: &Z) -> StateLog {
        let mut stream = zk.state_stream();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let t = Instant::now();
                match stream.recv_timeout(Some(Duration::from_millis(50))) {
                    Some(s) => lock(&seen2).push((Instant::now(), s)),
                    // An ended stream returns at once: do not spin.
                    None if t.elapsed() < Duration::from_millis(40) => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    None => {}
                }
            }
        });
        // The first state is the current one: wait until it is in.
        let t = Instant::now();
        while lock(&seen).is_empty() && t.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(5));
        }
        StateLog {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn all(&self) -> Vec<(Instant, SessionState)> {
        lock(&self.seen).clone()
    }

    /// The states after the first (the one current at the start).
    fn changes(&self) -> Vec<SessionState> {
        self.all().into_iter().skip(1).map(|(_, s)| s).collect()
    }
}

impl Drop for StateLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn four_letter(addr: SocketAddr, cmd: &str) -> String {
    four_letter_word(addr, cmd, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("four-letter word {cmd} to {addr}: {e}"))
}

/// The `recved=N` of the `cons` line of session `sid`, or `None` if no connection of that
/// session is listed.
fn cons_recved(cons: &str, sid: i64) -> Option<u64> {
    let tag = format!("sid=0x{sid:x}");
    let line = cons
        .lines()
        .find(|l| l.contains(&format!("{tag},")) || l.contains(&format!("{tag})")))?;
    let rest = &line[line.find("recved=")? + "recved=".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The paths the server holds watches on (`wchp`: each path on a line, its sessions on
/// the tab-indented lines below it).
fn watched_paths(addr: SocketAddr) -> Vec<String> {
    four_letter(addr, "wchp")
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Polls several futures together (in order, so their requests are submitted in order).
async fn join_all<F: Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match Pin::new(&mut *f).poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("polled to completion"))
        .collect()
}

/// The few things the tests do differently per adapter.
trait Adapter: Zk {
    /// A blocking `exists("/")` on a clone of this client, for a state listener to call;
    /// bounded by `limit` (Err(Timeout) then).
    fn listener_exists(
        &self,
        limit: Duration,
    ) -> Box<dyn Fn() -> zk_client::Result<Option<Stat>> + Send + Sync>;

    /// Starts `get_data_watch(path)` so its request is submitted, then drops it before
    /// its reply is taken. Async adapters: one poll in the adapter's runtime, then
    /// `while_pending` runs with the future still alive, then the drop; returns true.
    /// Blocking: a call with a 1 ns timeout (gives up after one poll); returns false
    /// (`while_pending` is not run).
    fn drop_pending_get_data_watch(&self, path: &str, while_pending: &dyn Fn()) -> bool;

    /// `exists("/")` with a per-call timeout of `Duration::MAX`: the blocking adapter's
    /// `with_timeout(Some(Duration::MAX))`; for the async adapters the same `block_on` it
    /// is built on (`zk_client::blocking::block_on(.., Some(Duration::MAX))`).
    fn exists_with_max_timeout(&self) -> zk_client::Result<Option<Stat>>;

    /// Closes an async client handle (from `as_async`) and waits.
    fn block_on_close(c: &zk_client::Client) {
        zk_client::blocking::block_on(c.close(), Some(Duration::from_secs(10)))
            .expect("close in time")
            .expect("close");
    }
}

impl<R: Runner> Adapter for AsyncZk<R> {
    fn listener_exists(
        &self,
        limit: Duration,
    ) -> Box<dyn Fn() -> zk_client::Result<Option<Stat>> + Send + Sync> {
        // The facade's own blocking call (R::block_on) cannot be bounded and, inside
        // the runtime's threads, either panics (tokio) or blocks the only executor
        // thread for good (smol): block on the client's future with a bound instead.
        let client = self.client.clone();
        Box::new(move || {
            zk_client::blocking::block_on(client.exists("/"), Some(limit))
                .unwrap_or(Err(Error::Timeout))
        })
    }

    fn drop_pending_get_data_watch(&self, path: &str, while_pending: &dyn Fn()) -> bool {
        let mut fut = Box::pin(self.client.get_data_watch(path));
        let first = R::block_on(::smol::future::poll_once(&mut fut));
        assert!(
            first.is_none(),
            "{}: get_data_watch finished on its first poll: {:?}",
            R::NAME,
            first.map(|r| r.map(|(d, s, _)| (d, s)))
        );
        while_pending();
        drop(fut);
        true
    }

    fn exists_with_max_timeout(&self) -> zk_client::Result<Option<Stat>> {
        zk_client::blocking::block_on(self.client.exists("/"), Some(Duration::MAX))
            .unwrap_or(Err(Error::Timeout))
    }
}

impl Adapter for BlockingZk {
    fn listener_exists(
        &self,
        limit: Duration,
    ) -> Box<dyn Fn() -> zk_client::Result<Option<Stat>> + Send + Sync> {
        let zk = self.with_timeout(Some(limit));
        Box::new(move || zk.exists("/"))
    }

    fn drop_pending_get_data_watch(&self, path: &str, _while_pending: &dyn Fn()) -> bool {
        let r = self
            .with_timeout(Some(Duration::from_nanos(1)))
            .get_data_watch(path);
        assert!(
            matches!(r, Err(Error::Timeout)),
            "blocking: get_data_watch with a 1 ns timeout: {:?}",
            r.map(|(d, s, _)| (d, s))
        );
        false
    }

    fn exists_with_max_timeout(&self) -> zk_client::Result<Option<Stat>> {
        self.with_timeout(Some(Duration::MAX)).exists("/")
    }
}

// =============================================================================================
// 1. idle_soak

fn idle_soak<Z: Adapter>() {
    let server = fast_server();
    let zk = connect_to::<Z>(
        &ClientBuilder::new(&server.connect_string()).session_timeout(Duration::from_secs(2)),
    );
    let info = zk.session().expect("a connected client has a session");
    let negotiated = info
        .timeout
        .expect("a connected client has a negotiated timeout");
    assert!(
        negotiated <= Duration::from_secs(3),
        "{}: asked for a 2 s session timeout (tickTime 500), got {negotiated:?}",
        Z::NAME
    );
    let read_timeout = negotiated * 2 / 3;
    let log = StateLog::start(&zk);
    let cons0 = four_letter(server.addr(), "cons");
    let recved0 = cons_recved(&cons0, info.id).unwrap_or_else(|| {
        panic!(
            "{}: no `cons` line for session 0x{:x} right after connecting:\n{cons0}",
            Z::NAME,
            info.id
        )
    });
    let idle = negotiated * 3 + Duration::from_millis(500);
    thread::sleep(idle);
    let cons1 = four_letter(server.addr(), "cons");
    let state = zk.state();
    let session = zk.session().map(|s| s.id);
    let changes = log.changes();
    drop(log);

    let mut failures = Vec::new();
    if !changes.is_empty() {
        failures.push(format!(
            "state changed while idle for {idle:?} (negotiated timeout {negotiated:?}): {changes:?}"
        ));
    }
    if state != SessionState::Connected {
        failures.push(format!(
            "state after the idle time: {state:?}, not Connected"
        ));
    }
    if session != Some(info.id) {
        failures.push(format!(
            "session id changed: 0x{:x} -> {:?}",
            info.id,
            session.map(|s| format!("0x{s:x}"))
        ));
    }
    // At least (idle / ping interval) - 1 pings, the ping interval being half the read timeout.
    let expected = (idle.as_secs_f64() / (read_timeout.as_secs_f64() / 2.0)).floor() as u64 - 1;
    match cons_recved(&cons1, info.id) {
        None => failures.push(format!(
            "the server no longer lists a connection of session 0x{:x} after {idle:?} idle \
             (it had recved={recved0}):\n{cons1}",
            info.id
        )),
        Some(recved1) => {
            let got = recved1.saturating_sub(recved0);
            if recved1 < recved0 || got < expected {
                failures.push(format!(
                    "the server received {got} packets (recved {recved0} -> {recved1}) in \
                     {idle:?} idle; expected at least {expected} pings (read timeout \
                     {read_timeout:?}, a ping every {:?})",
                    read_timeout / 2
                ));
            }
        }
    }
    let zk = Arc::new(zk);
    if let Err(e) = bounded(CALL_LIMIT, "close", move || zk.close()) {
        failures.push(e);
    }
    check(&format!("{} idle_soak", Z::NAME), failures);
}

// =============================================================================================
// 2. stalled_reader

/// A loopback listener whose accepted sockets have a tiny receive buffer (SO_RCVBUF is
/// set before listen, through tokio's TcpSocket: no extra dependency).
fn small_rcvbuf_listener() -> TcpListener {
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime for the listener");
    let _enter = rt.enter();
    let sock = ::tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    sock.listen(16)
        .expect("listen")
        .into_std()
        .expect("a std listener")
}

/// A fake server: completes the handshake (negotiated timeout `timeout_ms`), then never
/// reads from or writes to the connection again, holding it open until dropped.
struct StallServer {
    addr: String,
    stop: Arc<AtomicBool>,
    /// When each connection's handshake reply (the last byte it sends) was written.
    handshakes: Arc<Mutex<Vec<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl StallServer {
    fn start(timeout_ms: i32) -> StallServer {
        let l = small_rcvbuf_listener();
        let addr = l.local_addr().expect("local_addr").to_string();
        l.set_nonblocking(true).expect("set_nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let (stop2, hs2) = (stop.clone(), handshakes.clone());
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                let Ok((mut s, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                s.set_nonblocking(false).ok();
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                if read_frame(&mut s).is_err() {
                    continue;
                }
                // The time is taken before the write: the client may act on the reply
                // before this thread runs again.
                let sent = Instant::now();
                if s.write_all(&connect_response(0x0bad_c0de_0000_0001, timeout_ms))
                    .is_ok()
                {
                    lock(&hs2).push(sent);
                }
                held.push(s);
            }
            for s in held {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        });
        StallServer {
            addr,
            stop,
            handshakes,
            thread: Some(thread),
        }
    }

    /// When the first handshake reply was sent (waits a little for the server thread to
    /// note it: the client may have read the reply first).
    fn first_handshake(&self) -> Option<Instant> {
        let t = Instant::now();
        loop {
            if let Some(first) = lock(&self.handshakes).first().copied() {
                return Some(first);
            }
            if t.elapsed() > Duration::from_secs(2) {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for StallServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stalled_reader<Z: Adapter>() {
    const WRITES: usize = 32;
    const PAYLOAD: usize = 512 * 1024;
    let server = StallServer::start(3000);
    let zk =
        connect_to::<Z>(&ClientBuilder::new(&server.addr).connect_deadline(Duration::from_secs(5)));
    let negotiated = zk.session().and_then(|s| s.timeout);
    assert_eq!(
        negotiated,
        Some(Duration::from_millis(3000)),
        "{}: the fake server grants 3000 ms",
        Z::NAME
    );
    let read_timeout = Duration::from_millis(2000);
    let handshake = server
        .first_handshake()
        .expect("the fake server recorded its handshake reply");
    let log = StateLog::start(&zk);
    let client = zk.as_async().clone();
    let payload = Bytes::from(vec![0x5au8; PAYLOAD]);
    // Every call must have returned by then: the connection is dead after the read
    // timeout, and a reconnect (to the same stalling server) dies the same way.
    let call_bound = read_timeout * 2 + Duration::from_secs(3);
    let started = Instant::now();
    let calls: Vec<_> = (0..WRITES)
        .map(|i| {
            let (c, data) = (client.clone(), payload.clone());
            thread::spawn(move || {
                let t = Instant::now();
                let r = zk_client::blocking::block_on(
                    c.set_data(&format!("/stall-{i}"), data, None),
                    Some(call_bound),
                );
                (r, t.elapsed())
            })
        })
        .collect();

    let mut failures = Vec::new();
    // Wait for the client to leave Connected, a little past the bound to see how late.
    let bound = handshake + read_timeout + Duration::from_secs(1);
    let give_up = bound + Duration::from_secs(4);
    let left = loop {
        let first_other = log.all().into_iter().find(|(_, s)| !s.is_connected());
        if let Some(found) = first_other {
            break Some(found);
        }
        if Instant::now() >= give_up {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    match left {
        None => failures.push(format!(
            "still {:?} {:?} after the fake server's last byte (read timeout {read_timeout:?}; \
             expected to leave Connected within {:?}); states seen: {:?}",
            zk.state(),
            give_up - handshake,
            bound - handshake,
            log.all().iter().map(|(_, s)| *s).collect::<Vec<_>>()
        )),
        Some((at, s)) if at > bound => failures.push(format!(
            "left Connected ({s:?}) only {:?} after the server's last byte (bound {:?})",
            at - handshake,
            bound - handshake
        )),
        Some(_) => {}
    }
    let (mut pending, mut ok, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for (i, h) in calls.into_iter().enumerate() {
        match h.join() {
            Err(p) => failures.push(format!(
                "set_data #{i}: thread panicked: {}",
                panic_text(&*p)
            )),
            Ok((None, _)) => pending.push(i),
            Ok((Some(Ok(_)), _)) => ok.push(i),
            Ok((Some(Err(e)), took)) => errors.push(format!("#{i} {e:?} after {took:?}")),
        }
    }
    if !pending.is_empty() {
        failures.push(format!(
            "{} of {WRITES} set_data calls ({PAYLOAD} B each) never returned: still pending \
             after {call_bound:?} (calls {pending:?})",
            pending.len()
        ));
    }
    if !ok.is_empty() {
        failures.push(format!(
            "set_data calls {ok:?} returned Ok from a server that never replies"
        ));
    }
    println!(
        "[{}] stalled_reader: calls that failed: {errors:?}",
        Z::NAME
    );
    drop(log);
    let zk = Arc::new(zk);
    let t = Instant::now();
    match bounded(Duration::from_secs(10), "close", move || zk.close()) {
        Ok(_) if t.elapsed() > Duration::from_secs(3) => {
            failures.push(format!("close() took {:?} (bound 3 s)", t.elapsed()))
        }
        Ok(_) => {}
        Err(e) => failures.push(e),
    }
    println!(
        "[{}] stalled_reader: {} connection(s) accepted; {WRITES} x {PAYLOAD} B submitted \
         {:?} after the handshake",
        Z::NAME,
        lock(&server.handshakes).len(),
        started - handshake
    );
    check(&format!("{} stalled_reader", Z::NAME), failures);
}

// =============================================================================================
// 3. listener_calls_client

fn listener_calls_client<Z: Adapter>() {
    let server = fast_server();
    let proxy = Proxy::start(server.addr());
    let zk = connect_to::<Z>(
        &ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(4)),
    );
    let sid = zk.session().expect("session").id;
    let call = zk.listener_exists(Duration::from_secs(5));
    let (tx, rx) = mpsc::channel();
    // The listener may be queued or running after this test is done with it (it blocks
    // executor threads): it does nothing once `active` is off, and `running` tells when
    // the last call is over, so nothing outlives this test's exclusive slot.
    let active = Arc::new(AtomicBool::new(true));
    let running = Arc::new(AtomicUsize::new(0));
    let (active2, running2) = (active.clone(), running.clone());
    let id = zk.add_listener(move |s| {
        running2.fetch_add(1, Ordering::SeqCst);
        if s.is_connected() && active2.load(Ordering::SeqCst) {
            let t = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(&call)).map_err(|p| panic_text(&*p));
            let _ = tx.send((r, t.elapsed()));
        }
        running2.fetch_sub(1, Ordering::SeqCst);
    });
    // Force a reconnect: cut the connection; the client reconnects through the proxy
    // and resumes its session.
    let cut = Instant::now();
    proxy.cut_all();
    let mut failures = Vec::new();
    match rx.recv_timeout(Duration::from_secs(8)) {
        Err(_) => failures.push(format!(
            "the listener's exists(\"/\") on Connected did not complete within 8 s of the cut \
             (state now {:?})",
            zk.state()
        )),
        Ok((Err(panic), _)) => {
            failures.push(format!("the listener's exists(\"/\") panicked: {panic}"))
        }
        Ok((Ok(Ok(Some(_))), took)) => {
            if took > Duration::from_secs(3) {
                failures.push(format!(
                    "the listener's exists(\"/\") succeeded but took {took:?}"
                ));
            }
        }
        Ok((Ok(r), took)) => failures.push(format!(
            "the listener's exists(\"/\") on Connected returned {r:?} after {took:?} \
             ({:?} after the cut)",
            cut.elapsed()
        )),
    }
    let zk = Arc::new(zk);
    let z2 = zk.clone();
    match bounded(CALL_LIMIT, "exists(\"/\") after the reconnect", move || {
        z2.exists("/")
    }) {
        Ok(Ok(Some(_))) => {}
        Ok(r) => failures.push(format!("exists(\"/\") after the reconnect: {r:?}")),
        Err(e) => failures.push(e),
    }
    if !zk.state().is_connected() {
        failures.push(format!("state after the reconnect: {:?}", zk.state()));
    }
    if zk.session().map(|s| s.id) != Some(sid) {
        failures.push(format!(
            "session changed: 0x{sid:x} -> {:?}",
            zk.session().map(|s| s.id)
        ));
    }
    // Unregister first: the listener holds a clone of the client.
    active.store(false, Ordering::SeqCst);
    zk.remove_listener(id);
    if let Err(e) = bounded(CALL_LIMIT, "close", move || zk.close()) {
        failures.push(e);
    }
    let t = Instant::now();
    while running.load(Ordering::SeqCst) > 0 {
        if t.elapsed() > CALL_LIMIT {
            failures.push(format!(
                "the listener was still running {CALL_LIMIT:?} after close"
            ));
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    check(&format!("{} listener_calls_client", Z::NAME), failures);
}

// =============================================================================================
// 4. ensure_path_under_missing_chroot

fn ensure_path_under_missing_chroot<Z: Adapter>() {
    let root = connect_shared::<Z>();
    let base = unique::<Z>("fresh");
    assert!(
        root.exists(&base).unwrap().is_none(),
        "{base} must not exist yet"
    );
    let zk = connect_to::<Z>(&ClientBuilder::new(&format!(
        "{}{base}/app",
        shared_server().connect_string()
    )));
    let r = zk.ensure_path("/a/b");
    let full = format!("{base}/app/a/b");
    let created = root.exists(&full).unwrap().is_some();
    let chroot_made = root.exists(&format!("{base}/app")).unwrap().is_some();
    let _ = root.delete_recursive(&base);
    zk.close().unwrap();
    root.close().unwrap();
    assert!(
        r.is_ok() && created,
        "{}: ensure_path(\"/a/b\") under the missing chroot {base}/app returned {r:?}; \
         {full} exists: {created}; chroot {base}/app exists: {chroot_made}",
        Z::NAME
    );
}

// =============================================================================================
// 5. ensure_path_existing_without_create_perm

fn ensure_path_existing_without_create_perm<Z: Adapter>() {
    let admin = connect_shared::<Z>();
    let locked = unique::<Z>("locked");
    let child = format!("{locked}/child");
    admin.create(&locked, "", CreateMode::Persistent).unwrap();
    admin.create(&child, "", CreateMode::Persistent).unwrap();
    admin
        .set_acl(
            &locked,
            vec![Acl::new(Perms::READ, "world", "anyone")],
            None,
        )
        .unwrap();
    let (acl, _) = admin.get_acl(&locked).unwrap();
    assert_eq!(acl, vec![Acl::new(Perms::READ, "world", "anyone")]);
    let zk = connect_shared::<Z>();
    // The ACL is in force: nothing new can be created under it.
    let refused = zk.create(&format!("{locked}/other"), "", CreateMode::Persistent);
    assert_eq!(
        refused.as_ref().err().map(Error::code),
        Some(ErrorCode::NoAuth),
        "{}: a create under a READ-only node: {refused:?}",
        Z::NAME
    );
    let r = zk.ensure_path(&child);
    zk.close().unwrap();
    admin.close().unwrap();
    // (The READ-only nodes stay: nobody may delete below them. The server is a throwaway.)
    assert!(
        r.is_ok(),
        "{}: ensure_path({child:?}) of an existing node under a READ-only parent: {r:?}",
        Z::NAME
    );
}

// =============================================================================================
// 6. duration_max_is_forever

fn duration_max_is_forever<Z: Adapter>() {
    let hosts = shared_server().connect_string();
    let cases: Vec<(&str, ClientBuilder)> = vec![
        (
            "connect_deadline(Duration::MAX)",
            ClientBuilder::new(&hosts).connect_deadline(Duration::MAX),
        ),
        (
            "request_timeout(Duration::MAX)",
            ClientBuilder::new(&hosts).request_timeout(Duration::MAX),
        ),
        (
            "connect_timeout(Duration::MAX)",
            ClientBuilder::new(&hosts).connect_timeout(Duration::MAX),
        ),
    ];
    let mut failures = Vec::new();
    for (what, builder) in cases {
        let mark = panic_mark();
        let r = bounded(Duration::from_secs(15), what, move || {
            let zk = Z::connect(&builder).map_err(|e| format!("connect: {e:?}"))?;
            let r = zk
                .exists("/")
                .map_err(|e| format!("exists(\"/\"): {e:?}"))
                .and_then(|s| s.ok_or_else(|| "exists(\"/\"): None".to_string()));
            let p = format!("/duration-max-{}-{}", Z::NAME, std::process::id());
            let r = r.and_then(|_| {
                zk.create(&p, "x", CreateMode::Ephemeral)
                    .map_err(|e| format!("create: {e:?}"))
            });
            zk.close().map_err(|e| format!("close: {e:?}"))?;
            r.map(|_| ())
        });
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{what}: {e}{}", driver_panics_since(mark))),
            Err(e) => failures.push(format!("{e}{}", driver_panics_since(mark))),
        }
    }
    let what = "a call with timeout Some(Duration::MAX)";
    let mark = panic_mark();
    let zk = Arc::new(connect_shared::<Z>());
    let z2 = zk.clone();
    match bounded(Duration::from_secs(15), what, move || {
        z2.exists_with_max_timeout()
    }) {
        Ok(Ok(Some(_))) => {}
        Ok(r) => failures.push(format!("{what}: {r:?}{}", driver_panics_since(mark))),
        Err(e) => failures.push(format!("{e}{}", driver_panics_since(mark))),
    }
    if let Err(e) = bounded(CALL_LIMIT, "close", move || zk.close()) {
        failures.push(e);
    }
    check(&format!("{} duration_max_is_forever", Z::NAME), failures);
}

// =============================================================================================
// 7. chroot_config_node

fn chroot_config_node<Z: Adapter>() {
    let root = connect_shared::<Z>();
    let base = unique::<Z>("cfg");
    root.create(&base, "", CreateMode::Persistent).unwrap();
    let zk = connect_to::<Z>(&ClientBuilder::new(&format!(
        "{}{base}",
        shared_server().connect_string()
    )));
    zk.ensure_path("/zookeeper").unwrap();
    let created = zk
        .create("/zookeeper/config", "mine", CreateMode::Persistent)
        .unwrap();
    assert_eq!(created, "/zookeeper/config");
    let (inside, _) = root
        .get_data(&format!("{base}/zookeeper/config"))
        .unwrap_or_else(|e| panic!("the chrooted create made no {base}/zookeeper/config: {e:?}"));
    assert_eq!(&inside[..], b"mine");
    let (real, _) = root.get_config().unwrap();
    assert_ne!(&real[..], b"mine");

    let mut failures = Vec::new();
    match zk.get_data("/zookeeper/config") {
        Ok((d, _)) if &d[..] == b"mine" => {}
        other => failures.push(format!(
            "get_data(\"/zookeeper/config\") inside the chroot {base} returned {:?}, not the \
             chrooted node's \"mine\"",
            other.map(|(d, s)| (String::from_utf8_lossy(&d).into_owned(), s.czxid))
        )),
    }
    match zk.get_config() {
        Ok((d, _)) if d == real => {}
        other => failures.push(format!(
            "get_config() inside the chroot returned {:?}, not the server's config {:?}",
            other.map(|(d, _)| String::from_utf8_lossy(&d).into_owned()),
            String::from_utf8_lossy(&real)
        )),
    }
    let _ = root.delete_recursive(&base);
    zk.close().unwrap();
    root.close().unwrap();
    check(&format!("{} chroot_config_node", Z::NAME), failures);
}

// =============================================================================================
// 8. big_reply

/// The server's default jute.maxbuffer, which bounds the requests it accepts.
const JUTE_MAXBUFFER: usize = 0xfffff;

fn big_reply<Z: Adapter>() {
    let root = connect_shared::<Z>();
    let base = unique::<Z>("big");
    root.create(&base, "", CreateMode::Persistent).unwrap();
    let mut failures = Vec::new();

    // (a) 1,040,000 bytes, then the largest node the server accepts; both read back with
    // the default builder.
    let p1 = format!("{base}/n1040000");
    root.create(&p1, vec![1u8; 1_040_000], CreateMode::Persistent)
        .unwrap();
    match root.get_data(&p1) {
        Ok((d, _)) if d.len() == 1_040_000 => {}
        other => failures.push(format!(
            "get_data of a 1,040,000-byte node: {:?}",
            other.map(|(d, _)| d.len())
        )),
    }
    // A create request's payload: xid, type, path, data, one world:anyone ACL, flags.
    let p2 = format!("{base}/max");
    let overhead = 4 + 4 + (4 + p2.len()) + 4 + (4 + 4 + 5 + 4 + 6) + 4;
    let max = JUTE_MAXBUFFER - overhead;
    let mut size = None;
    for n in [max, max - 8, max - 64, max - 512, max - 4096] {
        match root.create(&p2, vec![2u8; n], CreateMode::Persistent) {
            Ok(_) => {
                size = Some(n);
                break;
            }
            Err(Error::ConnectionLoss) => {
                // Refused ("Len error"): the server dropped the connection.
                root.wait_connected().unwrap();
                if let Some(st) = root.exists(&p2).unwrap() {
                    size = Some(st.data_length as usize);
                    break;
                }
            }
            Err(e) => panic!("{}: create of {n} bytes: {e:?}", Z::NAME),
        }
    }
    let n = size.unwrap_or_else(|| {
        panic!(
            "{}: the server accepted none of the sizes from {max} to {} bytes",
            Z::NAME,
            max - 4096
        )
    });
    // The reply: xid, zxid, err, data, Stat (68 bytes).
    let reply = 4 + 8 + 4 + 4 + n + 68;
    match root.get_data(&p2) {
        Ok((d, _)) if d.len() == n => {}
        other => failures.push(format!(
            "get_data of the largest node the server accepts ({n} bytes; reply frame {reply} \
             bytes, default max frame {JUTE_MAXBUFFER}) with the default builder: {:?}",
            other.map(|(d, _)| d.len())
        )),
    }

    // (b) max_frame(4096): a 10,000-byte reply among 5 small ones in flight.
    let big = format!("{base}/ten-thousand");
    let small = format!("{base}/small");
    root.create(&big, vec![3u8; 10_000], CreateMode::Persistent)
        .unwrap();
    root.create(&small, "s", CreateMode::Persistent).unwrap();
    let zk =
        connect_to::<Z>(&ClientBuilder::new(&shared_server().connect_string()).max_frame(4096));
    let sid = zk.session().expect("session").id;
    let log = StateLog::start(&zk);
    let client = zk.as_async().clone();
    let order = [&small, &small, &big, &small, &small, &small];
    let futs: Vec<_> = order
        .iter()
        .map(|p| Box::pin(client.get_data(p.as_str())))
        .collect();
    let results = zk_client::blocking::block_on(join_all(futs), Some(CALL_LIMIT));
    thread::sleep(Duration::from_millis(300));
    let changes = log.changes();
    drop(log);
    match results {
        None => failures.push(format!(
            "max_frame(4096): the 6 reads were still pending after {CALL_LIMIT:?}"
        )),
        Some(results) => {
            for (i, r) in results.iter().enumerate() {
                if i == 2 {
                    match r {
                        Ok((d, _)) => failures.push(format!(
                            "max_frame(4096): the 10,000-byte read returned Ok ({} bytes)",
                            d.len()
                        )),
                        Err(e) if *e == Error::ConnectionLoss || e.is_retryable() => {
                            failures.push(format!(
                                "max_frame(4096): the 10,000-byte read failed with {e:?} \
                                 (retryable: {}); expected a dedicated, non-retryable error",
                                e.is_retryable()
                            ))
                        }
                        Err(_) => {}
                    }
                } else {
                    match r {
                        Ok((d, _)) if &d[..] == b"s" => {}
                        other => failures.push(format!(
                            "max_frame(4096): small read #{i} (in flight with the big one): {:?}",
                            other.as_ref().map(|(d, _)| d.clone())
                        )),
                    }
                }
            }
        }
    }
    if !changes.is_empty() {
        failures.push(format!(
            "max_frame(4096): the oversized reply changed the session state: {changes:?}"
        ));
    }
    if zk.session().map(|s| s.id) != Some(sid) || !zk.state().is_connected() {
        failures.push(format!(
            "max_frame(4096): afterwards state {:?}, session {:?} (was 0x{sid:x})",
            zk.state(),
            zk.session().map(|s| s.id)
        ));
    }
    let _ = zk.close();
    let _ = root.delete_recursive(&base);
    root.close().unwrap();
    check(&format!("{} big_reply", Z::NAME), failures);
}

// =============================================================================================
// 9. state_stream_ends_after_close

fn state_stream_ends_after_close<Z: Adapter>() {
    let zk = Arc::new(connect_shared::<Z>());
    let mut s = zk.state_stream();
    let z2 = zk.clone();
    bounded(CALL_LIMIT, "close", move || z2.close())
        .unwrap_or_else(|e| panic!("{}: {e}", Z::NAME))
        .unwrap();
    let wait = Duration::from_secs(3);
    let mut seen = Vec::new();
    let ended = loop {
        let t = Instant::now();
        match s.recv_timeout(Some(wait)) {
            Some(st) => seen.push(st),
            // recv_timeout says None both when the stream ended and when it timed out:
            // an end comes at once.
            None => break t.elapsed() < wait - Duration::from_millis(500),
        }
        assert!(
            seen.len() < 20,
            "{}: endless states after close: {seen:?}",
            Z::NAME
        );
    };
    assert_eq!(
        seen.last(),
        Some(&SessionState::Closed),
        "{}: states after close: {seen:?}",
        Z::NAME
    );
    assert!(
        ended,
        "{}: after {seen:?} the state stream did not end: recv_timeout(Some({wait:?})) timed \
         out instead of returning None at once",
        Z::NAME
    );
    // Once ended it stays ended: next() resolves to None at once.
    let next = zk_client::blocking::block_on(s.next(), Some(Duration::from_secs(1)));
    assert_eq!(next, Some(None), "{}: next() on the ended stream", Z::NAME);
}

// =============================================================================================
// 10. remove_watches_oneshot_reports_removed

fn remove_watches_oneshot_reports_removed<Z: Adapter>() {
    let zk = connect_shared::<Z>();
    let p = unique::<Z>("rmwatch");
    zk.create(&p, "", CreateMode::Persistent).unwrap();
    let (stat, w) = zk.exists_watch(&p).unwrap();
    assert!(stat.is_some());
    zk.remove_watches(&p, WatcherType::Any).unwrap();
    let r = w.wait_timeout(Some(Duration::from_secs(5)));
    let state = zk.state();
    let still_usable = zk.exists(&p);
    let _ = zk.delete(&p, None);
    zk.close().unwrap();
    match &r {
        Ok(ev) => panic!("{}: the removed watch fired: {ev:?}", Z::NAME),
        Err(Error::Timeout) => panic!(
            "{}: the removed one-shot watch did not resolve within 5 s",
            Z::NAME
        ),
        Err(e @ Error::SessionClosed) => panic!(
            "{}: the one-shot watch removed by remove_watches resolved to {e:?} (\"{e}\") \
             though the session is alive (state {state:?}); expected an error that says the \
             watch was removed",
            Z::NAME
        ),
        Err(e) => assert!(
            matches!(e, Error::WatchRemoved),
            "{}: the removed one-shot watch resolved to {e:?} (\"{e}\"), not WatchRemoved",
            Z::NAME
        ),
    }
    assert_eq!(state, SessionState::Connected, "{}", Z::NAME);
    assert!(
        matches!(still_usable, Ok(Some(_))),
        "{}: exists after the removal: {still_usable:?}",
        Z::NAME
    );
}

// =============================================================================================
// 11. dropped_watch_future_removes_server_watch

fn dropped_watch_future_removes_server_watch<Z: Adapter>() {
    let addr = shared_server().addr();
    let zk = connect_shared::<Z>();
    let sid = zk.session().expect("session").id;
    let p = unique::<Z>("dropwatch");
    zk.create(&p, "v", CreateMode::Persistent).unwrap();
    // The control: a watch that is held shows in wchp (so the check below means something).
    let control = format!("{p}-control");
    zk.create(&control, "", CreateMode::Persistent).unwrap();
    let (_, _, held) = zk.get_data_watch(&control).unwrap();
    assert!(
        watched_paths(addr).contains(&control),
        "{}: wchp does not list the held watch on {control}",
        Z::NAME
    );

    let pending_checked = zk.drop_pending_get_data_watch(&p, &|| {
        // Requests are answered in order: once this is back, the getData was processed.
        zk.exists(&p).unwrap();
        assert!(
            watched_paths(addr).contains(&p),
            "{}: while the get_data_watch future is alive the server holds its watch",
            Z::NAME
        );
    });
    // Whatever was sent has been processed once this is back.
    zk.exists(&p).unwrap();
    thread::sleep(Duration::from_millis(500));
    let mut failures = Vec::new();
    if watched_paths(addr).contains(&p) {
        failures.push(format!(
            "500 ms after the get_data_watch future was dropped, the server still holds a data \
             watch on {p} (wchp)"
        ));
    }
    match zk.check_watches(&p, WatcherType::Data) {
        Err(Error::Server(ErrorCode::NoWatcher)) => {}
        other => failures.push(format!(
            "check_watches({p}, Data) after the drop: {other:?}, expected NoWatcher"
        )),
    }
    zk.set_data(&p, "w", None).unwrap();
    thread::sleep(Duration::from_millis(300));
    if watched_paths(addr).contains(&p) {
        failures.push(format!("after a set_data, wchp lists {p}"));
    }
    if !zk.state().is_connected() || zk.session().map(|s| s.id) != Some(sid) {
        failures.push(format!(
            "afterwards state {:?}, session {:?} (was 0x{sid:x})",
            zk.state(),
            zk.session().map(|s| s.id)
        ));
    }
    drop(held);
    let _ = zk.delete(&p, None);
    let _ = zk.delete(&control, None);
    zk.close().unwrap();
    println!(
        "[{}] dropped_watch_future: the watch was {} while the future was alive",
        Z::NAME,
        if pending_checked {
            "seen on the server"
        } else {
            "not inspected (1 ns call timeout)"
        }
    );
    check(
        &format!("{} dropped_watch_future_removes_server_watch", Z::NAME),
        failures,
    );
}

/// A listener holding a `Client` clone is a cycle (the session outlives the user's
/// last handle); one holding a `WeakClient` is not: dropping the last handle closes
/// the session, and the server removes its ephemeral at once.
fn weak_client_in_a_listener_lets_the_session_end<Z: Adapter>() {
    let checker: Z = connect_shared();
    let gone_within = |eph: &str, limit: Duration| {
        let t = Instant::now();
        while t.elapsed() < limit {
            if checker.exists(eph).unwrap().is_none() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    };
    let b = ClientBuilder::new(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(30));

    // The control: a strong clone in the listener keeps the session.
    let zk: Z = connect_to(&b);
    let eph = zk
        .create(&unique::<Z>("cycle"), "", CreateMode::Ephemeral)
        .unwrap();
    let strong = zk.as_async().clone();
    zk.add_listener(move |_| {
        let _ = &strong;
    });
    let escape = zk.as_async().downgrade();
    drop(zk);
    assert!(
        !gone_within(&eph, Duration::from_secs(2)),
        "{}: the control: with a Client in its listener the session outlives the handle",
        Z::NAME
    );
    let kept = escape.upgrade().expect("the cycle keeps the client alive");
    Z::block_on_close(&kept);
    assert!(gone_within(&eph, Duration::from_secs(5)));

    // A WeakClient in the listener: dropping the handle ends the session.
    let zk: Z = connect_to(&b);
    let eph = zk
        .create(&unique::<Z>("weak"), "", CreateMode::Ephemeral)
        .unwrap();
    let weak = zk.as_async().downgrade();
    zk.add_listener(move |_| {
        if let Some(c) = weak.upgrade() {
            let _ = c.state();
        }
    });
    let probe = zk.as_async().downgrade();
    drop(zk);
    assert!(
        gone_within(&eph, Duration::from_secs(5)),
        "{}: the session ended when the last handle dropped",
        Z::NAME
    );
    assert!(probe.upgrade().is_none());
    checker.close().unwrap();
}

/// A persistent watch nobody reads keeps at most `watch_backlog` events; the next
/// one ends it: the stream yields what it holds, then `None` with `overflowed()`,
/// and the server no longer holds the watch.
fn unread_persistent_watch_is_bounded<Z: Adapter>() {
    let addr = shared_server().addr();
    let zk: Z = connect_to(&ClientBuilder::new(&shared_server().connect_string()).watch_backlog(8));
    let p = unique::<Z>("backlog");
    zk.create(&p, "", CreateMode::Persistent).unwrap();
    let mut w = zk.add_watch(&p, AddWatchMode::Persistent).unwrap();
    assert!(
        watched_paths(addr).contains(&p),
        "{}: the persistent watch is on the server",
        Z::NAME
    );
    for i in 0..20 {
        zk.set_data(&p, format!("{i}"), None).unwrap();
    }
    // Answers come in order: every event was delivered before this one's reply.
    zk.exists(&p).unwrap();
    let mut events = 0;
    while let Ok(Some(ev)) = w.recv_timeout(Some(Duration::from_secs(5))) {
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        events += 1;
    }
    assert_eq!(events, 8, "{}: the backlog's events, then the end", Z::NAME);
    assert!(w.overflowed(), "{}: the stream says it overflowed", Z::NAME);
    let t = Instant::now();
    while watched_paths(addr).contains(&p) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{}: the server still holds the overflowed watch on {p} (wchp)",
            Z::NAME
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        zk.check_watches(&p, WatcherType::Any),
        Err(Error::Server(ErrorCode::NoWatcher))
    );
    zk.close().unwrap();
}

// =============================================================================================

macro_rules! reliability {
    ($m:ident, $z:ty) => {
        mod $m {
            use super::*;
            fn name(test: &str) -> String {
                format!("{}::{test}", <$z as Zk>::NAME)
            }
            #[test]
            fn idle_soak() {
                run(&name("idle_soak"), false, super::idle_soak::<$z>)
            }
            #[test]
            fn stalled_reader() {
                run(&name("stalled_reader"), false, super::stalled_reader::<$z>)
            }
            #[test]
            fn listener_calls_client() {
                run(
                    &name("listener_calls_client"),
                    true,
                    super::listener_calls_client::<$z>,
                )
            }
            #[test]
            fn ensure_path_under_missing_chroot() {
                run(
                    &name("ensure_path_under_missing_chroot"),
                    false,
                    super::ensure_path_under_missing_chroot::<$z>,
                )
            }
            #[test]
            fn ensure_path_existing_without_create_perm() {
                run(
                    &name("ensure_path_existing_without_create_perm"),
                    false,
                    super::ensure_path_existing_without_create_perm::<$z>,
                )
            }
            #[test]
            fn duration_max_is_forever() {
                run(
                    &name("duration_max_is_forever"),
                    false,
                    super::duration_max_is_forever::<$z>,
                )
            }
            #[test]
            fn chroot_config_node() {
                run(
                    &name("chroot_config_node"),
                    false,
                    super::chroot_config_node::<$z>,
                )
            }
            #[test]
            fn big_reply() {
                run(&name("big_reply"), false, super::big_reply::<$z>)
            }
            #[test]
            fn state_stream_ends_after_close() {
                run(
                    &name("state_stream_ends_after_close"),
                    false,
                    super::state_stream_ends_after_close::<$z>,
                )
            }
            #[test]
            fn remove_watches_oneshot_reports_removed() {
                run(
                    &name("remove_watches_oneshot_reports_removed"),
                    false,
                    super::remove_watches_oneshot_reports_removed::<$z>,
                )
            }
            #[test]
            fn weak_client_in_a_listener_lets_the_session_end() {
                run(
                    &name("weak_client_in_a_listener_lets_the_session_end"),
                    false,
                    super::weak_client_in_a_listener_lets_the_session_end::<$z>,
                )
            }
            #[test]
            fn unread_persistent_watch_is_bounded() {
                run(
                    &name("unread_persistent_watch_is_bounded"),
                    false,
                    super::unread_persistent_watch_is_bounded::<$z>,
                )
            }
            #[test]
            fn dropped_watch_future_removes_server_watch() {
                run(
                    &name("dropped_watch_future_removes_server_watch"),
                    false,
                    super::dropped_watch_future_removes_server_watch::<$z>,
                )
            }
        }
    };
}

reliability!(tokio, TokioZk);
reliability!(smol, SmolZk);
reliability!(blocking, BlockingZk);
