//! The workloads, run inside a child process for one client.
//!
//! The async clients (zk-tokio, zk-smol, zk-blocking's async handle, zookeeper-client) share
//! one generic implementation over [`AsyncZk`]; each runs it on its own executor. zk-blocking
//! does W1 with its blocking calls and W5 with one blocking `connect` per session (on 25
//! threads at a time); for W2-W4 it pipelines through `as_async()` under
//! `zk_client::blocking::block_on`, the executor its own blocking calls use.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::floor::{self, Floor};
use crate::floor_async;
use crate::stats::{self, Measured};
use crate::window::run_window;
use crate::{Spec, Workload, READ_NODE};

// ------------------------------------------------------------------ helpers

/// Sends a line to the parent and waits for its answer line.
pub fn ask_parent(msg: &str) -> String {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
    drop(out);
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim().to_string()
}

/// Wall clock in µs since the epoch (comparable across processes).
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A sleep that works under any executor: a thread sleeps, then wakes the task. Used only
/// off the hot paths (retry pauses, idle periods, timeouts).
pub struct ThreadSleep {
    dur: Duration,
    state: Option<Arc<(AtomicBool, Mutex<Option<Waker>>)>>,
}

pub fn sleep(dur: Duration) -> ThreadSleep {
    ThreadSleep { dur, state: None }
}

impl Future for ThreadSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let dur = self.dur;
        let st = self
            .state
            .get_or_insert_with(|| {
                let st = Arc::new((AtomicBool::new(false), Mutex::new(None::<Waker>)));
                let st2 = st.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(dur);
                    st2.0.store(true, Ordering::Release);
                    if let Some(w) = st2.1.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        w.wake();
                    }
                });
                st
            })
            .clone();
        *st.1.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        if st.0.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A started measurement.
struct Meter {
    t0: Instant,
    cpu0: stats::Cpu,
    clk: u64,
}

impl Meter {
    fn start(clk: u64) -> Meter {
        Meter {
            cpu0: stats::Cpu::now(clk),
            t0: Instant::now(),
            clk,
        }
    }
    fn finish(self, ops: u64, mut lat: Vec<Duration>) -> Measured {
        let secs = self.t0.elapsed().as_secs_f64();
        let cpu = stats::Cpu::now(self.clk).since(&self.cpu0);
        Measured {
            ops,
            secs,
            p50_us: stats::quantile_us(&mut lat, 0.5),
            p99_us: stats::quantile_us(&mut lat, 0.99),
            cpu_us: cpu.as_secs_f64() * 1e6,
            peak_rss_kib: stats::peak_rss_kib(),
            ..Measured::default()
        }
    }
}

/// W5's measurement, the same whichever client opens the sessions: the open latencies and
/// the time to open them all, then, once every session has read and sat idle for
/// `spec.idle_secs`, the CPU they used meanwhile and the memory they hold, per session.
struct W5Meter {
    rss0: u64,
    m: Meter,
    open_secs: f64,
}

impl W5Meter {
    fn start(spec: &Spec) -> W5Meter {
        W5Meter {
            rss0: stats::rss_kib(),
            m: Meter::start(spec.clk_tck),
            open_secs: 0.0,
        }
    }

    /// Every session is open.
    fn opened(&mut self) {
        self.open_secs = self.m.t0.elapsed().as_secs_f64();
    }

    /// The sessions sat idle since `idle0` (the CPU clock when every read was answered).
    fn finish(self, spec: &Spec, lat: Vec<Duration>, idle0: stats::Cpu) -> Measured {
        let idle_cpu = stats::Cpu::now(spec.clk_tck).since(&idle0);
        let rss1 = stats::rss_kib();
        let mut r = self.m.finish(spec.n as u64, lat);
        r.idle_cpu_us = idle_cpu.as_secs_f64() * 1e6 / spec.n as f64;
        r.secs = self.open_secs;
        r.kib_per_session = rss1.saturating_sub(self.rss0) as f64 / spec.n as f64;
        r
    }
}

fn failed(e: impl std::fmt::Display) -> Measured {
    Measured {
        error: Some(e.to_string()),
        peak_rss_kib: stats::peak_rss_kib(),
        ..Measured::default()
    }
}

