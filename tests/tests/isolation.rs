//! No caller waits on another (issue 20): with calls that were polled once and are
//! then held without being polled again (the `select!` / soft-timeout pattern, a
//! task busy elsewhere), every other caller's reply still arrives within its
//! network time, on every adapter and runtime, and `close()` returns promptly.
//!
//! The server sits behind the kit's proxy with [`LATENCY`] added to everything it
//! sends, so a reply that waited for anything but the network shows. Each held
//! call is polled with a waker that does nothing (a task that never polls it
//! again), right after the measured call registered itself, so it is the last
//! caller to have asked for the socket's readiness.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use zk_client::ClientBuilder;
use zk_tests::proxy::Proxy;
use zk_tests::shared_server;

/// Added by the proxy to every server→client byte.
const LATENCY: Duration = Duration::from_millis(40);
/// Calls measured alone, and then each beside a freshly held call.
const ALONE: usize = 5;
const TRIALS: usize = 20;
/// A session long enough that the driver's timers (a third of it, for pings) do
/// not rescue a stalled read within the bound.
const SESSION: Duration = Duration::from_secs(30);
/// When the held call is made, after the measured one (well within [`LATENCY`]).
const HOLD_AFTER: Duration = Duration::from_millis(10);

type Held = Pin<Box<dyn Future<Output = zk_client::Result<Option<zk_client::Stat>>> + Send>>;

/// Polls `f` once with a waker that wakes nothing: the task that holds it never
/// polls it again.
fn poll_once_and_hold(mut f: Held) -> Held {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        f.as_mut().poll(&mut cx).is_pending(),
        "a call through a 40 ms proxy completed on its first poll"
    );
    f
}

/// Polls `f` once with the current task's waker (so it registers as a reader).
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match Pin::new(&mut *f).poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// A call made and polled once (then held) on another thread [`HOLD_AFTER`] from
/// now: while a call made just before it waits for its reply, which takes longer.
fn hold_soon(zk: &zk_client::Client) -> std::thread::JoinHandle<Held> {
    let zk = zk.clone();
    std::thread::spawn(move || {
        std::thread::sleep(HOLD_AFTER);
        poll_once_and_hold(Box::pin(zk.exists("/")))
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The measured caller, on whichever runtime runs it: `ALONE` calls alone, then
/// `TRIALS` calls each with one more call held (they accumulate); every call's
/// time is at most twice the alone median plus 100 ms. Then `close()` returns
/// within a second with every held call still held, and a held call polled after
/// it completes with an error rather than hanging.
async fn isolated(zk: zk_client::Client, name: &str) {
    let mut alone = Vec::new();
    for _ in 0..ALONE {
        let t = Instant::now();
        zk.exists("/").await.unwrap();
        alone.push(t.elapsed());
    }
    let alone = median(alone);
    assert!(
        alone >= LATENCY,
        "{name}: the proxy's latency is not applied"
    );
    let bound = alone * 2 + Duration::from_millis(100);
    let mut held: Vec<Held> = Vec::new();
    let mut worst = Duration::ZERO;
    for i in 0..TRIALS {
        let t = Instant::now();
        let mut mine = Box::pin(zk.exists("/"));
        // The measured call registers first; the held one, from another thread
        // while the measured one waits, last.
        let early = poll_once(&mut mine).await;
        let other = hold_soon(&zk);
        let r = match early {
            Some(r) => r,
            None => mine.await,
        };
        r.unwrap();
        let took = t.elapsed();
        held.push(other.join().unwrap());
        worst = worst.max(took);
        assert!(
            took <= bound,
            "{name}: trial {i}: a reply took {took:?} with {} call(s) held (alone {alone:?}, \
             bound {bound:?})",
            held.len()
        );
    }
    eprintln!(
        "{name}: alone {alone:?}, worst of {TRIALS} beside held calls {worst:?} (bound {bound:?})"
    );
    let t = Instant::now();
    zk.close().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "{name}: close() took {:?} with {} calls held",
        t.elapsed(),
        held.len()
    );
    // A held call polled again ends (its reply came before the close, or the close
    // failed it): none hangs.
    for h in held {
        let r = poll_once(&mut Box::pin(h)).await;
        assert!(
            r.is_some(),
            "{name}: a held call still pending after close()"
        );
    }
}

fn builder(proxy: &Proxy) -> ClientBuilder {
    ClientBuilder::new(&proxy.connect_string()).session_timeout(SESSION)
}

fn proxy() -> Proxy {
    let proxy = Proxy::start(shared_server().addr());
    proxy.set_latency(LATENCY);
    proxy
}

#[test]
fn held_calls_do_not_delay_others_tokio_multi_thread_block_on() {
    let proxy = proxy();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let zk = zk_tokio::connect(&builder(&proxy)).await.unwrap();
        isolated(zk, "tokio-mt block_on").await;
    });
}

#[test]
fn held_calls_do_not_delay_others_tokio_multi_thread_spawned() {
    let proxy = proxy();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let zk = zk_tokio::connect(&builder(&proxy)).await.unwrap();
        tokio::spawn(isolated(zk, "tokio-mt task")).await.unwrap();
    });
}

#[test]
fn held_calls_do_not_delay_others_tokio_current_thread() {
    let proxy = proxy();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let zk = zk_tokio::connect(&builder(&proxy)).await.unwrap();
        isolated(zk, "tokio-ct").await;
    });
}

#[test]
fn held_calls_do_not_delay_others_smol() {
    let proxy = proxy();
    smol::block_on(async {
        let zk = zk_smol::connect(&builder(&proxy)).await.unwrap();
        isolated(zk, "smol").await;
    });
}

/// zk-blocking: held `*_async` handles, each looked at once, and a thread that
/// holds calls of the client's async face polled once, never delay a thread that
/// waits in a blocking call.
#[test]
fn held_calls_do_not_delay_others_blocking() {
    let proxy = proxy();
    let zk = zk_blocking::connect(&builder(&proxy)).unwrap();
    let mut alone = Vec::new();
    for _ in 0..ALONE {
        let t = Instant::now();
        zk.exists("/").unwrap();
        alone.push(t.elapsed());
    }
    let alone = median(alone);
    assert!(alone >= LATENCY, "the proxy's latency is not applied");
    let bound = alone * 2 + Duration::from_millis(100);
    let mut handles = Vec::new();
    let mut held: Vec<Held> = Vec::new();
    let mut worst = Duration::ZERO;
    for i in 0..TRIALS {
        let mut h = zk.exists_async("/");
        let _ = h.try_get();
        handles.push(h);
        let t = Instant::now();
        let other = hold_soon(zk.as_async());
        zk.exists("/").unwrap();
        let took = t.elapsed();
        held.push(other.join().unwrap());
        worst = worst.max(took);
        assert!(
            took <= bound,
            "blocking: trial {i}: a reply took {took:?} with {} calls held (alone {alone:?})",
            handles.len() + held.len()
        );
    }
    eprintln!("blocking: alone {alone:?}, worst {worst:?} (bound {bound:?})");
    let t = Instant::now();
    zk.close().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "blocking: close() took {:?} with calls held",
        t.elapsed()
    );
    for h in handles {
        let _ = h.wait_timeout(Some(Duration::from_secs(1)));
    }
}
