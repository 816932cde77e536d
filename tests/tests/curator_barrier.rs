//! zk-recipes' Curator barriers against Apache Curator 5.4 in a JVM, on a real
//! ZooKeeper 3.8 server, for every adapter: a `DistributedBarrier` raised by
//! one side holds the other's waiters until it is removed, both ways; a
//! `DistributedDoubleBarrier` of four (two Java members, two Rust) lets nobody
//! in before the fourth enters and nobody out before the fourth leaves, and
//! leaves nothing behind.

mod recipes_common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use recipes_common::{either, eventually, run, unique, Adapter, WAIT};
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{self, DistributedBarrier, DistributedDoubleBarrier};

/// Waits on `b` for `limit` at most: whether it was let through.
fn wait_on<Z: Adapter>(b: &DistributedBarrier, limit: Duration) -> bool {
    either::<Z, _, _>(
        || b.wait_on_barrier_blocking(Some(limit)),
        || b.wait_on_barrier(Some(limit)),
    )
    .unwrap()
}

fn barrier_both_ways<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = format!("{}/barrier", unique("curator-barrier", Z::NAME));
    let zk = Z::connect_to(&cs);
    let b = DistributedBarrier::new(zk.as_async(), &path).unwrap();
    let wait = |b: &DistributedBarrier, ms: u64| wait_on::<Z>(b, Duration::from_millis(ms));
    assert!(wait(&b, 100), "no barrier yet, yet it held");
    let mut java = Curator::start(&cs);
    java.ok(&format!("barrier jb c {path}"));
    java.ok("barrierSet jb");
    assert!(!wait(&b, 300), "Java's barrier did not hold Rust");
    let b2 = b.clone();
    let waiter = thread::spawn(move || wait_on::<Z>(&b2, WAIT));
    thread::sleep(Duration::from_millis(200));
    java.ok("barrierRemove jb");
    assert!(waiter.join().unwrap(), "Rust's waiter was not let through");

    either::<Z, _, _>(|| b.set_barrier_blocking(), || b.set_barrier()).unwrap();
    assert_eq!(
        zk.get_data(&path).unwrap().0.as_ref(),
        curator::local_address().as_bytes()
    );
    java.waits_for_release("barrierWait jb", "Rust's barrier did not hold Java", || {
        Z::exec(b.remove_barrier()).unwrap()
    });
    zk.close().unwrap();
}

/// Runs `enter` or `leave` of a Rust member on a thread; the result comes on
/// the channel.
fn member_call<Z: Adapter>(b: &DistributedDoubleBarrier, leave: bool) -> mpsc::Receiver<bool> {
    let (tx, rx) = mpsc::channel();
    let b = b.clone();
    thread::spawn(move || {
        let r = match (Z::NAME, leave) {
            ("blocking", false) => b.enter_blocking(Some(WAIT)),
            ("blocking", true) => b.leave_blocking(Some(WAIT)),
            (_, false) => Z::exec(b.enter(Some(WAIT))),
            (_, true) => Z::exec(b.leave(Some(WAIT))),
        };
        let _ = tx.send(r.unwrap());
    });
    rx
}

/// Neither the Rust member's call (`rust`) nor Java's command `java_id` went
/// through yet (`what`: what going through would have meant).
fn none_through(java: &mut Curator, rust: &mpsc::Receiver<bool>, java_id: u64, what: &str) {
    assert!(rust.try_recv().is_err(), "Rust {what}");
    assert_eq!(java.answer(java_id, Duration::ZERO), None, "Java {what}");
}

/// The four members' enter or leave all went through: the Rust members' calls
/// (`rust`) and Java's commands (`java_ids`).
fn all_through(java: &mut Curator, rust: [mpsc::Receiver<bool>; 2], java_ids: [u64; 2]) {
    for r in rust {
        assert_eq!(r.recv_timeout(WAIT), Ok(true));
    }
    for j in java_ids {
        assert_eq!(java.answer(j, WAIT), Some(Ok("true".into())));
    }
}

fn double_barrier_mixed<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = format!("{}/db", unique("curator-dbarrier", Z::NAME));
    let admin = Z::connect_to(&cs);
    let members = || admin.get_children(&path).map(|k| k.len()).unwrap_or(0);
    let mut java = Curator::start(&cs);
    java.ok("client c2 10000");
    java.ok(&format!("dbarrier jd1 c {path} 4"));
    java.ok(&format!("dbarrier jd2 c2 {path} 4"));
    let (za, zb) = (Z::connect_to(&cs), Z::connect_to(&cs));
    let ra = DistributedDoubleBarrier::new(za.as_async(), &path, 4).unwrap();
    let rb = DistributedDoubleBarrier::new(zb.as_async(), &path, 4).unwrap();

    // Three enter: nobody is let in.
    let j1 = java.spawn("dbEnter jd1 30000");
    let j2 = java.spawn("dbEnter jd2 30000");
    eventually(WAIT, "two Java members entered", || members() == 2);
    // Rust enters third: the count it finds must not let anyone in.
    let a = member_call::<Z>(&ra, false);
    eventually(WAIT, "three entered", || members() >= 3);
    let kids = admin.get_children(&path).unwrap();
    assert!(
        !kids.contains(&curator::READY_NODE.to_string()),
        "ready made with three of four: {kids:?}"
    );
    thread::sleep(Duration::from_millis(300));
    none_through(&mut java, &a, j1, "got in with three of four");
    // The fourth (Rust) enters: all are let in.
    let b = member_call::<Z>(&rb, false);
    all_through(&mut java, [a, b], [j1, j2]);
    let kids = admin.get_children(&path).unwrap();
    assert_eq!(kids.len(), 5, "four members and ready: {kids:?}");
    assert!(kids.contains(&curator::READY_NODE.to_string()));
    let mine = ra.node_path().rsplit('/').next().unwrap();
    assert_eq!(mine.len(), 36, "not a Java UUID: {mine}");

    // Three leave: nobody is let out while the fourth stays.
    let j1 = java.spawn("dbLeave jd1 30000");
    let j2 = java.spawn("dbLeave jd2 30000");
    let a = member_call::<Z>(&ra, true);
    thread::sleep(Duration::from_millis(500));
    none_through(&mut java, &a, j1, "left before the last member");
    let b = member_call::<Z>(&rb, true);
    all_through(&mut java, [a, b], [j1, j2]);
    eventually(WAIT, "nothing left behind", || members() == 0);
    za.close().unwrap();
    zb.close().unwrap();
    admin.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [barrier_both_ways, double_barrier_mixed]);