/// Paths a workload uses, formatted before the measured phase.
pub fn w3_paths(spec: &Spec) -> Vec<String> {
    (0..spec.n)
        .map(|i| format!("/bench/w3/{}/n{i:06}", spec.tag))
        .collect()
}

pub fn w4_paths(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("/bench/w4/n{i:06}")).collect()
}

fn payload(len: usize) -> Bytes {
    Bytes::from(vec![b'x'; len])
}

/// Sessions opened at once in W5. The server's listen backlog is Java's default of 50:
/// more connects at once than that overflow it and wait a second for the SYN retransmit.
pub const W5_CONCURRENCY: usize = 25;

// ------------------------------------------------------------------ async clients

/// What the workloads need of an async client.
pub trait AsyncZk {
    type Watch;
    async fn get(&self, path: &str) -> Result<(), String>;
    async fn create(&self, path: &str, data: &Bytes) -> Result<(), String>;
    async fn get_watch(&self, path: &str) -> Result<Self::Watch, String>;
    /// Resolves when the watch fires; true if it was a data change.
    async fn fired(w: Self::Watch) -> bool;
}

impl AsyncZk for zk_client::Client {
    type Watch = zk_client::OneshotWatch;
    async fn get(&self, path: &str) -> Result<(), String> {
        self.get_data(path)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    async fn create(&self, path: &str, data: &Bytes) -> Result<(), String> {
        zk_client::Client::create(self, path, data.clone(), zk_client::CreateMode::Persistent)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    async fn get_watch(&self, path: &str) -> Result<Self::Watch, String> {
        self.get_data_watch(path)
            .await
            .map(|(_, _, w)| w)
            .map_err(|e| e.to_string())
    }
    async fn fired(w: Self::Watch) -> bool {
        matches!(w.await, Ok(e) if e.event_type == zk_client::EventType::NodeDataChanged)
    }
}

static KZ_CREATE: zookeeper_client::CreateOptions<'static> =
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());

/// kezhuw's zookeeper-client.
pub struct Kz(pub zookeeper_client::Client);

impl AsyncZk for Kz {
    type Watch = zookeeper_client::OneshotWatcher;
    async fn get(&self, path: &str) -> Result<(), String> {
        self.0
            .get_data(path)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    async fn create(&self, path: &str, data: &Bytes) -> Result<(), String> {
        self.0
            .create(path, data, &KZ_CREATE)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    async fn get_watch(&self, path: &str) -> Result<Self::Watch, String> {
        self.0
            .get_and_watch_data(path)
            .await
            .map(|(_, _, w)| w)
            .map_err(|e| e.to_string())
    }
    async fn fired(w: Self::Watch) -> bool {
        w.changed().await.event_type == zookeeper_client::EventType::NodeDataChanged
    }
}

/// W1: sequential reads.
pub async fn w1<C: AsyncZk>(c: &C, spec: &Spec) -> Measured {
    let mut lat = Vec::with_capacity(spec.n);
    let m = Meter::start(spec.clk_tck);
    for _ in 0..spec.n {
        let t = Instant::now();
        if let Err(e) = c.get(READ_NODE).await {
            return failed(e);
        }
        lat.push(t.elapsed());
    }
    m.finish(spec.n as u64, lat)
}

/// W2: pipelined reads.
pub async fn w2<C: AsyncZk>(c: &C, spec: &Spec) -> Measured {
    let m = Meter::start(spec.clk_tck);
    match run_window(spec.window, spec.n, |_| c.get(READ_NODE)).await {
        Ok(lat) => m.finish(spec.n as u64, lat),
        Err(e) => failed(e),
    }
}

/// W3: pipelined creates of 1 KiB nodes.
pub async fn w3<C: AsyncZk>(c: &C, spec: &Spec) -> Measured {
    let paths = w3_paths(spec);
    let data = payload(spec.size);
    let m = Meter::start(spec.clk_tck);
    match run_window(spec.window, spec.n, |i| c.create(&paths[i], &data)).await {
        Ok(lat) => m.finish(spec.n as u64, lat),
        Err(e) => failed(e),
    }
}

/// Races `f` against a timeout.
async fn within<T>(d: Duration, f: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        sleep(d).await;
        None
    })
    .await
}

/// W4: `n` data watches, a cut, the restore, then every node changed by the parent.
pub async fn w4<C: AsyncZk>(c: &C, spec: &Spec) -> Measured {
    let paths = w4_paths(spec.n);
    let slots: RefCell<Vec<Option<C::Watch>>> = RefCell::new((0..spec.n).map(|_| None).collect());
    let m = Meter::start(spec.clk_tck);
    let set = run_window(spec.window, spec.n, |i| {
        let slots = &slots;
        let f = c.get_watch(&paths[i]);
        async move {
            slots.borrow_mut()[i] = Some(f.await?);
            Ok(())
        }
    })
    .await;
    if let Err(e) = set {
        return failed(format!("setting watches: {e}"));
    }
    let set_secs = m.t0.elapsed().as_secs_f64();
    ask_parent("CUT");
    // The first read that succeeds after the cut went over the new connection, after the
    // watch restore the client sends first on it (replies come back in order).
    let t_cut = Instant::now();
    loop {
        match within(Duration::from_secs(5), c.get(READ_NODE)).await {
            Some(Ok(())) => break,
            _ if t_cut.elapsed() > Duration::from_secs(20) => {
                return failed("no successful read within 20 s of the cut")
            }
            _ => sleep(Duration::from_millis(1)).await,
        }
    }
    let done_us = unix_us();
    ask_parent(&format!("CHANGE {done_us}"));
    let notified = Cell::new(0u64);
    let waited = within(
        Duration::from_secs(60),
        run_window(spec.window, spec.n, |i| {
            let w = slots.borrow_mut()[i].take();
            let notified = &notified;
            async move {
                if let Some(w) = w {
                    if C::fired(w).await {
                        notified.set(notified.get() + 1);
                    }
                }
                Ok(())
            }
        }),
    )
    .await;
    let mut r = m.finish(spec.n as u64, Vec::new());
    r.secs = set_secs;
    r.notified = notified.get();
    if waited.is_none() {
        r.error = Some(format!(
            "only {} of {} notifications in 60 s",
            r.notified, spec.n
        ));
    }
    r
}

/// W5: `n` sessions, each its own connection; one read each, then idle.
pub async fn w5<C: AsyncZk, F, Fut>(spec: &Spec, connect: F) -> Measured
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<C, String>>,
{
    let mut meter = W5Meter::start(spec);
    let sessions: RefCell<Vec<Option<C>>> = RefCell::new((0..spec.n).map(|_| None).collect());
    let opened = run_window(W5_CONCURRENCY, spec.n, |i| {
        let f = connect();
        let sessions = &sessions;
        async move {
            sessions.borrow_mut()[i] = Some(f.await?);
            Ok(())
        }
    })
    .await;
    let lat = match opened {
        Ok(lat) => lat,
        Err(e) => return failed(format!("opening sessions: {e}")),
    };
    meter.opened();
    let sessions = sessions.into_inner();
    let read = run_window(100, spec.n, |i| {
        let s = sessions[i].as_ref();
        async move {
            match s {
                Some(s) => s.get(READ_NODE).await,
                None => Err("missing session".into()),
            }
        }
    })
    .await;
    if let Err(e) = read {
        return failed(format!("reads: {e}"));
    }
    let idle0 = stats::Cpu::now(spec.clk_tck);
    sleep(Duration::from_secs(spec.idle_secs)).await;
    let r = meter.finish(spec, lat, idle0);
    drop(sessions);
    r
}

// ------------------------------------------------------------------ runners per client

fn builder(addr: SocketAddr, timeout: Duration) -> zk_client::ClientBuilder {
    zk_client::ClientBuilder::new(&addr.to_string()).session_timeout(timeout)
}

fn session_timeout(spec: &Spec) -> Duration {
    match spec.workload {
        Workload::W4 => Duration::from_secs(30),
        _ => Duration::from_secs(10),
    }
}

fn target(spec: &Spec) -> SocketAddr {
    match spec.workload {
        Workload::W4 => spec.proxy,
        _ => spec.addr,
    }
}

async fn run_async<C: AsyncZk>(c: &C, spec: &Spec) -> Measured {
    match spec.workload {
        Workload::W1 => w1(c, spec).await,
        Workload::W2 => w2(c, spec).await,
        Workload::W3 => w3(c, spec).await,
        Workload::W4 => w4(c, spec).await,
        Workload::W5 => unreachable!("W5 opens its own sessions"),
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn run_zk_tokio(spec: &Spec) -> Measured {
    let b = builder(target(spec), session_timeout(spec));
    tokio_rt().block_on(run_connected(spec, || zk_tokio::connect(&b), Form::Tuned))
}

/// How a row writes W2 and W3: with the hand-tuned window, or the way a user would.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Tuned,
    Natural,
}

/// Runs `spec` on a client that `connect` opens (an adapter's `connect`, on the runtime
/// the caller blocks on): W5 opens its own sessions through it, the other workloads run
/// on one session. The adapters' rows differ only in `connect`, the runtime and `form`.
async fn run_connected<F, Fut>(spec: &Spec, connect: F, form: Form) -> Measured
where
    F: Fn() -> Fut,
    Fut: Future<Output = zk_client::Result<zk_client::Client>>,
{
    if spec.workload == Workload::W5 {
        return w5(spec, || {
            let f = connect();
            async move { f.await.map_err(|e| e.to_string()) }
        })
        .await;
    }
    match connect().await {
        Ok(c) => match (form, spec.workload) {
            (Form::Natural, Workload::W2 | Workload::W3) => natural_w2_w3(&c, spec).await,
            _ => run_async(&c, spec).await,
        },
        Err(e) => failed(e),
    }
}

/// W2 (or, for any other workload, W3) written the way a user would (see
/// [`run_zk_tokio_mt`]).
async fn natural_w2_w3(c: &zk_client::Client, spec: &Spec) -> Measured {
    if spec.workload == Workload::W2 {
        natural_window(spec, |_| c.get_data(READ_NODE)).await
    } else {
        let paths = w3_paths(spec);
        let data = payload(spec.size);
        natural_window(spec, |i| {
            c.create(&paths[i], &data[..], zk_client::CreateMode::Persistent)
        })
        .await
    }
}

/// zk-tokio as `#[tokio::main]` gives it (the default multi-threaded runtime),
/// with W2 and W3 written the way a user would: the calls send their requests when
/// made, so a window is a queue of plain futures, awaited oldest first (replies
/// come back in that order), with no spawning and no join machinery.
pub fn run_zk_tokio_mt(spec: &Spec) -> Measured {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    run_zk_tokio_natural(spec, rt)
}

/// zk-tokio on the default multi-threaded runtime, with the workload in a
/// spawned task (as a service's request handlers run), which `main` awaits:
/// replies wake the task on the worker that read them, where `zk-tokio-mt`'s
/// `block_on` caller is woken from a worker on another thread. W1–W3 only.
pub fn run_zk_tokio_mt_task(spec: &Spec) -> Measured {
    if !matches!(spec.workload, Workload::W1 | Workload::W2 | Workload::W3) {
        return run_zk_tokio_mt(spec);
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let b = builder(target(spec), session_timeout(spec));
    let spec = spec.clone();
    rt.block_on(async move {
        // Not `run_connected`: the futures of its other paths (W4, W5, the tuned windows)
        // hold `RefCell`s across awaits, so it could not be spawned.
        let task = tokio::spawn(async move {
            match zk_tokio::connect(&b).await {
                Ok(c) if spec.workload == Workload::W1 => w1(&c, &spec).await,
                Ok(c) => natural_w2_w3(&c, &spec).await,
                Err(e) => failed(e),
            }
        });
        task.await.unwrap_or_else(failed)
    })
}

/// zk-tokio on a current-thread runtime with W2 and W3 written as
/// [`run_zk_tokio_mt`] writes them: the natural form beside the hand-tuned
/// window (`zk-tokio`) on the same runtime.
pub fn run_zk_tokio_ct_natural(spec: &Spec) -> Measured {
    run_zk_tokio_natural(spec, tokio_rt())
}

fn run_zk_tokio_natural(spec: &Spec, rt: tokio::runtime::Runtime) -> Measured {
    let b = builder(target(spec), session_timeout(spec));
    rt.block_on(run_connected(spec, || zk_tokio::connect(&b), Form::Natural))
}

/// A window of eager futures: keep `window` calls in flight by awaiting the oldest.
async fn natural_window<T, F, Fut>(spec: &Spec, mut call: F) -> Measured
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = zk_client::Result<T>>,
{
    let mut lat = Vec::with_capacity(spec.n);
    let m = Meter::start(spec.clk_tck);
    let mut q = std::collections::VecDeque::with_capacity(spec.window);
    for i in 0..spec.n {
        if q.len() == spec.window {
            let (t, f): (Instant, Fut) = q.pop_front().unwrap();
            if let Err(e) = f.await {
                return failed(e);
            }
            lat.push(t.elapsed());
        }
        q.push_back((Instant::now(), call(i)));
    }
    while let Some((t, f)) = q.pop_front() {
        if let Err(e) = f.await {
            return failed(e);
        }
        lat.push(t.elapsed());
    }
    m.finish(spec.n as u64, lat)
}

/// zk-blocking with kazoo's `*_async` calls for W2 and W3: one thread keeps the
/// window of `Pending` handles and waits for the oldest.
pub fn run_zk_blocking_async(spec: &Spec) -> Measured {
    let b = builder(target(spec), session_timeout(spec));
    if !matches!(spec.workload, Workload::W2 | Workload::W3) {
        return run_zk_blocking(spec);
    }
    let c = match zk_blocking::connect(&b) {
        Ok(c) => c.with_timeout(None),
        Err(e) => return failed(e),
    };
    let paths = w3_paths(spec);
    let data = payload(spec.size);
    if spec.workload == Workload::W2 {
        pending_window(spec, |_| c.get_async(READ_NODE))
    } else {
        pending_window(spec, |i| {
            c.create_async(&paths[i], &data[..], zk_client::CreateMode::Persistent)
        })
    }
}

fn pending_window<T>(
    spec: &Spec,
    mut call: impl FnMut(usize) -> zk_blocking::Pending<T>,
) -> Measured {
    let mut lat = Vec::with_capacity(spec.n);
    let m = Meter::start(spec.clk_tck);
    let mut q = std::collections::VecDeque::with_capacity(spec.window);
    for i in 0..spec.n {
        if q.len() == spec.window {
            let (t, p): (Instant, zk_blocking::Pending<T>) = q.pop_front().unwrap();
            if let Err(e) = p.wait() {
                return failed(e);
            }
            lat.push(t.elapsed());
        }
        q.push_back((Instant::now(), call(i)));
    }
    while let Some((t, p)) = q.pop_front() {
        if let Err(e) = p.wait() {
            return failed(e);
        }
        lat.push(t.elapsed());
    }
    m.finish(spec.n as u64, lat)
}

/// zk-smol with W2 and W3 written the natural way (plain eager futures awaited
/// oldest first, no spawning), beside the hand-tuned `zk-smol` row.
pub fn run_zk_smol_natural(spec: &Spec) -> Measured {
    let b = builder(target(spec), session_timeout(spec));
    smol::block_on(run_connected(spec, || zk_smol::connect(&b), Form::Natural))
}

pub fn run_zk_smol(spec: &Spec) -> Measured {
    let b = builder(target(spec), session_timeout(spec));
    smol::block_on(run_connected(spec, || zk_smol::connect(&b), Form::Tuned))
}

pub fn run_zookeeper_client(spec: &Spec) -> Measured {
    let addr = target(spec).to_string();
    let timeout = session_timeout(spec);
    let connect = || {
        let addr = addr.clone();
        async move {
            zookeeper_client::Client::connector()
                .with_session_timeout(timeout)
                .connect(&addr)
                .await
                .map(Kz)
                .map_err(|e| e.to_string())
        }
    };
    tokio_rt().block_on(async {
        if spec.workload == Workload::W5 {
            return w5(spec, connect).await;
        }
        match connect().await {
            Ok(c) => run_async(&c, spec).await,
            Err(e) => failed(e),
        }
    })
}

pub fn run_zk_blocking(spec: &Spec) -> Measured {
    use zk_client::blocking::block_on;
    let b = builder(target(spec), session_timeout(spec));
    if spec.workload == Workload::W5 {
        return blocking_w5(spec, &b);
    }
    let c = match zk_blocking::connect(&b) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    match spec.workload {
        Workload::W1 => {
            let mut lat = Vec::with_capacity(spec.n);
            let m = Meter::start(spec.clk_tck);
            for _ in 0..spec.n {
                let t = Instant::now();
                if let Err(e) = c.get_data(READ_NODE) {
                    return failed(e);
                }
                lat.push(t.elapsed());
            }
            m.finish(spec.n as u64, lat)
        }
        _ => block_on(run_async(c.as_async(), spec), None).unwrap_or_else(|| failed("timeout")),
    }
}

fn blocking_w5(spec: &Spec, b: &zk_client::ClientBuilder) -> Measured {
    let mut meter = W5Meter::start(spec);
    let mut sessions = Vec::with_capacity(spec.n);
    let mut lat = Vec::with_capacity(spec.n);
    for chunk in (0..spec.n).collect::<Vec<_>>().chunks(W5_CONCURRENCY) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let t = Instant::now();
                    zk_blocking::connect(&b).map(|c| (c, t.elapsed()))
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(Ok((c, d))) => {
                    sessions.push(c);
                    lat.push(d);
                }
                Ok(Err(e)) => return failed(format!("opening sessions: {e}")),
                Err(_) => return failed("connect thread panicked"),
            }
        }
    }
    meter.opened();
    for s in &sessions {
        if let Err(e) = s.get_data(READ_NODE) {
            return failed(format!("reads: {e}"));
        }
    }
    let idle0 = stats::Cpu::now(spec.clk_tck);
    std::thread::sleep(Duration::from_secs(spec.idle_secs));
    meter.finish(spec, lat, idle0)
}

