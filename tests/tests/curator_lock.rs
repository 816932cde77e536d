//! zk-recipes' Curator-layout locks against Apache Curator 5.4 processes (Debian's
//! jars, driven through `zk_tests::curator`), on a real ZooKeeper 3.8 server, for
//! every adapter: `InterProcessMutex` exclusion with Java holders in both directions
//! (a read-modify-write counter that loses counts without exclusion, and a probe
//! count that must stay at one), re-entrancy, revocation both ways, the layout Java
//! sees; `InterProcessReadWriteLock` writers excluded from Java writers and readers;
//! `InterProcessMultiLock` excluding (and excluded by) Java multi-locks and a Java
//! mutex on one of its paths, backing out of the locks it took when one cannot be
//! had, and releasing in reverse order.

mod recipes_common;

use std::thread;
use std::time::Duration;

use recipes_common::{eventually, run, unique, Adapter, WAIT};
use zk_client::{CreateMode, CreateOptions};
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{
    self, InterProcessMultiLock, InterProcessMutex, InterProcessReadWriteLock, MultiLockGuard,
    MutexGuard, MutexOptions,
};

fn acquire<Z: Adapter>(m: &InterProcessMutex) -> MutexGuard {
    if Z::NAME == "blocking" {
        m.acquire_blocking(None).unwrap().unwrap()
    } else {
        Z::exec(m.acquire()).unwrap()
    }
}

fn try_acquire<Z: Adapter>(m: &InterProcessMutex, ms: u64) -> Option<MutexGuard> {
    if Z::NAME == "blocking" {
        m.acquire_blocking(Some(Duration::from_millis(ms))).unwrap()
    } else {
        Z::exec(m.acquire_timeout(Duration::from_millis(ms))).unwrap()
    }
}

fn release<Z: Adapter>(g: MutexGuard) {
    if Z::NAME == "blocking" {
        g.release_blocking().unwrap()
    } else {
        Z::exec(g.release()).unwrap()
    }
}

fn read_int<Z: Zk>(zk: &Z, path: &str) -> i64 {
    match zk.get_data(path) {
        Ok((d, _)) if d.is_empty() => 0,
        Ok((d, _)) => String::from_utf8_lossy(&d).parse().unwrap(),
        Err(_) => 0,
    }
}

/// The critical section Java's peer runs too: a probe node (at most `bound`
/// holders at once) and an unversioned read-modify-write of an ASCII counter.
fn critical<Z: Zk>(zk: &Z, ctr: &str, probes: &str, bound: usize) {
    let me = zk
        .create(
            &format!("{probes}/rust-"),
            b"".as_slice(),
            CreateMode::EphemeralSequential,
        )
        .unwrap();
    let holders = zk.get_children(probes).unwrap().len();
    let v = read_int(zk, ctr);
    thread::sleep(Duration::from_millis(3));
    match zk.set_data(ctr, (v + 1).to_string().as_bytes(), None) {
        Ok(_) => {}
        Err(_) => {
            zk.create(ctr, (v + 1).to_string().as_bytes(), CreateMode::Persistent)
                .unwrap();
        }
    }
    zk.delete(&me, None).unwrap();
    assert!(holders <= bound, "{holders} holders at once, bound {bound}");
}

/// Two Java clients and two Rust clients, 15 turns each, on one mutex: the
/// counter adds up and no probe saw two holders; Rust's tokens rise.
fn exclusion_with_java<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-mutex", Z::NAME);
    let (lock, ctr, probes) = (
        format!("{base}/lock"),
        format!("{base}/ctr"),
        format!("{base}/probes"),
    );
    let admin = Z::connect_to(&cs);
    admin
        .create_with(
            &probes,
            b"".as_slice(),
            &CreateOptions {
                make_parents: true,
                ..Default::default()
            },
        )
        .unwrap();
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    let j1 = java.spawn(&format!("mutexLoop c {lock} {ctr} {probes} 15"));
    let j2 = java.spawn(&format!("mutexLoop c2 {lock} {ctr} {probes} 15"));
    let rust: Vec<_> = (0..2)
        .map(|_| {
            let (cs, lock, ctr, probes) = (cs.clone(), lock.clone(), ctr.clone(), probes.clone());
            thread::spawn(move || {
                let zk = Z::connect_to(&cs);
                let m = InterProcessMutex::new(zk.as_async(), &lock).unwrap();
                let mut last = 0;
                for _ in 0..15 {
                    let g = acquire::<Z>(&m);
                    assert!(g.fencing_token() > last, "the fencing token did not rise");
                    last = g.fencing_token();
                    assert!(g.is_held());
                    critical(&zk, &ctr, &probes, 1);
                    release::<Z>(g);
                }
                zk.close().unwrap();
            })
        })
        .collect();
    for t in rust {
        t.join().expect("a Rust holder failed");
    }
    for j in [j1, j2] {
        let a = java
            .answer(j, Duration::from_secs(60))
            .expect("Java's loop did not finish");
        assert_eq!(a, Ok("done".to_string()), "Java's loop");
    }
    assert_eq!(
        read_int(&admin, &ctr),
        60,
        "a count was lost: exclusion failed"
    );
    admin.close().unwrap();
}

