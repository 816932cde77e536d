//! zk-recipes' [`Semaphore`] against a real ZooKeeper 3.8 server, for every
//! adapter: 10 clients never hold more than `max_leases` at once; kazoo's
//! layout (max in the node's data, plain-uuid ephemeral leases, the sibling
//! `<path>-__lock__` lock) and the max-leases mismatch check; refusals and
//! timeouts leave nothing behind; a holder's expired session frees its lease.
//! Module `kazoo`: kazoo 2.11 Semaphores and ours share the leases of one path
//! (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use recipes_common::{eventually, on_threads, run, unique, Adapter, Section, WAIT};
use zk_client::{Data, Error};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Semaphore, SemaphoreLease};

fn kids<Z: Zk>(zk: &Z, path: &str) -> Vec<String> {
    zk.get_children(path).unwrap_or_default()
}

fn take<Z: Adapter>(s: &Semaphore) -> SemaphoreLease {
    if Z::NAME == "blocking" {
        s.acquire_blocking(None).unwrap().unwrap()
    } else {
        Z::exec(s.acquire()).unwrap()
    }
}

fn never_above_max<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("sem", Z::NAME);
    let section = Arc::new(Section::default());
    let (p, inside) = (path.clone(), section.clone());
    on_threads::<Z, _>(&cs, 10, move |zk, w| {
        let s = Semaphore::new(zk.as_async(), &p, &format!("w{w}"), 3).unwrap();
        for _ in 0..8 {
            let l = take::<Z>(&s);
            inside.enter();
            thread::sleep(Duration::from_millis(5));
            inside.leave();
            Z::exec(l.release()).unwrap();
        }
    });
    let peak = section.peak();
    println!(
        "[{}] Semaphore(3): 80 leases by 10 clients, peak {peak} holders",
        Z::NAME
    );
    assert!(peak <= 3, "{peak} holders of 3 leases");
    let zk = Z::connect_to(&cs);
    assert!(kids(&zk, &path).is_empty());
    zk.delete(&path, None).unwrap();
    zk.delete(&format!("{path}-__lock__"), None).unwrap();
    zk.close().unwrap();
}

fn layout_refusals_expiry<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("sem-layout", Z::NAME);
    let (za, zb, zc) = (
        Z::connect_for(&cs, Duration::from_secs(4)),
        Z::connect_to(&cs),
        Z::connect_to(&cs),
    );
    let sa = Semaphore::new(za.as_async(), &path, "a", 2).unwrap();
    let sb = Semaphore::new(zb.as_async(), &path, "b", 2).unwrap();
    let sc = Semaphore::new(zc.as_async(), &path, "c", 2).unwrap();
    let la = take::<Z>(&sa);
    let lb = take::<Z>(&sb);
    assert_eq!(zc.get_data(&path).unwrap().0, Data::new("2"));
    let leases = kids(&zc, &path);
    assert_eq!(leases.len(), 2);
    for l in &leases {
        assert!(
            l.len() == 32 && l.bytes().all(|c| c.is_ascii_hexdigit()),
            "{l}"
        );
        let (_, stat) = zc.get_data(&format!("{path}/{l}")).unwrap();
        assert_ne!(stat.ephemeral_owner, 0, "a lease is not ephemeral");
    }
    assert!(zc.exists(&format!("{path}-__lock__")).unwrap().is_some());
    let mut holders = Z::exec(sc.lease_holders()).unwrap();
    holders.sort();
    assert_eq!(holders, ["a", "b"]);
    // Full: refused, timed out, cancelled; nothing left behind.
    assert!(Z::exec(sc.try_acquire()).unwrap().is_none());
    assert!(Z::exec(sc.acquire_timeout(Duration::from_millis(300)))
        .unwrap()
        .is_none());
    let s2 = sc.clone();
    let waiting = thread::spawn(move || s2.acquire_blocking(None));
    thread::sleep(Duration::from_millis(200));
    sc.cancel();
    assert!(matches!(waiting.join().unwrap(), Err(Error::Interrupted)));
    eventually(WAIT, "nothing left by the refusals", || {
        kids(&zc, &path).len() == 2 && kids(&zc, &format!("{path}-__lock__")).is_empty()
    });
    // A different max_leases on the same path is refused.
    let wrong = Semaphore::new(zc.as_async(), &path, "x", 3).unwrap();
    let r = Z::exec(wrong.try_acquire());
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    // A holder's session ends: its lease goes to the waiter.
    let s2 = sc.clone();
    let waiter = thread::spawn(move || s2.acquire_blocking(Some(Duration::from_secs(60))));
    thread::sleep(Duration::from_millis(200));
    kill_session(&cs, &za.session().unwrap(), WAIT).unwrap();
    let lc = waiter
        .join()
        .unwrap()
        .unwrap()
        .expect("the waiter got the freed lease");
    assert!(
        zk_client::blocking::block_on(la.lost(), Some(WAIT)).is_some(),
        "the old holder was not told"
    );
    drop(la);
    Z::exec(lb.release()).unwrap();
    Z::exec(lc.release()).unwrap();
    eventually(WAIT, "all leases gone", || kids(&zc, &path).is_empty());
    zc.delete(&path, None).unwrap();
    zc.delete(&format!("{path}-__lock__"), None).unwrap();
    for z in [za, zb, zc] {
        z.close().unwrap();
    }
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [never_above_max, layout_refusals_expiry]);

