//! zk-recipes' Curator semaphore and counters against Apache Curator 5.4 in a
//! JVM, on a real ZooKeeper 3.8 server, for every adapter:
//! `InterProcessSemaphoreV2` with two leases held by Java and Rust holders at
//! once (a probe count that must never pass two, and the bound seen from each
//! side while the other holds); `SharedCount` and `DistributedAtomicLong`
//! (promoted to a lock) incremented concurrently from two Java clients and two
//! Rust threads adding up exactly, read alike from both sides, on Curator's
//! encodings (4 and 8 bytes, big-endian). `SharedValue` with any bytes written
//! by either side and read by the other, compare-and-set conflicts detected
//! both ways, and the listeners (Rust's change stream, Java's
//! `SharedValueListener` / `SharedCountListener`) hearing the other side's
//! writes.

mod recipes_common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use recipes_common::locks::{give, take};
use recipes_common::{eventually, make_dirs, on_threads, probe, run, unique, Adapter, WAIT};
use zk_tests::curator::{hex, Curator};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{
    AtomicOptions, DistributedAtomicLong, InterProcessSemaphoreV2, SharedCount, SharedValue,
    ValueChanges, VersionedValue,
};

const TURNS: usize = 12;

/// Runs a future on the adapter's executor, or its `_blocking` twin.
macro_rules! call {
    ($z:ty, $async:expr, $blocking:expr) => {
        if <$z as Zk>::NAME == "blocking" {
            $blocking
        } else {
            <$z as Adapter>::exec($async)
        }
    };
}

/// Two leases, two Java holders and two Rust holders looping: never more
/// than two probes at once; then the bound seen from each side.
fn semaphore_mixed<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-sem", Z::NAME);
    let (sem, probes) = (format!("{base}/sem"), format!("{base}/probes"));
    let admin = Z::connect_to(&cs);
    make_dirs(&admin, &[&probes]);
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    let j = java.spawn_each(&["c", "c2"], |c| {
        format!("semLoop {c} {sem} 2 {probes} {TURNS}")
    });
    let (sem2, probes2) = (sem.clone(), probes.clone());
    let most: Vec<usize> = on_threads::<Z, _>(&cs, 2, move |zk, _| {
        let s = InterProcessSemaphoreV2::new(zk.as_async(), &sem2, 2).unwrap();
        let mut most = 0;
        for _ in 0..TURNS {
            let l = take::<Z, _>(&s, None).unwrap();
            assert!(l.is_held());
            let (me, n) = probe(zk, &probes2);
            most = most.max(n);
            thread::sleep(Duration::from_millis(5));
            zk.delete(&me, None).unwrap();
            assert!(n <= 2, "{n} holders of a 2-lease semaphore");
            give::<Z, _>(l);
        }
        most
    });
    java.all_done(&j, Duration::from_secs(120), "Java's holders");
    println!("{}: most holders a Rust holder saw: {most:?}", Z::NAME);

    // Java holds both leases: Rust cannot have one; Java returns one: Rust
    // gets it; Java holds the other: a second Java lease is refused.
    java.ok(&format!("semaphore js c {sem} 2"));
    assert_eq!(java.ok("semAcquire js l1 5000"), "true");
    assert_eq!(java.ok("semAcquire js l2 5000"), "true");
    let zk = Z::connect_to(&cs);
    let s = InterProcessSemaphoreV2::new(zk.as_async(), &sem, 2).unwrap();
    assert!(
        take::<Z, _>(&s, Some(300)).is_none(),
        "a third lease, to Rust"
    );
    java.ok("semReturn l1");
    let l = take::<Z, _>(&s, Some(10_000)).expect("the returned lease");
    let leases = zk.get_children(&format!("{sem}/leases")).unwrap();
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert!(leases
        .iter()
        .all(|n| n.starts_with("_c_") && n[39..].starts_with("-lease-")));
    assert_eq!(
        java.ok("semAcquire js l3 300"),
        "false",
        "a third lease, to Java"
    );
    give::<Z, _>(l);
    assert_eq!(java.ok("semAcquire js l3 5000"), "true");
    java.ok("semReturn l2");
    java.ok("semReturn l3");
    zk.close().unwrap();
    admin.close().unwrap();
}