// ------------------------------------------------------------------ floor

pub fn run_floor(spec: &Spec) -> Measured {
    match floor_inner(spec) {
        Ok(m) => m,
        Err(e) => failed(e),
    }
}

fn floor_inner(spec: &Spec) -> std::io::Result<Measured> {
    let timeout_ms = session_timeout(spec).as_millis() as i32;
    match spec.workload {
        Workload::W1 => {
            let mut f = Floor::connect(spec.addr, timeout_ms)?;
            let (frames, _) =
                floor::encode_all(std::iter::once(floor::get_data(READ_NODE, false)), 1);
            let mut lat = Vec::with_capacity(spec.n);
            let m = Meter::start(spec.clk_tck);
            for _ in 0..spec.n {
                let t = Instant::now();
                f.write(&frames)?;
                let mut got = 0;
                while got == 0 {
                    got = f.read_replies(|_| {})?;
                }
                lat.push(t.elapsed());
            }
            Ok(m.finish(spec.n as u64, lat))
        }
        Workload::W2 | Workload::W3 => {
            let mut f = Floor::connect(spec.addr, timeout_ms)?;
            let (frames, offs) = w2_w3_frames(spec);
            let m = Meter::start(spec.clk_tck);
            let (lat, errors) = f.pipeline(&frames, &offs, spec.window, || {})?;
            let mut r = m.finish(spec.n as u64, lat);
            if errors > 0 {
                r.error = Some(format!("{errors} error replies"));
            }
            Ok(r)
        }
        Workload::W4 => {
            let paths = w4_paths(spec.n);
            let mut f = Floor::connect(spec.proxy, timeout_ms)?;
            let (frames, offs) =
                floor::encode_all(paths.iter().map(|p| floor::get_data(p, true)), 1);
            let m = Meter::start(spec.clk_tck);
            let (_, errors) = f.pipeline(&frames, &offs, spec.window, || {})?;
            if errors > 0 {
                return Ok(failed(format!("{errors} errors setting watches")));
            }
            let set_secs = m.t0.elapsed().as_secs_f64();
            ask_parent("CUT");
            // The cut shows as EOF or a reset.
            while f.read_replies(|_| {}).is_ok() {}
            let (id, pw, zxid) = (f.session_id, f.passwd.clone(), f.last_zxid);
            let mut f = Floor::connect_resume(spec.proxy, timeout_ms, id, pw, zxid)?;
            f.restore_watches(&paths, READ_NODE)?;
            ask_parent(&format!("CHANGE {}", unix_us()));
            let got = f.count_notifications(spec.n as u64, Duration::from_secs(60));
            let mut r = m.finish(spec.n as u64, Vec::new());
            r.secs = set_secs;
            r.notified = got;
            if got < spec.n as u64 {
                r.error = Some(format!("only {got} of {} notifications", spec.n));
            }
            Ok(r)
        }
        Workload::W5 => {
            let mut meter = W5Meter::start(spec);
            let mut sessions: Vec<Floor> = Vec::with_capacity(spec.n);
            let mut lat = Vec::with_capacity(spec.n);
            for chunk in (0..spec.n).collect::<Vec<_>>().chunks(W5_CONCURRENCY) {
                let t = Instant::now();
                let mut batch = Vec::with_capacity(chunk.len());
                for _ in chunk {
                    let mut f = Floor::open(spec.addr, 4096)?;
                    f.send_connect(timeout_ms, None, 0)?;
                    batch.push(f);
                }
                for mut f in batch {
                    f.finish_connect()?;
                    lat.push(t.elapsed());
                    sessions.push(f);
                }
            }
            meter.opened();
            let (frames, _) =
                floor::encode_all(std::iter::once(floor::get_data(READ_NODE, false)), 1);
            for f in &mut sessions {
                f.write(&frames)?;
            }
            for f in &mut sessions {
                while f.read_replies(|_| {})? == 0 {}
            }
            let idle0 = stats::Cpu::now(spec.clk_tck);
            std::thread::sleep(Duration::from_secs(spec.idle_secs));
            Ok(meter.finish(spec, lat, idle0))
        }
    }
}

