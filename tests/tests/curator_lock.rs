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

use recipes_common::locks::{give, hold, take, Lockable};
use recipes_common::{eventually, make_dirs, on_threads, probe, run, unique, Adapter, WAIT};
use zk_client::CreateMode;
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{
    self, InterProcessMultiLock, InterProcessMutex, InterProcessReadWriteLock, MutexOptions,
};

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
    let (me, holders) = probe(zk, probes);
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

/// An exclusion test's setting: a base path of its own holding the lock
/// directories made beforehand, an unversioned counter and a probes
/// directory; an admin client; a Curator peer with a second client `c2`.
struct Exclusion<Z> {
    cs: String,
    base: String,
    ctr: String,
    probes: String,
    admin: Z,
    java: Curator,
}

impl<Z: Adapter> Exclusion<Z> {
    /// Under a base tagged `tag`: makes the lock directories `dirs` (names
    /// under the base) and the probes directory, starts the peer.
    fn new(tag: &str, dirs: &[&str]) -> Exclusion<Z> {
        let cs = shared_server().connect_string();
        let base = unique(tag, Z::NAME);
        let (ctr, probes) = (format!("{base}/ctr"), format!("{base}/probes"));
        let admin = Z::connect_to(&cs);
        let mut made: Vec<String> = dirs.iter().map(|d| format!("{base}/{d}")).collect();
        made.push(probes.clone());
        make_dirs(&admin, &made.iter().map(String::as_str).collect::<Vec<_>>());
        let mut java = Curator::start(&cs);
        java.ok("client c2 10000");
        Exclusion {
            cs,
            base,
            ctr,
            probes,
            admin,
            java,
        }
    }

    /// The path `name` under the base.
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Starts Java's holder loops, one a command.
    fn java_loops(&mut self, commands: [String; 2]) -> Vec<u64> {
        commands.iter().map(|c| self.java.spawn(c)).collect()
    }

    /// Waits for Java's loops `ids` to finish, then reads the counter: all
    /// `want` turns went in (`lost` says what a shortfall means).
    fn check(mut self, ids: Vec<u64>, want: i64, lost: &str) {
        self.java
            .all_done(&ids, Duration::from_secs(60), "Java's loop");
        assert_eq!(read_int(&self.admin, &self.ctr), want, "{lost}");
        self.admin.close().unwrap();
    }
}

/// `n` turns of holding `lock`, each running the critical section (at most
/// one holder) while held, after `each` looked at the guard.
fn turns<Z: Adapter, L: Lockable>(
    zk: &Z,
    lock: &L,
    n: usize,
    (ctr, probes): (&str, &str),
    mut each: impl FnMut(&L::Guard),
) {
    for _ in 0..n {
        let g = hold::<Z, _>(lock);
        each(&g);
        critical(zk, ctr, probes, 1);
        give::<Z, _>(g);
    }
}

/// Two Java clients and two Rust clients, 15 turns each, on one mutex: the
/// counter adds up and no probe saw two holders; Rust's tokens rise.
fn exclusion_with_java<Z: Adapter>() {
    let mut f = Exclusion::<Z>::new("curator-mutex", &[]);
    let (lock, ctr, probes) = (f.path("lock"), f.ctr.clone(), f.probes.clone());
    let java = f.java.spawn_each(&["c", "c2"], |c| {
        format!("mutexLoop {c} {lock} {ctr} {probes} 15")
    });
    on_threads::<Z, _>(&f.cs, 2, move |zk, _| {
        let m = InterProcessMutex::new(zk.as_async(), &lock).unwrap();
        let mut last = 0;
        turns(zk, &m, 15, (&ctr, &probes), |g| {
            assert!(g.fencing_token() > last, "the fencing token did not rise");
            last = g.fencing_token();
            assert!(g.is_held());
        });
    });
    f.check(java, 60, "a count was lost: exclusion failed");
}

/// A lock path of its own (tagged `tag`), a Rust client, and a Curator peer
/// with a mutex `jm` on that path.
fn java_mutex<Z: Adapter>(tag: &str) -> (String, Z, Curator) {
    let cs = shared_server().connect_string();
    let lock = format!("{}/lock", unique(tag, Z::NAME));
    let zk = Z::connect_to(&cs);
    let mut java = Curator::start(&cs);
    java.ok(&format!("mutex jm c {lock}"));
    (lock, zk, java)
}