/// Java's `SharedCount` (two clients) and Rust's (two threads) add 1 each,
/// `TURNS * 3` times per writer, at once: the sum is exact on both sides and
/// the node holds it as 4 big-endian bytes.
fn shared_count_adds_up<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = format!("{}/count", unique("curator-count", Z::NAME));
    let n = TURNS * 3;
    let zk = Z::connect_to(&cs);
    let c = SharedCount::new(zk.as_async(), &path, 7).unwrap();
    call!(Z, c.start(), c.start_blocking()).unwrap();
    assert_eq!(zk.get_data(&path).unwrap().0.as_ref(), [0, 0, 0, 7]);
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    java.ok(&format!("count j1 c {path} 0"));
    java.ok(&format!("count j2 c2 {path} 0"));
    assert_eq!(java.ok("countGet j1"), "7", "Java reads Rust's seed");
    let ids = java.spawn_each(&["j1", "j2"], |j| format!("countAdd {j} 1 {n}"));
    let p = path.clone();
    on_threads::<Z, _>(&cs, 2, move |zk, _| {
        let c = SharedCount::new(zk.as_async(), &p, 0).unwrap();
        for _ in 0..n {
            call!(Z, c.add(1), c.add_blocking(1)).unwrap();
        }
    });
    java.all_done(&ids, Duration::from_secs(120), "Java's adds");
    let want = 7 + 4 * n as i32;
    let got = call!(Z, c.count(), c.count_blocking()).unwrap();
    assert_eq!(got, want, "Rust's count");
    assert_eq!(zk.get_data(&path).unwrap().0.as_ref(), want.to_be_bytes());
    recipes_common::eventually(WAIT, "Java's count", || {
        java.ok("countGet j1") == want.to_string()
    });
    java.ok("countClose j1");
    java.ok("countClose j2");
    zk.close().unwrap();
}

/// Java's `DistributedAtomicLong` (two clients, promoted to a lock) and
/// Rust's (two threads, the same lock path) add at once: exact on both sides,
/// 8 big-endian bytes on the node.
fn atomic_long_adds_up<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-along", Z::NAME);
    let (path, lock) = (format!("{base}/value"), format!("{base}/lock"));
    let n = TURNS * 3;
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    java.ok(&format!("along a1 c {path} {lock}"));
    java.ok(&format!("along a2 c2 {path} {lock}"));
    let ids = java.spawn_each(&["a1", "a2"], |a| format!("alongAdd {a} 3 {n}"));
    let (p, lk) = (path.clone(), lock.clone());
    let failed: Vec<u32> = on_threads::<Z, _>(&cs, 2, move |zk, _| {
        let l = DistributedAtomicLong::with_options(
            zk.as_async(),
            &p,
            AtomicOptions {
                promoted_lock: Some(lk.clone()),
                ..AtomicOptions::default()
            },
        )
        .unwrap();
        let mut failed = 0;
        for _ in 0..n {
            // A failed change wrote nothing (every try met another
            // writer): try again, as Java users do.
            loop {
                let v = call!(Z, l.add(5), l.add_blocking(5)).unwrap();
                if v.succeeded {
                    assert_eq!(v.post, v.pre + 5);
                    break;
                }
                failed += 1;
            }
        }
        failed
    });
    java.all_done(&ids, Duration::from_secs(120), "Java's adds");
    println!(
        "{}: Rust adds that did not go in and were retried: {failed:?}",
        Z::NAME
    );
    let want = (2 * 3 * n + 2 * 5 * n) as i64;
    let zk = Z::connect_to(&cs);
    let l = DistributedAtomicLong::new(zk.as_async(), &path).unwrap();
    let got = call!(Z, l.get(), l.get_blocking()).unwrap();
    assert_eq!(got, want, "Rust's value");
    assert_eq!(java.ok("alongGet a1"), want.to_string(), "Java's value");
    assert_eq!(zk.get_data(&path).unwrap().0.as_ref(), want.to_be_bytes());
    zk.close().unwrap();
}

/// The next item of a change stream, within [`WAIT`]: `next()` on the
/// adapter's executor (on a thread of its own, so that a silent stream fails
/// the test instead of hanging it), `recv_timeout` for zk-blocking.
fn next_change<Z: Adapter + 'static, T: Send + 'static>(
    mut c: ValueChanges<T>,
    what: &str,
) -> (ValueChanges<T>, VersionedValue<T>) {
    if Z::NAME == "blocking" {
        let v = c
            .recv_timeout(Some(WAIT))
            .unwrap_or_else(|e| panic!("{what}: nothing within {WAIT:?} ({e})"));
        return (c, v.expect("the change stream ended"));
    }
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let v = Z::exec(c.next());
        let _ = tx.send((c, v));
    });
    let (c, v) = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"));
    (c, v.expect("the change stream ended"))
}