/// The floors' W2 (reads) or W3 (creates), encoded up front, xids from 1: the frames and
/// where each starts (see [`floor::encode_all`]).
fn w2_w3_frames(spec: &Spec) -> (bytes::Bytes, Vec<usize>) {
    if spec.workload == Workload::W2 {
        floor::encode_all((0..spec.n).map(|_| floor::get_data(READ_NODE, false)), 1)
    } else {
        let data = payload(spec.size);
        let paths = w3_paths(spec);
        floor::encode_all(paths.iter().map(|p| floor::create(p, data.clone())), 1)
    }
}

// ------------------------------------------------------------------ floors on runtimes

/// W1-W3 of the floor client on a runtime's reactor (see `floor_async`).
async fn floor_on<S: floor_async::Sock>(
    spec: &Spec,
    wrap: impl FnOnce(std::net::TcpStream) -> std::io::Result<S>,
) -> std::io::Result<Measured> {
    let timeout_ms = session_timeout(spec).as_millis() as i32;
    let mut f = floor_async::connect(spec.addr, timeout_ms, wrap)?;
    match spec.workload {
        Workload::W1 => {
            let (frame, _) =
                floor::encode_all(std::iter::once(floor::get_data(READ_NODE, false)), 1);
            let m = Meter::start(spec.clk_tck);
            let lat = f.sequential(&frame, spec.n).await?;
            Ok(m.finish(spec.n as u64, lat))
        }
        Workload::W2 | Workload::W3 => {
            let (frames, offs) = w2_w3_frames(spec);
            let m = Meter::start(spec.clk_tck);
            let (lat, errors) = f.pipeline(&frames, &offs, spec.window).await?;
            let mut r = m.finish(spec.n as u64, lat);
            if errors > 0 {
                r.error = Some(format!("{errors} error replies"));
            }
            Ok(r)
        }
        _ => Ok(failed("the runtime floors run W1-W3")),
    }
}

