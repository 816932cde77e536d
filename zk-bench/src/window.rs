//! A window of concurrent workers, written by hand so that every async client runs the
//! same pipelining on its own executor: `window` worker futures each take the next
//! operation index and await it, so at most `window` operations are in flight. Only the
//! workers that were woken are polled again (a per-worker waker pushes its index on a
//! ready list), so the window costs O(1) per completion, not O(window).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

struct Ready {
    list: Mutex<Vec<usize>>,
    parent: Mutex<Option<Waker>>,
}

struct WorkerWaker {
    idx: usize,
    queued: AtomicBool,
    ready: Arc<Ready>,
}

impl Wake for WorkerWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.ready
                .list
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.idx);
            let w = self
                .ready
                .parent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

type Worker<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

struct JoinWorkers<'a> {
    workers: Vec<Option<Worker<'a>>>,
    wakers: Vec<(Arc<WorkerWaker>, Waker)>,
    ready: Arc<Ready>,
    left: usize,
    scratch: Vec<usize>,
}

impl Future for JoinWorkers<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        *this.ready.parent.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        loop {
            std::mem::swap(
                &mut this.scratch,
                &mut *this.ready.list.lock().unwrap_or_else(|p| p.into_inner()),
            );
            if this.scratch.is_empty() {
                break;
            }
            for idx in this.scratch.drain(..) {
                let (ww, waker) = &this.wakers[idx];
                ww.queued.store(false, Ordering::Release);
                if let Some(w) = this.workers[idx].as_mut() {
                    let mut wcx = Context::from_waker(waker);
                    if w.as_mut().poll(&mut wcx).is_ready() {
                        this.workers[idx] = None;
                        this.left -= 1;
                    }
                }
            }
        }
        if this.left == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Runs `op(0..n)` with at most `window` in flight; returns each op's latency, or the
/// first error.
pub async fn run_window<F, Fut>(window: usize, n: usize, op: F) -> Result<Vec<Duration>, String>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let next = Cell::new(0usize);
    let lat = RefCell::new(vec![Duration::ZERO; n]);
    let err: RefCell<Option<String>> = RefCell::new(None);
    let worker = || async {
        loop {
            let i = next.get();
            if i >= n || err.borrow().is_some() {
                break;
            }
            next.set(i + 1);
            let t = Instant::now();
            match op(i).await {
                Ok(()) => lat.borrow_mut()[i] = t.elapsed(),
                Err(e) => {
                    *err.borrow_mut() = Some(e);
                    break;
                }
            }
        }
    };
    let window = window.clamp(1, n.max(1));
    let ready = Arc::new(Ready {
        list: Mutex::new((0..window).collect()),
        parent: Mutex::new(None),
    });
    let wakers = (0..window)
        .map(|idx| {
            let ww = Arc::new(WorkerWaker {
                idx,
                queued: AtomicBool::new(true),
                ready: ready.clone(),
            });
            (ww.clone(), Waker::from(ww))
        })
        .collect();
    let workers = (0..window)
        .map(|_| Some(Box::pin(worker()) as Worker<'_>))
        .collect();
    JoinWorkers {
        workers,
        wakers,
        ready,
        left: window,
        scratch: Vec::new(),
    }
    .await;
    if let Some(e) = err.into_inner() {
        return Err(e);
    }
    Ok(lat.into_inner())
}
