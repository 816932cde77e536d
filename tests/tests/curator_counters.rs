//! zk-recipes' Curator semaphore and counters against Apache Curator 5.4 in a
//! JVM, on a real ZooKeeper 3.8 server, for every adapter:
//! `InterProcessSemaphoreV2` with two leases held by Java and Rust holders at
//! once (a probe count that must never pass two, and the bound seen from each
//! side while the other holds); `SharedCount` and `DistributedAtomicLong`
//! (promoted to a lock) incremented concurrently from two Java clients and two
//! Rust threads adding up exactly, read alike from both sides, on Curator's
//! encodings (4 and 8 bytes, big-endian).

mod recipes_common;

use std::thread;
use std::time::Duration;

use recipes_common::{run, unique, Adapter, WAIT};
use zk_client::{CreateMode, CreateOptions};
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{
    AtomicOptions, DistributedAtomicLong, InterProcessSemaphoreV2, Lease, SharedCount,
};

const TURNS: usize = 12;

fn take<Z: Adapter>(s: &InterProcessSemaphoreV2, ms: Option<u64>) -> Option<Lease> {
    match (Z::NAME, ms) {
        ("blocking", ms) => s.acquire_blocking(ms.map(Duration::from_millis)).unwrap(),
        (_, None) => Some(Z::exec(s.acquire()).unwrap()),
        (_, Some(ms)) => Z::exec(s.acquire_timeout(Duration::from_millis(ms))).unwrap(),
    }
}

fn give<Z: Adapter>(l: Lease) {
    if Z::NAME == "blocking" {
        l.release_blocking().unwrap()
    } else {
        Z::exec(l.release()).unwrap()
    }
}

fn make_dir<Z: Zk>(zk: &Z, path: &str) {
    zk.create_with(
        path,
        b"".as_slice(),
        &CreateOptions {
            make_parents: true,
            ..Default::default()
        },
    )
    .unwrap();
}

