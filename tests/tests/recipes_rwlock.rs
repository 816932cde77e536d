//! zk-recipes' [`ReadLock`] / [`WriteLock`] against a real ZooKeeper 3.8
//! server, for every adapter: readers hold together, a writer waits for them,
//! a reader queued after a waiting writer waits for it, and kazoo's #649
//! sequence (writer held, reader waits, writer waits) ends without deadlock.
//! Module `kazoo`: kazoo 2.11 readers and writers and ours on one path keep the
//! same rules and list the same contenders (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::thread;
use std::time::Duration;

use recipes_common::{close_all, eventually, run, unique, Adapter, WAIT};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Lock, LockGuard, ReadLock, WriteLock};

fn kids<Z: Zk>(zk: &Z, path: &str) -> usize {
    zk.get_children(path).map(|k| k.len()).unwrap_or(0)
}

fn try_take<Z: Adapter>(l: &Lock) -> Option<LockGuard> {
    if Z::NAME == "blocking" {
        l.try_acquire_blocking().unwrap()
    } else {
        Z::exec(l.try_acquire()).unwrap()
    }
}

/// Waits for `l` on a thread of its own.
fn wait_for(l: &Lock) -> thread::JoinHandle<LockGuard> {
    let l = l.clone();
    thread::spawn(move || {
        l.acquire_blocking(Some(Duration::from_secs(60)))
            .unwrap()
            .unwrap()
    })
}

/// `held` let go: `next` (waiting on them) gets in while `blocked` stays out
/// (else it panics with `what`); `next` lets go: `blocked` gets in, and lets go.
fn hand_over<Z: Adapter>(
    held: Vec<LockGuard>,
    next: thread::JoinHandle<LockGuard>,
    blocked: thread::JoinHandle<LockGuard>,
    what: &str,
) {
    for g in held {
        Z::exec(g.release()).unwrap();
    }
    let g = next.join().unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(!blocked.is_finished(), "{what}");
    Z::exec(g.release()).unwrap();
    let g = blocked.join().unwrap();
    Z::exec(g.release()).unwrap();
}

fn readers_share_writers_exclude<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("rw", Z::NAME);
    let zs: Vec<Z> = (0..5).map(|_| Z::connect_to(&cs)).collect();
    let readers: Vec<ReadLock> = (0..3)
        .map(|i| ReadLock::new(zs[i].as_async(), &path, &format!("r{i}")).unwrap())
        .collect();
    // Three readers at once.
    let held: Vec<LockGuard> = readers
        .iter()
        .map(|r| try_take::<Z>(r).expect("readers share"))
        .collect();
    let w = WriteLock::new(zs[3].as_async(), &path, "w").unwrap();
    assert!(try_take::<Z>(&w).is_none(), "a writer got in with readers");
    let wt = wait_for(&w);
    eventually(WAIT, "the writer's node", || kids(&zs[0], &path) == 4);
    // A reader after a waiting writer waits for it.
    let late = ReadLock::new(zs[4].as_async(), &path, "late").unwrap();
    assert!(
        try_take::<Z>(&late).is_none(),
        "a reader overtook a waiting writer"
    );
    let lt = wait_for(&late);
    eventually(WAIT, "the late reader's node", || kids(&zs[0], &path) == 5);
    assert_eq!(
        Z::exec(late.contenders()).unwrap(),
        ["r0", "r1", "r2", "w", "late"]
    );
    hand_over::<Z>(held, wt, lt, "the late reader got in with the writer");
    assert_eq!(kids(&zs[0], &path), 0);
    zs[0].delete(&path, None).unwrap();
    close_all(zs);
}