// ============================================================================ kazoo

mod kazoo {
    use super::*;
    use recipes_common::{js, js_list, kazoo_test, Kazoo};

    kazoo_test!(kazoo_and_ours_share_leases, "kazoo-sem", body);

    type Waiter = thread::JoinHandle<zk_client::Result<Option<SemaphoreLease>>>;

    /// Ours waits for a lease of `sem` on a thread of its own (30 s at most).
    fn ours_waits(sem: &Semaphore) -> Waiter {
        let s = sem.clone();
        thread::spawn(move || s.acquire_blocking(Some(Duration::from_secs(30))))
    }

    /// Ours got the lease it waited for (`what`), and lets it go.
    fn ours_got_in(waiter: Waiter, what: &str) {
        let l = waiter.join().unwrap().unwrap().expect(what);
        TokioZk::exec(l.release()).unwrap();
    }

    fn body(cs: String, mut kz: Kazoo, zk: TokioZk, path: String) {
        let p = js(&path);
        kz.run(&format!(
            "objs['s'] = zk.Semaphore({p}, 'py', max_leases=2)\nresult = objs['s'].acquire(timeout=10)"
        ));
        let ours = Semaphore::new(zk.as_async(), &path, "rs", 2).unwrap();
        let l = TokioZk::exec(ours.try_acquire())
            .unwrap()
            .expect("the second lease");
        // Full for both.
        assert!(TokioZk::exec(ours.try_acquire()).unwrap().is_none());
        assert_eq!(
            kz.run(&format!(
                "objs['t'] = zk.Semaphore({p}, 'py2', max_leases=2)\nresult = objs['t'].acquire(blocking=False)"
            )),
            "false"
        );
        let mut h = TokioZk::exec(ours.lease_holders()).unwrap();
        h.sort();
        assert_eq!(h, ["py", "rs"]);
        assert_eq!(
            kz.run("result = sorted(objs['s'].lease_holders())"),
            js_list(&["py", "rs"])
        );
        // Mismatched max_leases, both ways.
        let r = TokioZk::exec(
            Semaphore::new(zk.as_async(), &path, "x", 3)
                .unwrap()
                .try_acquire(),
        );
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
        let r = kz.try_run(&format!(
            "result = zk.Semaphore({p}, 'x', max_leases=3).acquire(blocking=False)"
        ));
        assert!(r.as_ref().is_err_and(|e| e.contains("ValueError")), "{r:?}");
        // kazoo waits for our lease, gets it when we release.
        let bg = kz.spawn("result = objs['t'].acquire(timeout=30)");
        assert!(kz.finished(bg, Duration::from_millis(300)).is_none());
        TokioZk::exec(l.release()).unwrap();
        assert_eq!(kz.finished(bg, WAIT), Some(Ok("true".into())));
        // Ours waits for kazoo's, gets it when kazoo releases.
        let waiter = ours_waits(&ours);
        thread::sleep(Duration::from_millis(300));
        assert!(!waiter.is_finished());
        kz.run("objs['s'].release()");
        ours_got_in(waiter, "ours after kazoo released");
        kz.run("objs['t'].release()");

        // kazoo holds the sibling lock: ours waits for it, and kazoo lists our
        // lock contender's data as Python's bytes repr, as its own Semaphore writes.
        kz.run(&format!(
            "objs['inner'] = zk.Lock({}, 'kz')\nresult = objs['inner'].acquire()",
            js(&format!("{path}-__lock__"))
        ));
        assert!(TokioZk::exec(ours.try_acquire()).unwrap().is_none());
        let waiter = ours_waits(&ours);
        eventually(WAIT, "our contender on the sibling lock", || {
            kids(&zk, &format!("{path}-__lock__")).len() == 2
        });
        assert_eq!(
            kz.run("result = objs['inner'].contenders()"),
            js_list(&["kz", "b'rs'"])
        );
        kz.run("objs['inner'].release()");
        ours_got_in(waiter, "ours after the sibling lock");

        // 3 kazoo threads and 3 of ours loop; a witness directory of who is
        // inside never holds more than 2.
        let witness = format!("{path}-witness");
        zk.ensure_path(&witness).unwrap();
        let w = js(&witness);
        let bg = kz.spawn(&format!(
            "import uuid\nbad = []\n\
             def work(i):\n    s = zk.Semaphore({p}, 'k%d' % i, max_leases=2)\n    for _ in range(15):\n        s.acquire(timeout=60)\n        me = zk.create({w} + '/' + uuid.uuid4().hex, ephemeral=True)\n        n = len(zk.get_children({w}))\n        if n > 2: bad.append(n)\n        time.sleep(0.005)\n        zk.delete(me)\n        s.release()\n\
             ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]\n\
             [t.start() for t in ts]\n[t.join() for t in ts]\nresult = bad"
        ));
        let bad = Arc::new(AtomicUsize::new(0));
        let ws: Vec<_> = (0..3)
            .map(|i| {
                let (cs, path, witness, bad) =
                    (cs.clone(), path.clone(), witness.clone(), bad.clone());
                thread::spawn(move || {
                    let z = TokioZk::connect_to(&cs);
                    let s = Semaphore::new(z.as_async(), &path, &format!("r{i}"), 2).unwrap();
                    for _ in 0..15 {
                        let l = TokioZk::exec(s.acquire()).unwrap();
                        let me = z
                            .create(
                                &format!("{witness}/r"),
                                "",
                                zk_client::CreateMode::EphemeralSequential,
                            )
                            .unwrap();
                        if z.get_children(&witness).unwrap().len() > 2 {
                            bad.fetch_add(1, Ordering::SeqCst);
                        }
                        thread::sleep(Duration::from_millis(5));
                        z.delete(&me, None).unwrap();
                        TokioZk::exec(l.release()).unwrap();
                    }
                    z.close().unwrap();
                })
            })
            .collect();
        for t in ws {
            t.join().unwrap();
        }
        assert_eq!(
            kz.finished(bg, Duration::from_secs(120)),
            Some(Ok("[]".into()))
        );
        assert_eq!(bad.load(Ordering::SeqCst), 0, "more than 2 inside");
        assert!(kids(&zk, &path).is_empty());
        drop(kz);
        for p in [path.clone(), format!("{path}-__lock__"), witness] {
            zk.delete_recursive(&p).unwrap();
        }
        zk.close().unwrap();
    }
}
