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

use recipes_common::{eventually, run, unique, Adapter, WAIT};
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{self, DistributedBarrier, DistributedDoubleBarrier};

fn barrier_both_ways<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = format!("{}/barrier", unique("curator-barrier", Z::NAME));
    let zk = Z::connect_to(&cs);
    let b = DistributedBarrier::new(zk.as_async(), &path).unwrap();
    let wait = |b: &DistributedBarrier, ms: u64| {
        let t = Some(Duration::from_millis(ms));
        if Z::NAME == "blocking" {
            b.wait_on_barrier_blocking(t).unwrap()
        } else {
            Z::exec(b.wait_on_barrier(t)).unwrap()
        }
    };
    assert!(wait(&b, 100), "no barrier yet, yet it held");
    let mut java = Curator::start(&cs);
    java.ok(&format!("barrier jb c {path}"));
    java.ok("barrierSet jb");
    assert!(!wait(&b, 300), "Java's barrier did not hold Rust");
    let b2 = b.clone();
    let waiter = thread::spawn(move || {
        if Z::NAME == "blocking" {
            b2.wait_on_barrier_blocking(Some(WAIT)).unwrap()
        } else {
            Z::exec(b2.wait_on_barrier(Some(WAIT))).unwrap()
        }
    });
    thread::sleep(Duration::from_millis(200));
    java.ok("barrierRemove jb");
    assert!(waiter.join().unwrap(), "Rust's waiter was not let through");

    if Z::NAME == "blocking" {
        b.set_barrier_blocking().unwrap()
    } else {
        Z::exec(b.set_barrier()).unwrap()
    }
    assert_eq!(
        zk.get_data(&path).unwrap().0.as_ref(),
        curator::local_address().as_bytes()
    );
    assert_eq!(
        java.ok("barrierWait jb 300"),
        "false",
        "Rust's barrier did not hold Java"
    );
    let j = java.spawn("barrierWait jb 20000");
    thread::sleep(Duration::from_millis(200));
    Z::exec(b.remove_barrier()).unwrap();
    assert_eq!(java.answer(j, WAIT), Some(Ok("true".into())));
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
    assert!(a.try_recv().is_err(), "Rust got in with three of four");
    assert_eq!(
        java.answer(j1, Duration::ZERO),
        None,
        "Java got in with three of four"
    );
    // The fourth (Rust) enters: all are let in.
    let b = member_call::<Z>(&rb, false);
    assert_eq!(a.recv_timeout(WAIT), Ok(true));
    assert_eq!(b.recv_timeout(WAIT), Ok(true));
    assert_eq!(java.answer(j1, WAIT), Some(Ok("true".into())));
    assert_eq!(java.answer(j2, WAIT), Some(Ok("true".into())));
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
    assert!(a.try_recv().is_err(), "Rust left before the last member");
    assert_eq!(
        java.answer(j1, Duration::ZERO),
        None,
        "Java left before the last member"
    );
    let b = member_call::<Z>(&rb, true);
    assert_eq!(a.recv_timeout(WAIT), Ok(true));
    assert_eq!(b.recv_timeout(WAIT), Ok(true));
    assert_eq!(java.answer(j1, WAIT), Some(Ok("true".into())));
    assert_eq!(java.answer(j2, WAIT), Some(Ok("true".into())));
    eventually(WAIT, "nothing left behind", || members() == 0);
    za.close().unwrap();
    zb.close().unwrap();
    admin.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [barrier_both_ways, double_barrier_mixed]);