/// kazoo #649: W1 held, R waits, W2 waits; releasing W1 lets R in (W2 waits
/// for R), then W2. Before kazoo 2.9 R and W2 waited on each other.
fn no_649_deadlock<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("rw649", Z::NAME);
    let zs: Vec<Z> = (0..3).map(|_| Z::connect_to(&cs)).collect();
    let w1 = WriteLock::new(zs[0].as_async(), &path, "w1").unwrap();
    let r = ReadLock::new(zs[1].as_async(), &path, "r").unwrap();
    let w2 = WriteLock::new(zs[2].as_async(), &path, "w2").unwrap();
    let g1 = try_take::<Z>(&w1).unwrap();
    let rt = wait_for(&r);
    eventually(WAIT, "the reader's node", || kids(&zs[0], &path) == 2);
    let w2t = wait_for(&w2);
    eventually(WAIT, "the second writer's node", || {
        kids(&zs[0], &path) == 3
    });
    hand_over::<Z>(vec![g1], rt, w2t, "a writer got in with a reader");
    zs[0].delete(&path, None).unwrap();
    close_all(zs);
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [readers_share_writers_exclude, no_649_deadlock]);

// ============================================================================ kazoo

mod kazoo {
    use super::*;
    use recipes_common::{js, js_list, kazoo_test, Kazoo};

    kazoo_test!(kazoo_and_ours_share_the_rules, "kazoo-rw", body);

    fn body(cs: String, mut kz: Kazoo, zk: TokioZk, path: String) {
        let zw = TokioZk::connect_to(&cs);
        let p = js(&path);
        // A kazoo reader and ours hold together.
        assert_eq!(
            kz.run(&format!(
                "objs['r'] = zk.ReadLock({p}, 'py-r')\nresult = objs['r'].acquire(timeout=10)"
            )),
            "true"
        );
        let ours_r = ReadLock::new(zk.as_async(), &path, "rs-r").unwrap();
        let gr = TokioZk::exec(ours_r.try_acquire())
            .unwrap()
            .expect("our reader shares with kazoo's");
        // Writers of both wait for the readers.
        let ours_w = WriteLock::new(zw.as_async(), &path, "rs-w").unwrap();
        assert!(TokioZk::exec(ours_w.try_acquire()).unwrap().is_none());
        assert_eq!(
            kz.run(&format!(
                "objs['w'] = zk.WriteLock({p}, 'py-w')\nresult = objs['w'].acquire(blocking=False)"
            )),
            "false"
        );
        let wt = wait_for(&ours_w);
        eventually(WAIT, "our writer's node", || kids(&zk, &path) == 3);
        // kazoo's reader after our waiting writer waits for it.
        let late = kz.spawn(&format!(
            "objs['r2'] = zk.ReadLock({p}, 'py-r2')\nresult = objs['r2'].acquire(timeout=30)"
        ));
        eventually(WAIT, "kazoo's late reader", || kids(&zk, &path) == 4);
        let order = ["py-r", "rs-r", "rs-w", "py-r2"];
        assert_eq!(TokioZk::exec(ours_r.contenders()).unwrap(), order);
        assert_eq!(kz.run("result = objs['r'].contenders()"), js_list(&order));
        assert!(kz.finished(late, Duration::from_millis(300)).is_none());
        // Readers leave: our writer gets in, kazoo's late reader still waits.
        kz.run("objs['r'].release()");
        TokioZk::exec(gr.release()).unwrap();
        let gw = wt.join().unwrap();
        assert!(
            kz.finished(late, Duration::from_millis(300)).is_none(),
            "kazoo's reader got in with our writer"
        );
        TokioZk::exec(gw.release()).unwrap();
        assert_eq!(kz.finished(late, WAIT), Some(Ok("true".into())));
        // kazoo's reader holds: our writer waits, our reader shares.
        assert!(TokioZk::exec(ours_w.try_acquire()).unwrap().is_none());
        let gr = TokioZk::exec(ours_r.try_acquire()).unwrap().expect("share");
        TokioZk::exec(gr.release()).unwrap();
        kz.run("objs['r2'].release()");
        assert_eq!(kids(&zk, &path), 0);
        drop(kz);
        zk.delete_recursive(&path).unwrap();
        zk.close().unwrap();
        zw.close().unwrap();
    }
}
