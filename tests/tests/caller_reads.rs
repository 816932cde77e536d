//! Callers read their own replies (zk-client's `ConnReader`): a regression test for
//! a caller polled by an executor of its own inside one tokio task. tokio's
//! cooperative budget, once spent, makes a socket poll return Pending and wake the
//! caller at once; a window of futures that re-polls whichever were woken, all
//! within one poll of its task, then spun forever (the budget only comes back when
//! the task yields), so no reply was read and the sessions hit their read timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use zk_client::ClientBuilder;
use zk_tests::shared_server;

/// Indexes of the futures woken since the window last looked.
#[derive(Default)]
struct Woken {
    list: Mutex<Vec<usize>>,
    parent: Mutex<Option<Waker>>,
}

struct One {
    idx: usize,
    queued: AtomicBool,
    woken: Arc<Woken>,
}

impl Wake for One {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.woken.list.lock().unwrap().push(self.idx);
            if let Some(w) = self.woken.parent.lock().unwrap().clone() {
                w.wake();
            }
        }
    }
}

type Call = Pin<Box<dyn Future<Output = zk_client::Result<()>> + Send>>;

/// Polls every woken call again, in one poll, until none is woken.
struct Window {
    calls: Vec<Option<Call>>,
    wakers: Vec<(Arc<One>, Waker)>,
    woken: Arc<Woken>,
    left: usize,
    failed: Option<zk_client::Error>,
}

impl Future for Window {
    type Output = Option<zk_client::Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        *this.woken.parent.lock().unwrap() = Some(cx.waker().clone());
        loop {
            let now: Vec<usize> = std::mem::take(&mut *this.woken.list.lock().unwrap());
            if now.is_empty() {
                break;
            }
            for i in now {
                let (one, waker) = &this.wakers[i];
                one.queued.store(false, Ordering::Release);
                if let Some(f) = this.calls[i].as_mut() {
                    if let Poll::Ready(r) = f.as_mut().poll(&mut Context::from_waker(waker)) {
                        this.calls[i] = None;
                        this.left -= 1;
                        if let Err(e) = r {
                            this.failed.get_or_insert(e);
                        }
                    }
                }
            }
        }
        if this.left == 0 {
            Poll::Ready(this.failed.take())
        } else {
            Poll::Pending
        }
    }
}

/// A multi-thread tokio runtime, and a builder for the shared server with
/// sessions of `session_s` seconds.
fn multi_thread(session_s: u64) -> (tokio::runtime::Runtime, ClientBuilder) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b = ClientBuilder::new(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(session_s));
    (rt, b)
}