/// Java holds: Rust cannot; Java releases: Rust gets it; Rust holds
/// (re-entrantly, one node): Java cannot; Rust releases twice: Java gets it.
/// The node's name and data are Curator's.
fn both_directions<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let lock = format!("{}/lock", unique("curator-dir", Z::NAME));
    let zk = Z::connect_to(&cs);
    let mut java = Curator::start(&cs);
    java.ok(&format!("mutex jm c {lock}"));
    assert_eq!(java.ok("acquire jm 5000"), "true");
    let m = InterProcessMutex::new(zk.as_async(), &lock).unwrap();
    assert!(
        try_acquire::<Z>(&m, 300).is_none(),
        "Rust got a mutex Java holds"
    );
    assert_eq!(
        zk.get_children(&lock).unwrap().len(),
        1,
        "the refused node was left behind"
    );
    // Rust waits; Java releases; Rust holds.
    let m2 = m.clone();
    let waiter = thread::spawn(move || m2.acquire_blocking(Some(WAIT)).unwrap().unwrap());
    recipes_common::eventually(WAIT, "the Rust waiter queued", || {
        zk.get_children(&lock).unwrap().len() == 2
    });
    java.ok("release jm");
    let g = waiter.join().unwrap();
    let kids = zk.get_children(&lock).unwrap();
    assert_eq!(kids.len(), 1);
    let name = &kids[0];
    assert!(
        name.starts_with("_c_") && name[3..39].len() == 36 && name[39..].starts_with("-lock-"),
        "{name}"
    );
    assert_eq!(
        zk.get_data(&g.node_path()).unwrap().0.as_ref(),
        curator::local_address().as_bytes()
    );
    // Re-entrant: the same node.
    let g2 = acquire::<Z>(&m);
    assert_eq!(g2.node_path(), g.node_path());
    assert!(m.is_acquired());
    assert_eq!(
        java.ok("acquire jm 300"),
        "false",
        "Java got a mutex Rust holds"
    );
    release::<Z>(g2);
    assert_eq!(
        java.ok("acquire jm 300"),
        "false",
        "one re-entrant release let Java in"
    );
    let java_wait = java.send("acquire jm 20000");
    release::<Z>(g);
    assert_eq!(java.answer(java_wait, WAIT), Some(Ok("true".to_string())));
    assert!(!m.is_acquired());
    java.ok("release jm");
    zk.close().unwrap();
}

/// Revocation both ways: Rust revokes a revocable Java holder (which
/// releases, so Rust gets the lock); Java revokes a revocable Rust holder
/// (which is told).
fn revocation<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let lock = format!("{}/lock", unique("curator-revoke", Z::NAME));
    let zk = Z::connect_to(&cs);
    let mut java = Curator::start(&cs);
    java.ok(&format!("mutex jm c {lock}"));
    java.ok("revocable jm");
    assert_eq!(java.ok("acquire jm 5000"), "true");
    let holder = zk.get_children(&lock).unwrap()[0].clone();
    let holder = format!("{lock}/{holder}");
    assert_eq!(
        zk.get_data(&holder).unwrap().0.len(),
        0,
        "a revocable node is empty"
    );
    Z::exec(curator::revoke(zk.as_async(), &holder)).unwrap();
    assert!(java.event("revoke jm", WAIT).is_some(), "Java was not told");
    let m = InterProcessMutex::with_options(
        zk.as_async(),
        &lock,
        MutexOptions {
            revocable: true,
            ..MutexOptions::default()
        },
    )
    .unwrap();
    let g = try_acquire::<Z>(&m, 10_000).expect("Java did not release on revocation");
    assert_eq!(zk.get_data(&g.node_path()).unwrap().0.len(), 0);
    let asked = g.revocation_requested();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        zk_client::blocking::block_on(asked, None);
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "told before anyone asked"
    );
    java.ok(&format!("revoke c {}", g.node_path()));
    rx.recv_timeout(WAIT)
        .expect("Rust was not told of Java's revocation");
    release::<Z>(g);
    zk.close().unwrap();
}