/// Java holds: Rust cannot; Java releases: Rust gets it; Rust holds
/// (re-entrantly, one node): Java cannot; Rust releases twice: Java gets it.
/// The node's name and data are Curator's.
fn both_directions<Z: Adapter>() {
    let (lock, zk, mut java) = java_mutex::<Z>("curator-dir");
    assert_eq!(java.ok("acquire jm 5000"), "true");
    let m = InterProcessMutex::new(zk.as_async(), &lock).unwrap();
    assert!(
        take::<Z, _>(&m, Some(300)).is_none(),
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
    let g2 = hold::<Z, _>(&m);
    assert_eq!(g2.node_path(), g.node_path());
    assert!(m.is_acquired());
    assert_eq!(
        java.ok("acquire jm 300"),
        "false",
        "Java got a mutex Rust holds"
    );
    give::<Z, _>(g2);
    assert_eq!(
        java.ok("acquire jm 300"),
        "false",
        "one re-entrant release let Java in"
    );
    let java_wait = java.send("acquire jm 20000");
    give::<Z, _>(g);
    assert_eq!(java.answer(java_wait, WAIT), Some(Ok("true".to_string())));
    assert!(!m.is_acquired());
    java.ok("release jm");
    zk.close().unwrap();
}

/// Revocation both ways: Rust revokes a revocable Java holder (which
/// releases, so Rust gets the lock); Java revokes a revocable Rust holder
/// (which is told).
fn revocation<Z: Adapter>() {
    let (lock, zk, mut java) = java_mutex::<Z>("curator-revoke");
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
    let revocable = MutexOptions {
        revocable: true,
        ..MutexOptions::default()
    };
    let m = InterProcessMutex::with_options(zk.as_async(), &lock, revocable).unwrap();
    let g = take::<Z, _>(&m, Some(10_000)).expect("Java did not release on revocation");
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
    give::<Z, _>(g);
    zk.close().unwrap();
}

/// Java writers, a Java reader loop and Rust writers on one read/write lock:
/// the writers' counter adds up and no two writers held at once.
fn rw_with_java<Z: Adapter>() {
    let mut f = Exclusion::<Z>::new("curator-rw", &[]);
    let (lock, ctr, probes) = (f.path("lock"), f.ctr.clone(), f.probes.clone());
    let java = f.java_loops([
        format!("rwLoop c {lock} {ctr} {probes} 15 write"),
        format!("rwLoop c2 {lock} {ctr} {probes}-r 15 read"),
    ]);
    let zk = Z::connect_to(&f.cs);
    let rw = InterProcessReadWriteLock::new(zk.as_async(), &lock).unwrap();
    for i in 0..15 {
        let g = hold::<Z, _>(rw.write_lock());
        assert!(g.node_path().contains("-__WRIT__"), "{}", g.node_path());
        critical(&zk, &ctr, &probes, 1);
        give::<Z, _>(g);
        if i % 5 == 0 {
            let r = hold::<Z, _>(rw.read_lock());
            assert!(r.node_path().contains("-__READ__"));
            give::<Z, _>(r);
        }
    }
    zk.close().unwrap();
    f.check(java, 30, "a write was lost: writers overlapped");
}

/// A Java multi-lock over [a, b], a Java mutex on b alone and two Rust
/// multi-locks over [a, b], 10 turns each, on one unversioned counter: it
/// adds up and no probe saw two holders.
fn multi_lock_exclusion<Z: Adapter>() {
    let mut f = Exclusion::<Z>::new("curator-multi", &["a", "b"]);
    let (a, b, ctr, probes) = (f.path("a"), f.path("b"), f.ctr.clone(), f.probes.clone());
    let java = f.java_loops([
        format!("multiLoop c {a},{b} {ctr} {probes} 10"),
        format!("mutexLoop c2 {b} {ctr} {probes} 10"),
    ]);
    on_threads::<Z, _>(&f.cs, 2, move |zk, _| {
        let m = InterProcessMultiLock::new(zk.as_async(), [&a, &b]).unwrap();
        turns(zk, &m, 10, (&ctr, &probes), |g| assert!(g.is_held()));
    });
    f.check(java, 40, "a count was lost: exclusion failed");
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
    make_dirs(&zk, &[&a, &b]);
    let mut java = Curator::start(&cs);
    java.ok(&format!("multi jm c {a},{b}"));
    assert_eq!(java.ok("multiAcquire jm 5000"), "true");
    let m = InterProcessMultiLock::new(zk.as_async(), [&a, &b]).unwrap();
    assert!(
        take::<Z, _>(&m, Some(300)).is_none(),
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
    give::<Z, _>(g);
    assert!(!m.is_acquired());
    let (pa, pb) = (
        zk.exists(&a).unwrap().unwrap().pzxid,
        zk.exists(&b).unwrap().unwrap().pzxid,
    );
    assert!(pb < pa, "b was not released before a ({pb} >= {pa})");

    // Java's mutex holds b: Rust takes a, waits 300 ms for b, lets a go.
    assert_eq!(java.ok("acquire jb 5000"), "true");
    assert!(
        take::<Z, _>(&m, Some(300)).is_none(),
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
