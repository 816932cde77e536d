//! The suite's harness: bounds, the watchdog (a test that blocks executor threads
//! runs alone), the panic log that names panics on driver threads, collected
//! failures, unique paths, the servers, a state log, four-letter words.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::task::Poll;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, SessionState};
use zk_tests::facade::Zk;
use zk_tests::server::{four_letter_word, shared_server, ServerOptions, ZkServer};

/// Watchdog of one whole test (generous: it may include starting a JVM on a busy machine).
const TEST_LIMIT: Duration = Duration::from_secs(150);
/// Bound of one call that is expected to be quick.
pub(crate) const CALL_LIMIT: Duration = Duration::from_secs(10);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
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

pub(crate) fn panic_mark() -> usize {
    lock(&PANICS).len()
}

/// Panics since `mark` on threads the tests do not run themselves (drivers, readers,
/// runtime workers): test bodies and [`bounded`] threads report their own panics.
pub(crate) fn driver_panics_since(mark: usize) -> String {
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
pub(crate) fn bounded<T: Send + 'static>(
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
pub(crate) fn run(name: &str, exclusive: bool, body: fn()) {
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

/// [`run`] beside the other tests.
pub(crate) fn run_shared(name: &str, body: fn()) {
    run(name, false, body)
}

/// [`run`] alone: no other test runs meanwhile.
pub(crate) fn run_alone(name: &str, body: fn()) {
    run(name, true, body)
}

/// Panics with every collected failure, one per line.
pub(crate) fn check(test: &str, failures: Vec<String>) {
    if !failures.is_empty() {
        panic!(
            "{test}: {} failure(s):\n  - {}",
            failures.len(),
            failures.join("\n  - ")
        );
    }
}

/// A path no other test (adapter, process) uses: `/<tag>-<adapter>-<pid>-<n>`.
pub(crate) fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("", tag, Z::NAME)
}

/// A server with tickTime 500 ms: session timeouts from 1 s to 10 s.
pub(crate) fn fast_server() -> &'static ZkServer {
    static FAST: OnceLock<ZkServer> = OnceLock::new();
    FAST.get_or_init(|| {
        ZkServer::start_with(ServerOptions {
            tick_time_ms: 500,
            ..ServerOptions::default()
        })
    })
}

pub(crate) fn connect_to<Z: Zk>(b: &ClientBuilder) -> Z {
    Z::connect(b).unwrap_or_else(|e| panic!("{}: connect: {e:?}", Z::NAME))
}

pub(crate) fn connect_shared<Z: Zk>() -> Z {
    connect_to(&ClientBuilder::new(&shared_server().connect_string()))
}

/// Every state a client's [`zk_client::StateStream`] delivers, with the time it was seen,
/// recorded by a thread of its own (the stream starts with the current state).
pub(crate) struct StateLog {
    seen: Arc<Mutex<Vec<(Instant, SessionState)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StateLog {
    pub(crate) fn start<Z: Zk>(zk: &Z) -> StateLog {
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

    pub(crate) fn all(&self) -> Vec<(Instant, SessionState)> {
        lock(&self.seen).clone()
    }

    /// The states after the first (the one current at the start).
    pub(crate) fn changes(&self) -> Vec<SessionState> {
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

pub(crate) fn four_letter(addr: SocketAddr, cmd: &str) -> String {
    four_letter_word(addr, cmd, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("four-letter word {cmd} to {addr}: {e}"))
}

/// The `recved=N` of the `cons` line of session `sid`, or `None` if no connection of that
/// session is listed.
pub(crate) fn cons_recved(cons: &str, sid: i64) -> Option<u64> {
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
pub(crate) fn watched_paths(addr: SocketAddr) -> Vec<String> {
    four_letter(addr, "wchp")
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Polls several futures together (in order, so their requests are submitted in order).
pub(crate) async fn join_all<F: Future + Unpin>(mut futs: Vec<F>) -> Vec<F::Output> {
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