/// Java writers, a Java reader loop and Rust writers on one read/write lock:
/// the writers' counter adds up and no two writers held at once.
fn rw_with_java<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-rw", Z::NAME);
    let (lock, ctr, probes) = (
        format!("{base}/lock"),
        format!("{base}/ctr"),
        format!("{base}/probes"),
    );
    let admin = Z::connect_to(&cs);
    admin
        .create_with(
            &probes,
            b"".as_slice(),
            &CreateOptions {
                make_parents: true,
                ..Default::default()
            },
        )
        .unwrap();
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    let jw = java.spawn(&format!("rwLoop c {lock} {ctr} {probes} 15 write"));
    let jr = java.spawn(&format!("rwLoop c2 {lock} {ctr} {probes}-r 15 read"));
    let zk = Z::connect_to(&cs);
    let rw = InterProcessReadWriteLock::new(zk.as_async(), &lock).unwrap();
    for i in 0..15 {
        let g = acquire::<Z>(rw.write_lock());
        assert!(g.node_path().contains("-__WRIT__"), "{}", g.node_path());
        critical(&zk, &ctr, &probes, 1);
        release::<Z>(g);
        if i % 5 == 0 {
            let r = acquire::<Z>(rw.read_lock());
            assert!(r.node_path().contains("-__READ__"));
            release::<Z>(r);
        }
    }
    for j in [jw, jr] {
        let a = java
            .answer(j, Duration::from_secs(60))
            .expect("Java's loop did not finish");
        assert_eq!(a, Ok("done".to_string()));
    }
    assert_eq!(
        read_int(&admin, &ctr),
        30,
        "a write was lost: writers overlapped"
    );
    zk.close().unwrap();
    admin.close().unwrap();
}

fn multi_acquire<Z: Adapter>(m: &InterProcessMultiLock, ms: Option<u64>) -> Option<MultiLockGuard> {
    match (Z::NAME, ms) {
        ("blocking", ms) => m.acquire_blocking(ms.map(Duration::from_millis)).unwrap(),
        (_, None) => Some(Z::exec(m.acquire()).unwrap()),
        (_, Some(ms)) => Z::exec(m.acquire_timeout(Duration::from_millis(ms))).unwrap(),
    }
}

fn multi_release<Z: Adapter>(g: MultiLockGuard) {
    if Z::NAME == "blocking" {
        g.release_blocking().unwrap()
    } else {
        Z::exec(g.release()).unwrap()
    }
}

/// Persistent lock directories (a container could be swept while empty),
/// and the probes directory.
fn lock_dirs<Z: Zk>(zk: &Z, dirs: &[&str]) {
    for d in dirs {
        zk.create_with(
            d,
            b"".as_slice(),
            &CreateOptions {
                make_parents: true,
                ..Default::default()
            },
        )
        .unwrap();
    }
}

/// A Java multi-lock over [a, b], a Java mutex on b alone and two Rust
/// multi-locks over [a, b], 10 turns each, on one unversioned counter: it
/// adds up and no probe saw two holders.
fn multi_lock_exclusion<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-multi", Z::NAME);
    let (a, b, ctr, probes) = (
        format!("{base}/a"),
        format!("{base}/b"),
        format!("{base}/ctr"),
        format!("{base}/probes"),
    );
    let admin = Z::connect_to(&cs);
    lock_dirs(&admin, &[&a, &b, &probes]);
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    let j1 = java.spawn(&format!("multiLoop c {a},{b} {ctr} {probes} 10"));
    let j2 = java.spawn(&format!("mutexLoop c2 {b} {ctr} {probes} 10"));
    let rust: Vec<_> = (0..2)
        .map(|_| {
            let (cs, a, b, ctr, probes) = (
                cs.clone(),
                a.clone(),
                b.clone(),
                ctr.clone(),
                probes.clone(),
            );
            thread::spawn(move || {
                let zk = Z::connect_to(&cs);
                let m = InterProcessMultiLock::new(zk.as_async(), [&a, &b]).unwrap();
                for _ in 0..10 {
                    let g = multi_acquire::<Z>(&m, None).unwrap();
                    assert!(g.is_held());
                    critical(&zk, &ctr, &probes, 1);
                    multi_release::<Z>(g);
                }
                zk.close().unwrap();
            })
        })
        .collect();
    for t in rust {
        t.join().expect("a Rust holder failed");
    }
    for j in [j1, j2] {
        let r = java
            .answer(j, Duration::from_secs(60))
            .expect("Java's loop did not finish");
        assert_eq!(r, Ok("done".to_string()), "Java's loop");
    }
    assert_eq!(
        read_int(&admin, &ctr),
        40,
        "a count was lost: exclusion failed"
    );
    admin.close().unwrap();
}