/// Two leases, two Java holders and two Rust holders looping: never more
/// than two probes at once; then the bound seen from each side.
fn semaphore_mixed<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-sem", Z::NAME);
    let (sem, probes) = (format!("{base}/sem"), format!("{base}/probes"));
    let admin = Z::connect_to(&cs);
    make_dir(&admin, &probes);
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    let j: Vec<u64> = ["c", "c2"]
        .iter()
        .map(|c| java.spawn(&format!("semLoop {c} {sem} 2 {probes} {TURNS}")))
        .collect();
    let rust: Vec<_> = (0..2)
        .map(|_| {
            let (cs, sem, probes) = (cs.clone(), sem.clone(), probes.clone());
            thread::spawn(move || {
                let zk = Z::connect_to(&cs);
                let s = InterProcessSemaphoreV2::new(zk.as_async(), &sem, 2).unwrap();
                let mut most = 0;
                for _ in 0..TURNS {
                    let l = take::<Z>(&s, None).unwrap();
                    assert!(l.is_held());
                    let me = zk
                        .create(
                            &format!("{probes}/rust-"),
                            b"".as_slice(),
                            CreateMode::EphemeralSequential,
                        )
                        .unwrap();
                    let n = zk.get_children(&probes).unwrap().len();
                    most = most.max(n);
                    thread::sleep(Duration::from_millis(5));
                    zk.delete(&me, None).unwrap();
                    assert!(n <= 2, "{n} holders of a 2-lease semaphore");
                    give::<Z>(l);
                }
                zk.close().unwrap();
                most
            })
        })
        .collect();
    let most: Vec<usize> = rust.into_iter().map(|t| t.join().unwrap()).collect();
    for id in j {
        let a = java
            .answer(id, Duration::from_secs(120))
            .expect("Java's loop did not finish");
        assert_eq!(a, Ok("done".into()), "Java's holders");
    }
    println!("{}: most holders a Rust holder saw: {most:?}", Z::NAME);

    // Java holds both leases: Rust cannot have one; Java returns one: Rust
    // gets it; Java holds the other: a second Java lease is refused.
    java.ok(&format!("semaphore js c {sem} 2"));
    assert_eq!(java.ok("semAcquire js l1 5000"), "true");
    assert_eq!(java.ok("semAcquire js l2 5000"), "true");
    let zk = Z::connect_to(&cs);
    let s = InterProcessSemaphoreV2::new(zk.as_async(), &sem, 2).unwrap();
    assert!(take::<Z>(&s, Some(300)).is_none(), "a third lease, to Rust");
    java.ok("semReturn l1");
    let l = take::<Z>(&s, Some(10_000)).expect("the returned lease");
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
    give::<Z>(l);
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
    if Z::NAME == "blocking" {
        c.start_blocking().unwrap()
    } else {
        Z::exec(c.start()).unwrap()
    }
    assert_eq!(zk.get_data(&path).unwrap().0.as_ref(), [0, 0, 0, 7]);
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    java.ok(&format!("count j1 c {path} 0"));
    java.ok(&format!("count j2 c2 {path} 0"));
    assert_eq!(java.ok("countGet j1"), "7", "Java reads Rust's seed");
    let ids: Vec<u64> = ["j1", "j2"]
        .iter()
        .map(|j| java.spawn(&format!("countAdd {j} 1 {n}")))
        .collect();
    let rust: Vec<_> = (0..2)
        .map(|_| {
            let (cs, path) = (cs.clone(), path.clone());
            thread::spawn(move || {
                let zk = Z::connect_to(&cs);
                let c = SharedCount::new(zk.as_async(), &path, 0).unwrap();
                for _ in 0..n {
                    if Z::NAME == "blocking" {
                        c.add_blocking(1).unwrap();
                    } else {
                        Z::exec(c.add(1)).unwrap();
                    }
                }
                zk.close().unwrap();
            })
        })
        .collect();
    for t in rust {
        t.join().unwrap();
    }
    for id in ids {
        let a = java
            .answer(id, Duration::from_secs(120))
            .expect("Java's adds");
        assert_eq!(a, Ok("done".into()));
    }
    let want = 7 + 4 * n as i32;
    let got = if Z::NAME == "blocking" {
        c.count_blocking().unwrap()
    } else {
        Z::exec(c.count()).unwrap()
    };
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
    let ids: Vec<u64> = ["a1", "a2"]
        .iter()
        .map(|a| java.spawn(&format!("alongAdd {a} 3 {n}")))
        .collect();
    let rust: Vec<_> = (0..2)
        .map(|_| {
            let (cs, path, lock) = (cs.clone(), path.clone(), lock.clone());
            thread::spawn(move || {
                let zk = Z::connect_to(&cs);
                let l = DistributedAtomicLong::with_options(
                    zk.as_async(),
                    &path,
                    AtomicOptions {
                        promoted_lock: Some(lock),
                        ..AtomicOptions::default()
                    },
                )
                .unwrap();
                let mut failed = 0;
                for _ in 0..n {
                    // A failed change wrote nothing (every try met another
                    // writer): try again, as Java users do.
                    loop {
                        let v = if Z::NAME == "blocking" {
                            l.add_blocking(5).unwrap()
                        } else {
                            Z::exec(l.add(5)).unwrap()
                        };
                        if v.succeeded {
                            assert_eq!(v.post, v.pre + 5);
                            break;
                        }
                        failed += 1;
                    }
                }
                zk.close().unwrap();
                failed
            })
        })
        .collect();
    let failed: Vec<u32> = rust.into_iter().map(|t| t.join().unwrap()).collect();
    for id in ids {
        let a = java
            .answer(id, Duration::from_secs(120))
            .expect("Java's adds");
        assert_eq!(a, Ok("done".into()));
    }
    println!(
        "{}: Rust adds that did not go in and were retried: {failed:?}",
        Z::NAME
    );
    let want = (2 * 3 * n + 2 * 5 * n) as i64;
    let zk = Z::connect_to(&cs);
    let l = DistributedAtomicLong::new(zk.as_async(), &path).unwrap();
    let got = if Z::NAME == "blocking" {
        l.get_blocking().unwrap()
    } else {
        Z::exec(l.get()).unwrap()
    };
    assert_eq!(got, want, "Rust's value");
    assert_eq!(java.ok("alongGet a1"), want.to_string(), "Java's value");
    assert_eq!(zk.get_data(&path).unwrap().0.as_ref(), want.to_be_bytes());
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [semaphore_mixed, shared_count_adds_up, atomic_long_adds_up]);
