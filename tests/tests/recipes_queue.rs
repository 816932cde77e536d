//! zk-recipes' [`Queue`] and [`LockingQueue`] against a real ZooKeeper 3.8
//! server, for every adapter: 3 producers and 3 consumers, every item consumed
//! exactly once; priority order; a LockingQueue's claims (a claimed item is not
//! handed to anyone else, release gives it back, a killed session frees it,
//! `consume` removes it for good). Module `kazoo`: kazoo 2.11 producers and
//! consumers with ours on the same queues (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use recipes_common::{fresh, on_threads, remove_and_close, run, unique, Adapter, WAIT};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{LockingQueue, Queue};

const PER_PRODUCER: usize = 40;

fn queue_exactly_once<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("queue", Z::NAME);
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let total = 3 * PER_PRODUCER;
    let mut ts = Vec::new();
    for p in 0..3 {
        let (cs, path) = (cs.clone(), path.clone());
        ts.push(thread::spawn(move || {
            let zk = Z::connect_to(&cs);
            let q = Queue::new(zk.as_async(), &path).unwrap();
            for n in 0..PER_PRODUCER {
                Z::exec(q.put(format!("p{p}-{n}"), (n % 3) as u16 * 10)).unwrap();
            }
            zk.close().unwrap();
        }));
    }
    for _ in 0..3 {
        let (cs, path, got, done) = (cs.clone(), path.clone(), got.clone(), done.clone());
        ts.push(thread::spawn(move || {
            let zk = Z::connect_to(&cs);
            let q = Queue::new(zk.as_async(), &path).unwrap();
            while done.load(Ordering::SeqCst) < total {
                match Z::exec(q.get()).unwrap() {
                    Some(v) => {
                        got.lock()
                            .unwrap()
                            .push(String::from_utf8(v.to_vec()).unwrap());
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    None => thread::sleep(Duration::from_millis(5)),
                }
            }
            zk.close().unwrap();
        }));
    }
    for t in ts {
        t.join().expect("a producer or consumer panicked");
    }
    let got = got.lock().unwrap().clone();
    let set: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), total, "duplicates: {}", got.len() - set.len());
    let want: BTreeSet<_> = (0..3)
        .flat_map(|p| (0..PER_PRODUCER).map(move |n| format!("p{p}-{n}")))
        .collect();
    assert_eq!(set, want);
    let zk = Z::connect_to(&cs);
    let q = Queue::new(zk.as_async(), &path).unwrap();
    assert_eq!(Z::exec(q.len()).unwrap(), 0);
    // Priority, then order of arrival.
    for (v, prio) in [("c", 5), ("d", 100), ("a", 1), ("e", 100), ("b", 5)] {
        let node = Z::exec(q.put(v, prio)).unwrap();
        assert!(
            node.starts_with(&format!("{path}/entry-{prio:03}-")),
            "{node}"
        );
    }
    assert!(Z::exec(q.put("x", 1000)).is_err());
    let out: Vec<String> = (0..5)
        .map(|_| String::from_utf8(Z::exec(q.get()).unwrap().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(out, ["a", "c", "b", "d", "e"]);
    assert_eq!(Z::exec(q.get()).unwrap(), None);
    remove_and_close(zk, &path);
}

fn locking_queue<Z: Adapter>() {
    let (cs, path, zk) = fresh::<Z>("lqueue");
    let q = LockingQueue::new(zk.as_async(), &path).unwrap();
    let items: Vec<Vec<u8>> = (0..30).map(|i| format!("i{i}").into_bytes()).collect();
    Z::exec(q.put_all(items, 100)).unwrap();
    assert_eq!(Z::exec(q.len()).unwrap(), 30);
    let p = path.clone();
    // What each consumer took.
    let mut got: Vec<String> = on_threads::<Z, _>(&cs, 3, move |zk, _| {
        let q = LockingQueue::new(zk.as_async(), &p).unwrap();
        let mut took = Vec::new();
        while let Some(v) = Z::exec(q.get(Some(Duration::from_secs(1)))).unwrap() {
            assert!(Z::exec(q.holds_lock()).unwrap());
            took.push(String::from_utf8(v.to_vec()).unwrap());
            assert!(Z::exec(q.consume()).unwrap());
        }
        took
    })
    .concat();
    got.sort();
    let mut want: Vec<String> = (0..30).map(|i| format!("i{i}")).collect();
    want.sort();
    assert_eq!(got, want, "not every item exactly once");
    assert_eq!(Z::exec(q.len()).unwrap(), 0);

    // Claims: held items are not handed out; release and a killed session give
    // them back.
    let zb = Z::connect_for(&cs, Duration::from_secs(4));
    let qb = LockingQueue::new(zb.as_async(), &path).unwrap();
    Z::exec(q.put("only", 100)).unwrap();
    assert_eq!(
        Z::exec(q.get(Some(WAIT))).unwrap().as_deref(),
        Some(&b"only"[..])
    );
    assert_eq!(
        Z::exec(q.get(Some(WAIT))).unwrap().as_deref(),
        Some(&b"only"[..]),
        "the same again"
    );
    assert_eq!(
        Z::exec(qb.get(Some(Duration::from_millis(300)))).unwrap(),
        None
    );
    let qb2 = qb.clone();
    let waiter = thread::spawn(move || qb2.get_blocking(Some(WAIT)).unwrap());
    thread::sleep(Duration::from_millis(200));
    assert!(Z::exec(q.release()).unwrap());
    assert!(!Z::exec(q.release()).unwrap(), "released twice");
    assert_eq!(waiter.join().unwrap().as_deref(), Some(&b"only"[..]));
    kill_session(&cs, &zb.session().unwrap(), WAIT).unwrap();
    assert_eq!(
        Z::exec(q.get(Some(WAIT))).unwrap().as_deref(),
        Some(&b"only"[..])
    );
    assert!(
        !Z::exec(qb.holds_lock()).unwrap(),
        "a killed session's claim"
    );
    assert!(!Z::exec(qb.consume()).unwrap());
    assert!(Z::exec(q.consume()).unwrap());
    assert_eq!(Z::exec(q.len()).unwrap(), 0);
    zk.delete_recursive(&path).unwrap();
    zk.close().unwrap();
    zb.close().unwrap();
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [queue_exactly_once, locking_queue]);

// ============================================================================ kazoo

mod kazoo {
    use super::*;
    use recipes_common::{js, kazoo_test, Kazoo};

    kazoo_test!(kazoo_and_ours_share_queues, "kazoo-queue", body);

    #[test]
    fn kazoo_and_ours_consume_together() {
        run("kazoo_and_ours_consume_together", mixed_pool)
    }

    /// Two kazoo consumers and two of ours take 80 items from one queue, each
    /// spending 20 ms per item: every item is taken exactly once and the kazoo
    /// consumers get their share. A consumer that lost the race for an item
    /// pauses as kazoo's does; before, ours retried at once, won every later
    /// race and left the kazoo consumers 0 or 1 items.
    fn mixed_pool() {
        const ITEMS: usize = 80;
        let cs = shared_server().connect_string();
        let zk = TokioZk::connect_to(&cs);
        let p = format!("{}/q", unique("kazoo-mixed", "tokio"));
        let q = Queue::new(zk.as_async(), &p).unwrap();
        for i in 0..ITEMS {
            TokioZk::exec(q.put(format!("v{i}"), 0)).unwrap();
        }
        let consume = format!(
            "import time\nq = zk.Queue({})\nout = []\nwhile True:\n    v = q.get()\n    if v is None: break\n    out.append(v.decode())\n    time.sleep(0.02)\nresult = out",
            js(&p)
        );
        let mut kazoos: Vec<Kazoo> = (0..2).map(|_| Kazoo::start(&cs)).collect();
        let jobs: Vec<u64> = kazoos.iter_mut().map(|k| k.spawn(&consume)).collect();
        let ours: Vec<_> = (0..2)
            .map(|_| {
                let (cs, p) = (cs.clone(), p.clone());
                thread::spawn(move || {
                    let zk = TokioZk::connect_to(&cs);
                    let q = Queue::new(zk.as_async(), &p).unwrap();
                    let mut got = Vec::new();
                    while let Some(v) = TokioZk::exec(q.get()).unwrap() {
                        got.push(String::from_utf8(v.to_vec()).unwrap());
                        thread::sleep(Duration::from_millis(20));
                    }
                    zk.close().unwrap();
                    got
                })
            })
            .collect();
        let ours: Vec<Vec<String>> = ours.into_iter().map(|t| t.join().unwrap()).collect();
        let theirs: Vec<Vec<String>> = kazoos
            .iter_mut()
            .zip(&jobs)
            .map(|(k, id)| {
                let r = k.finished(*id, WAIT).expect("kazoo consumer finished");
                let list = r.expect("kazoo consumer ok");
                // A JSON list of strings without escapes: ["v3", "v17"].
                list.trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|v| v.trim().trim_matches('"').to_string())
                    .filter(|v| !v.is_empty())
                    .collect::<Vec<String>>()
            })
            .collect();
        let counts: Vec<usize> = theirs.iter().chain(&ours).map(Vec::len).collect();
        println!("items taken by kazoo, kazoo, ours, ours: {counts:?}");
        let mut all: Vec<&String> = theirs.iter().chain(&ours).flatten().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), ITEMS, "every item once: {counts:?}");
        assert_eq!(
            counts.iter().sum::<usize>(),
            ITEMS,
            "no item twice: {counts:?}"
        );
        for (i, n) in counts[..2].iter().enumerate() {
            assert!(
                *n >= ITEMS / 10,
                "kazoo consumer {i} got {n} of {ITEMS} items beside ours: {counts:?}"
            );
        }
        zk.close().unwrap();
    }

    /// Python's sort of (priority, arrival) for items put as `i` with priority `p(i)`.
    fn order(n: usize, prio: impl Fn(usize) -> usize) -> Vec<String> {
        let mut v: Vec<(usize, usize)> = (0..n).map(|i| (prio(i), i)).collect();
        v.sort();
        v.into_iter().map(|(_, i)| format!("v{i}")).collect()
    }

    fn body(cs: String, mut kz: Kazoo, zk: TokioZk, base: String) {
        // kazoo produces with mixed priorities, ours consumes in its order.
        let p = format!("{base}/q");
        kz.run(&format!(
            "q = zk.Queue({})\nfor i in range(50):\n    q.put(('v%d' % i).encode(), priority=(i % 3) * 7)",
            js(&p)
        ));
        let q = Queue::new(zk.as_async(), &p).unwrap();
        let mut got = Vec::new();
        while let Some(v) = TokioZk::exec(q.get()).unwrap() {
            got.push(String::from_utf8(v.to_vec()).unwrap());
        }
        assert_eq!(got, order(50, |i| (i % 3) * 7));
        // Ours produces, kazoo consumes in the same order.
        for i in 0..50 {
            TokioZk::exec(q.put(format!("v{i}"), ((i % 4) * 5) as u16)).unwrap();
        }
        let k = kz.run(&format!(
            "q = zk.Queue({})\nout = []\nwhile True:\n    v = q.get()\n    if v is None: break\n    out.append(v.decode())\nresult = out",
            js(&p)
        ));
        let want = order(50, |i| (i % 4) * 5);
        assert_eq!(
            k,
            format!(
                "[{}]",
                want.iter().map(|s| js(s)).collect::<Vec<_>>().join(", ")
            )
        );

        // LockingQueue: our claim is not handed to kazoo; kazoo's consume and
        // ours each remove one; a closed session gives our claim back.
        let p = format!("{base}/lq");
        let lq = LockingQueue::new(zk.as_async(), &p).unwrap();
        TokioZk::exec(lq.put_all(vec![b"a".to_vec(), b"b".to_vec()], 100)).unwrap();
        kz.run(&format!("objs['lq'] = zk.LockingQueue({})", js(&p)));
        assert_eq!(
            TokioZk::exec(lq.get(Some(WAIT))).unwrap().as_deref(),
            Some(&b"a"[..])
        );
        assert_eq!(kz.run("result = objs['lq'].get(0.5).decode()"), js("b"));
        assert_eq!(
            kz.run("result = objs['lq'].get(0.5).decode()"),
            js("b"),
            "kazoo's own claim again"
        );
        assert_eq!(kz.run("result = objs['lq'].consume()"), "true");
        assert_eq!(
            kz.run("result = objs['lq'].get(0.5)"),
            "null",
            "kazoo got our claimed item"
        );
        assert!(TokioZk::exec(lq.consume()).unwrap());
        assert_eq!(kz.run("result = len(objs['lq'])"), "0");
        // kazoo puts, ours claims, our session ends: kazoo gets the item.
        kz.run("objs['lq'].put(b'c', priority=3)");
        let zb = TokioZk::connect_to(&cs);
        let lb = LockingQueue::new(zb.as_async(), &p).unwrap();
        assert_eq!(
            TokioZk::exec(lb.get(Some(WAIT))).unwrap().as_deref(),
            Some(&b"c"[..])
        );
        assert_eq!(kz.run("result = objs['lq'].get(0.3)"), "null");
        zb.close().unwrap();
        assert_eq!(kz.run("result = objs['lq'].get(10).decode()"), js("c"));
        assert_eq!(kz.run("result = objs['lq'].consume()"), "true");
        drop(kz);
        zk.delete_recursive(&base).unwrap();
        zk.close().unwrap();
    }
}