#[test]
fn a_window_of_calls_in_one_task_on_the_multi_thread_runtime() {
    let (rt, b) = multi_thread(6);
    rt.block_on(async {
        // One call on each of more sessions than one task's budget (128 socket
        // polls that find data) in one go.
        let n = 200;
        let mut clients = Vec::new();
        for _ in 0..n {
            clients.push(zk_tokio::connect(&b).await.unwrap());
        }
        let woken = Arc::new(Woken::default());
        let calls: Vec<Option<Call>> = clients
            .iter()
            .map(|zk| {
                let f = zk.exists("/");
                Some(Box::pin(async move { f.await.map(|_| ()) }) as Call)
            })
            .collect();
        let wakers = (0..n)
            .map(|idx| {
                let one = Arc::new(One {
                    idx,
                    queued: AtomicBool::new(true),
                    woken: woken.clone(),
                });
                woken.list.lock().unwrap().push(idx);
                (one.clone(), Waker::from(one))
            })
            .collect();
        let window = Window {
            calls,
            wakers,
            woken,
            left: n,
            failed: None,
        };
        let mut window = Box::pin(window);
        // Every call registers as its socket's reader; then every reply arrives
        // while this thread sleeps, so the next poll finds data on every socket.
        std::future::poll_fn(|cx| {
            let _ = window.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        std::thread::sleep(Duration::from_millis(300));
        // A spinning window never finishes; the read timeout (4 s) fails its calls.
        let failed = tokio::time::timeout(Duration::from_secs(30), window)
            .await
            .expect("the window did not finish");
        assert!(failed.is_none(), "a call failed: {failed:?}");
        for zk in clients {
            zk.close().await.unwrap();
        }
    });
}

/// zk-blocking: a thread blocked in a call reads the socket itself (one thread at
/// a time; what it reads for the others wakes them, and the I/O thread reads when
/// nobody waits). Eight threads on one client each write and read back their own
/// node 200 times, while a watch set before they start fires from another client
/// and a ninth thread lists the parent: every answer is the thread's own, and the
/// event arrives.
#[test]
fn blocking_callers_on_many_threads_share_one_connection() {
    use zk_blocking::{CreateMode, EventType};
    let b = ClientBuilder::new(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(6));
    let zk = Arc::new(zk_blocking::connect(&b).unwrap());
    let other = zk_blocking::connect(&b).unwrap();
    let base = format!("/caller-reads-blocking-{}", std::process::id());
    zk.create(&base, "", CreateMode::Persistent).unwrap();
    zk.create(&format!("{base}/w"), "0", CreateMode::Persistent)
        .unwrap();
    let (_, _, watch) = zk.get_data_watch(&format!("{base}/w")).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let zk = zk.clone();
            let node = format!("{base}/t{t}");
            std::thread::spawn(move || {
                zk.create(&node, "", CreateMode::Persistent).unwrap();
                for j in 0..200 {
                    let v = format!("{t}:{j}");
                    zk.set_data(&node, v.as_str(), None).unwrap();
                    let (data, stat) = zk.get_data(&node).unwrap();
                    assert_eq!(&data[..], v.as_bytes(), "thread {t} read another's answer");
                    assert_eq!(stat.version, j + 1);
                }
            })
        })
        .collect();
    let lister = {
        let zk = zk.clone();
        let base = base.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            for _ in 0..200 {
                most = most.max(zk.get_children(&base).unwrap().len());
            }
            most
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    other.set_data(&format!("{base}/w"), "1", None).unwrap();
    let event = watch.wait_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    for w in writers {
        w.join().expect("a writer thread failed");
    }
    let most = lister.join().unwrap();
    assert!((1..=9).contains(&most), "the parent listed {most} children");
    assert_eq!(zk.get_children(&base).unwrap().len(), 9);
    // Nothing is left waiting: a call made now, with nobody else on the
    // connection, is answered too.
    assert!(zk.exists(&format!("{base}/t7")).unwrap().is_some());
}

/// zk-blocking: a thread waiting on its socket for a reply that never comes (the
/// server's traffic is held) is woken when the session drops the connection at
/// its read timeout, and fails with ConnectionLoss rather than waiting on; once
/// the traffic flows again the client reconnects and the next call succeeds.
#[test]
fn a_blocked_caller_wakes_when_its_connection_is_dropped() {
    use zk_blocking::Error;
    let server = shared_server();
    let proxy = zk_tests::proxy::Proxy::start(server.addr());
    let b = ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(3));
    let zk = zk_blocking::connect(&b).unwrap().with_timeout(None);
    assert!(zk.exists("/").unwrap().is_some());
    proxy.black_hole(true);
    let t = std::time::Instant::now();
    let r = zk.exists("/");
    let waited = t.elapsed();
    assert!(
        matches!(r, Err(Error::ConnectionLoss)),
        "a held call ended with {r:?}"
    );
    // The read timeout is two thirds of the session timeout (2 s); the wait may not
    // outlast the session by much.
    assert!(
        waited < Duration::from_secs(6),
        "the call waited {waited:?}"
    );
    proxy.black_hole(false);
    let t = std::time::Instant::now();
    loop {
        match zk.exists("/") {
            Ok(s) => {
                assert!(s.is_some());
                break;
            }
            Err(e) if t.elapsed() > Duration::from_secs(20) => panic!("no reconnect: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A call polled once (it registered as its socket's reader) and then kept without
/// being polled must not stall the connection: the connection task, woken by every
/// readiness of the socket, reads what the held call does not, so a watch event
/// behind the held call's reply still arrives and the session never hits its read
/// timeout (tests/isolation.rs measures the same for other callers' replies).
async fn stalled_caller_does_not_stall_the_connection(
    zk: zk_client::Client,
    other: zk_client::Client,
    name: &str,
) {
    use zk_client::{CreateMode, EventType, SessionState};
    let base = format!("/caller-reads-stalled-{name}-{}", std::process::id());
    zk.create(&base, "0", CreateMode::Persistent).await.unwrap();
    let session = zk.session().unwrap().id;
    let mut states = zk.state_stream();
    let (_, _, watch) = zk.get_data_watch(&base).await.unwrap();
    // Polled once, then held: it is the socket's reader, and nobody polls it.
    let mut stalled = Box::pin(zk.exists("/"));
    std::future::poll_fn(|cx| {
        assert!(stalled.as_mut().poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    other.set_data(&base, "1", None).await.unwrap();
    // Session timeout 3 s: pings every second; the read timeout is 2 s.
    let event = tokio_or_smol_timeout(Duration::from_secs(10), watch)
        .await
        .expect("the watch event never came while a call sat unpolled")
        .unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    // Past two read timeouts with the call still held: the connection stayed up.
    sleep(Duration::from_secs(5)).await;
    assert_eq!(zk.session().unwrap().id, session);
    let mut seen = Vec::new();
    while let Some(s) = std::future::poll_fn(|cx| {
        let mut next = std::pin::pin!(states.next());
        match next.as_mut().poll(cx) {
            Poll::Ready(s) => Poll::Ready(s),
            Poll::Pending => Poll::Ready(None),
        }
    })
    .await
    {
        seen.push(s);
    }
    assert!(
        !seen.contains(&SessionState::Suspended),
        "{name}: the connection was dropped while a call sat unpolled: {seen:?}"
    );
    // The held call completes once polled again.
    assert!(stalled.await.unwrap().is_some());
    zk.delete(&base, None).await.unwrap();
}

/// Waits for `f` at most `d` on whichever runtime runs the test (a thread timer:
/// neither runtime's own).
async fn tokio_or_smol_timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    let timer = async {
        sleep(d).await;
        None
    };
    let f = async { Some(f.await) };
    let mut f = std::pin::pin!(f);
    let mut timer = std::pin::pin!(timer);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        timer.as_mut().poll(cx)
    })
    .await
}

/// A sleep on a thread of its own (the test runs on tokio and on smol).
async fn sleep(d: Duration) {
    let done = Arc::new(AtomicBool::new(false));
    let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
    {
        let (done, waker) = (done.clone(), waker.clone());
        std::thread::spawn(move || {
            std::thread::sleep(d);
            done.store(true, Ordering::SeqCst);
            if let Some(w) = waker.lock().unwrap().take() {
                w.wake();
            }
        });
    }
    std::future::poll_fn(|cx| {
        *waker.lock().unwrap() = Some(cx.waker().clone());
        if done.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[test]
fn a_stalled_caller_does_not_stall_the_connection_tokio_mt() {
    let (rt, b) = multi_thread(3);
    rt.block_on(async {
        let zk = zk_tokio::connect(&b).await.unwrap();
        let other = zk_tokio::connect(&b).await.unwrap();
        stalled_caller_does_not_stall_the_connection(zk, other, "tokio").await;
    });
}

#[test]
fn a_stalled_caller_does_not_stall_the_connection_smol() {
    let b = ClientBuilder::new(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(3));
    smol::block_on(async {
        let zk = zk_smol::connect(&b).await.unwrap();
        let other = zk_smol::connect(&b).await.unwrap();
        stalled_caller_does_not_stall_the_connection(zk, other, "smol").await;
    });
}

/// zk-blocking: the end of the stream reaching a thread that waits on the socket (the
/// server closed it while a call was held) fails the call with ConnectionLoss at
/// once, well before the read timeout (20 s here): the caller leaves the socket to
/// the I/O thread, which reports the end, instead of finding the end again and again.
#[test]
fn a_blocked_caller_sees_the_connection_end() {
    use zk_blocking::Error;
    let server = shared_server();
    let proxy = zk_tests::proxy::Proxy::start(server.addr());
    let b = ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(30));
    let zk = Arc::new(zk_blocking::connect(&b).unwrap().with_timeout(None));
    assert!(zk.exists("/").unwrap().is_some());
    proxy.black_hole(true);
    let held = {
        let zk = zk.clone();
        std::thread::spawn(move || {
            let r = zk.exists("/");
            (r, std::time::Instant::now())
        })
    };
    // The call is on the wire and its thread waits on the socket.
    std::thread::sleep(Duration::from_millis(300));
    let cut = std::time::Instant::now();
    proxy.cut_all();
    let (r, ended) = held.join().unwrap();
    assert!(matches!(r, Err(Error::ConnectionLoss)), "{r:?}");
    let after = ended.duration_since(cut);
    assert!(
        after < Duration::from_secs(3),
        "the call ended {after:?} after the cut"
    );
    proxy.black_hole(false);
}