fn tokio_floor(spec: &Spec) -> impl Future<Output = Measured> + Send + 'static {
    let spec = spec.clone();
    async move {
        floor_on(&spec, tokio::net::TcpStream::from_std)
            .await
            .unwrap_or_else(failed)
    }
}

/// The floor in `block_on` on tokio's default multi-threaded runtime (beside `zk-tokio-mt`).
pub fn run_floor_tokio_mt(spec: &Spec) -> Measured {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(tokio_floor(spec))
}

/// The floor in a spawned task on the multi-threaded runtime (beside `zk-tokio-mt-task`).
pub fn run_floor_tokio_mt_task(spec: &Spec) -> Measured {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async { tokio::spawn(tokio_floor(spec)).await.unwrap_or_else(failed) })
}

/// The floor on a current-thread runtime (beside `zk-tokio` and `zk-tokio-natural`).
pub fn run_floor_tokio_ct(spec: &Spec) -> Measured {
    tokio_rt().block_on(tokio_floor(spec))
}

/// The floor on smol (beside `zk-smol` and `zk-smol-natural`).
pub fn run_floor_smol(spec: &Spec) -> Measured {
    smol::block_on(async {
        floor_on(spec, smol::Async::new)
            .await
            .unwrap_or_else(failed)
    })
}