/// Java's multi-lock holds: Rust's cannot, and leaves no node; Java releases
/// while Rust waits: Rust holds both, Java's multi-lock and a Java mutex on b
/// cannot; Rust releases b before a. Then a Java mutex holds b: Rust's
/// multi-lock takes a, times out on b and lets a go (Java gets a at once).
fn multi_lock_both_ways<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-multi2", Z::NAME);
    let (a, b) = (format!("{base}/a"), format!("{base}/b"));
    let zk = Z::connect_to(&cs);
    lock_dirs(&zk, &[&a, &b]);
    let mut java = Curator::start(&cs);
    java.ok(&format!("multi jm c {a},{b}"));
    assert_eq!(java.ok("multiAcquire jm 5000"), "true");
    let m = InterProcessMultiLock::new(zk.as_async(), [&a, &b]).unwrap();
    assert!(
        multi_acquire::<Z>(&m, Some(300)).is_none(),
        "Rust got a multi-lock Java holds"
    );
    let kids = |p: &str| zk.get_children(p).unwrap().len();
    assert_eq!((kids(&a), kids(&b)), (1, 1), "Rust left a node behind");

    // Rust waits; Java releases; Rust holds both.
    let m2 = m.clone();
    let waiter = thread::spawn(move || m2.acquire_blocking(Some(WAIT)).unwrap());
    eventually(WAIT, "the Rust waiter queued on a", || kids(&a) == 2);
    assert_eq!(java.ok("multiRelease jm"), "released");
    let g = waiter
        .join()
        .unwrap()
        .expect("Rust did not get the released locks");
    let nodes: Vec<String> = g.guards().iter().map(|g| g.node_path()).collect();
    assert_eq!(nodes.len(), 2, "Rust's multi-lock holds {nodes:?}");
    assert!(nodes[0].starts_with(&format!("{a}/_c_")), "{nodes:?}");
    assert!(nodes[1].starts_with(&format!("{b}/_c_")), "{nodes:?}");
    assert!(m.is_acquired() && g.is_held());
    let tokens = g.fencing_tokens();
    assert!(tokens[0] < tokens[1], "taken in order: {tokens:?}");
    assert_eq!(
        java.ok("multiAcquire jm 300"),
        "false",
        "Java's multi-lock got locks Rust holds"
    );
    java.ok(&format!("mutex jb c {b}"));
    assert_eq!(
        java.ok("acquire jb 300"),
        "false",
        "Java's mutex got b from Rust's multi-lock"
    );
    multi_release::<Z>(g);
    assert!(!m.is_acquired());
    let (pa, pb) = (
        zk.exists(&a).unwrap().unwrap().pzxid,
        zk.exists(&b).unwrap().unwrap().pzxid,
    );
    assert!(pb < pa, "b was not released before a ({pb} >= {pa})");

    // Java's mutex holds b: Rust takes a, waits 300 ms for b, lets a go.
    assert_eq!(java.ok("acquire jb 5000"), "true");
    assert!(
        multi_acquire::<Z>(&m, Some(300)).is_none(),
        "Rust got b from Java's mutex"
    );
    assert_eq!(kids(&a), 0, "Rust kept a after failing on b");
    java.ok(&format!("mutex ja c {a}"));
    assert_eq!(
        java.ok("acquire ja 300"),
        "true",
        "Java could not take the a Rust let go"
    );
    java.ok("release ja");
    java.ok("release jb");
    // Java's multi-lock now gets both.
    assert_eq!(java.ok("multiAcquire jm 5000"), "true");
    assert_eq!(java.ok("multiHeld jm"), "true");
    java.ok("multiRelease jm");
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [exclusion_with_java, both_directions, revocation, multi_lock_exclusion, multi_lock_both_ways, rw_with_java]);