/// Java's `SharedValue` and Rust's on one path, with bytes a count could not
/// hold (non-UTF-8, 1 KiB, empty): each side reads what the other wrote, and
/// each side's listener hears of the other's write; a compare-and-set made
/// after the other side wrote fails, both ways, and goes in after a fresh
/// read.
fn shared_value_both_ways<Z: Adapter + 'static>() {
    let cs = shared_server().connect_string();
    let path = format!("{}/value", unique("curator-sv", Z::NAME));
    let zk = Z::connect_to(&cs);
    let v = SharedValue::new(zk.as_async(), &path, vec![0u8, 0xff, 0x10]).unwrap();
    call!(Z, v.start(), v.start_blocking()).unwrap();
    let read = || call!(Z, v.versioned_value(), v.versioned_value_blocking()).unwrap();
    let changes = v.changes().unwrap();
    let (changes, first) = next_change::<Z, _>(changes, "Rust's first report");
    assert_eq!((first.version, first.value), (0, vec![0, 0xff, 0x10]));
    let mut java = Curator::start(&cs);
    java.ok(&format!("sv jv c {path} 61"));
    assert_eq!(java.ok("svGet jv"), "00ff10", "Java reads Rust's seed");

    // 1. Java writes 1 KiB: Rust reads it, and Rust's listener hears of it.
    let big: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    java.ok(&format!("svSet jv {}", hex(&big)));
    assert_eq!(
        read(),
        VersionedValue {
            version: 1,
            value: big.clone()
        }
    );
    let (changes, c) = next_change::<Z, _>(changes, "Rust's listener, Java's write");
    assert_eq!((c.version, c.value.len()), (1, 1024), "Rust's listener");
    assert_eq!(c.value, big);

    // 2. Rust writes nothing at all (empty): Java's copy and listener follow.
    let ver = call!(
        Z,
        v.set_value(Vec::<u8>::new()),
        v.set_value_blocking(Vec::<u8>::new())
    )
    .unwrap();
    assert_eq!(ver, 2);
    assert!(
        java.event("sv jv -", WAIT).is_some(),
        "Java's listener did not hear Rust's write"
    );
    assert_eq!(java.ok("svGet jv"), "-");
    let (changes, c) = next_change::<Z, _>(changes, "Rust's listener, its own write");
    assert_eq!((c.version, c.value), (2, Vec::new()));

    // 3. Rust read, then Java wrote: Rust's compare-and-set fails and leaves
    //    Java's value; after a fresh read it goes in, and Java sees it.
    let stale = read();
    java.ok(&format!("svSet jv {}", hex(b"java")));
    let set = |prev: &VersionedValue<Vec<u8>>, new: &[u8]| {
        call!(
            Z,
            v.try_set_value(prev, new.to_vec()),
            v.try_set_value_blocking(prev, new.to_vec())
        )
        .unwrap()
    };
    assert!(
        !set(&stale, b"rust"),
        "Rust's compare-and-set went in over Java's write"
    );
    assert_eq!(read().value, b"java");
    let fresh = read();
    assert!(
        set(&fresh, b"rust"),
        "Rust's compare-and-set on a fresh read"
    );
    eventually(WAIT, "Java reads Rust's compare-and-set", || {
        java.ok("svGet jv") == hex(b"rust")
    });

    // 4. Java read, then Rust wrote: Java's compare-and-set fails; after a
    //    fresh read it goes in, and Rust reads it.
    let at = read();
    let want = format!("{} {}", at.version, hex(&at.value));
    eventually(WAIT, "Java's copy catches up", || {
        java.ok("svVersioned jv k1") == want
    });
    call!(
        Z,
        v.set_value(b"rust2".to_vec()),
        v.set_value_blocking(b"rust2".to_vec())
    )
    .unwrap();
    assert_eq!(
        java.ok(&format!("svTrySet jv k1 {}", hex(b"j2"))),
        "false",
        "Java's compare-and-set went in over Rust's write"
    );
    assert_eq!(read().value, b"rust2");
    let at = read();
    let want = format!("{} {}", at.version, hex(&at.value));
    eventually(WAIT, "Java's copy catches up again", || {
        java.ok("svVersioned jv k2") == want
    });
    assert_eq!(java.ok(&format!("svTrySet jv k2 {}", hex(b"j2"))), "true");
    assert_eq!(
        read(),
        VersionedValue {
            version: at.version + 1,
            value: b"j2".to_vec()
        }
    );
    let mut changes = changes;
    loop {
        let (c, v) = next_change::<Z, _>(changes, "Rust's listener, Java's compare-and-set");
        changes = c;
        if v.value == b"j2" {
            break;
        }
    }
    java.ok("svClose jv");
    drop(changes);
    zk.close().unwrap();
}

/// `SharedCount`'s listeners: Rust's stream hears the count Java sets, Java's
/// `SharedCountListener` the count Rust sets.
fn count_listeners<Z: Adapter + 'static>() {
    let cs = shared_server().connect_string();
    let path = format!("{}/count", unique("curator-count-l", Z::NAME));
    let zk = Z::connect_to(&cs);
    let c = SharedCount::new(zk.as_async(), &path, 5).unwrap();
    call!(Z, c.start(), c.start_blocking()).unwrap();
    let changes = c.changes().unwrap();
    let (changes, first) = next_change::<Z, _>(changes, "Rust's first count");
    assert_eq!((first.version, first.value), (0, 5));
    let mut java = Curator::start(&cs);
    java.ok(&format!("count jc c {path} 0"));
    java.ok("countListen jc");
    java.ok("countSet jc 42");
    let (changes, v) = next_change::<Z, _>(changes, "Rust's listener, Java's count");
    assert_eq!((v.version, v.value), (1, 42), "Rust's listener");
    call!(Z, c.set_count(-7), c.set_count_blocking(-7)).unwrap();
    assert!(
        java.event("count jc -7", WAIT).is_some(),
        "Java's listener did not hear Rust's count"
    );
    assert_eq!(java.ok("countGet jc"), "-7");
    let (changes, v) = next_change::<Z, _>(changes, "Rust's listener, its own count");
    assert_eq!((v.version, v.value), (2, -7));
    java.ok("countClose jc");
    drop(changes);
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [semaphore_mixed, shared_count_adds_up, shared_value_both_ways, count_listeners, atomic_long_adds_up]);
