//! What an idle zk-blocking session costs once its caller has made calls: many
//! sessions, each with a thread of its own (the usual shape of blocking code)
//! making one read now and then against a real server, keep no more heap than
//! they did connected. Before, each thread that had read its own reply kept a
//! 16 KiB read buffer for the rest of its life (16.5 KiB more per session).
//!
//! The heap is counted by this binary's allocator (every allocation of the
//! process) and the resident memory read from /proc, so this file holds one
//! test: nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use zk_client::{ClientBuilder, CreateMode};
use zk_tests::ZkServer;

/// Sessions, each with its caller's thread.
const SESSIONS: usize = 200;
/// Reads per session, one per round, with the sessions idle between rounds.
const ROUNDS: usize = 4;
/// The most heap a session may gain from its caller's reads (before: 16.5 KiB).
/// What the first call of an operation makes once per client and keeps stays
/// under it: about 0.5 KiB on default features, and as much again with the
/// `metrics` feature (the operation's metric handles), measured at 541 and
/// 1,078 to 1,151 B, the same after every later round.
const GROWTH_PER_SESSION: usize = 2048;
/// The most resident memory a session and its caller's thread may gain from the
/// caller's reads, KiB: the heap above, the stack the reads touch and the
/// allocator's per-thread caches (before: 21 KiB, with the 16 KiB buffer).
const RSS_GROWTH_PER_SESSION: f64 = 10.0;
/// The most heap per session, calls made (the goal for W5 is 16 KiB of memory
/// per idle session, everything included; a connected idle session holds about 4.5 KiB).
const HEAP_PER_SESSION: usize = 8 * 1024;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// Test-only: forwards to the system allocator and counts what is live.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The process's resident memory, KiB.
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Heap and RSS now, per session, since `(heap, rss)` at the start.
fn per_session(start: (usize, usize)) -> (usize, f64) {
    let heap = LIVE.load(Ordering::SeqCst).saturating_sub(start.0) / SESSIONS;
    let rss = rss_kib().saturating_sub(start.1) as f64 / SESSIONS as f64;
    (heap, rss)
}

#[test]
fn an_idle_blocking_session_keeps_nothing_from_its_callers_reads() {
    zk_tests::watchdog::run("idle_memory", Duration::from_secs(180), idle_memory);
}

fn idle_memory() {
    let server = ZkServer::start();
    let b = ClientBuilder::new(&server.connect_string()).session_timeout(Duration::from_secs(30));
    let admin = zk_blocking::connect(&b).unwrap();
    admin
        .create("/idle", vec![7u8; 100], CreateMode::Persistent)
        .unwrap();
    // The I/O thread and its buffers exist from here on.
    let start = (LIVE.load(Ordering::SeqCst), rss_kib());

    // Each round: the threads read once (between the two waits), then idle.
    let barrier = Arc::new(Barrier::new(SESSIONS + 1));
    let mut threads = Vec::new();
    for _ in 0..SESSIONS {
        let zk = zk_blocking::connect(&b).unwrap();
        let barrier = barrier.clone();
        threads.push(std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                barrier.wait();
                let data = zk.get_data("/idle").map(|(d, _)| d.len());
                barrier.wait();
                assert_eq!(data.unwrap(), 100);
            }
            zk
        }));
    }
    // Connected, every caller's thread started, no call made yet.
    std::thread::sleep(Duration::from_millis(500));
    let (idle_heap, idle_rss) = per_session(start);
    eprintln!("connected, idle: heap {idle_heap} B per session, RSS {idle_rss:.1} KiB per session");
    let mut worst = 0;
    let mut worst_rss = 0.0f64;
    for round in 0..ROUNDS {
        barrier.wait();
        barrier.wait();
        // Idle until the next round.
        std::thread::sleep(Duration::from_millis(1000));
        let (heap, rss) = per_session(start);
        eprintln!("after read {round}: heap {heap} B per session, RSS {rss:.1} KiB per session");
        worst = worst.max(heap);
        worst_rss = worst_rss.max(rss);
    }
    let clients: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        worst <= idle_heap + GROWTH_PER_SESSION,
        "an idle session holds {worst} B of heap after its caller's reads, {idle_heap} B before"
    );
    assert!(
        worst <= HEAP_PER_SESSION,
        "an idle session holds {worst} B of heap"
    );
    assert!(
        worst_rss <= idle_rss + RSS_GROWTH_PER_SESSION,
        "the process grew by {:.1} KiB per session from its callers' reads",
        worst_rss - idle_rss
    );
    for c in clients {
        c.close().unwrap();
    }
}
