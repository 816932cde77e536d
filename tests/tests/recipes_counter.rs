//! zk-recipes' [`Counter`] against a real ZooKeeper 3.8 server, for every
//! adapter: 10 clients adding concurrently lose no add (every intermediate value
//! is seen exactly once as some add's `pre`), in the ASCII int and float forms
//! and the 4-byte Curator form (with its seeded node and range check). Module
//! `kazoo`: kazoo 2.11 Counters and ours add to the same nodes concurrently and
//! the totals add up, read by both, in all three encodings (`ZK_KAZOO_PYTHON`;
//! fails without it).

mod recipes_common;

use std::sync::{Arc, Mutex};
use std::thread;

use recipes_common::{run, unique, Adapter};
use zk_client::{CreateMode, Data};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Change, Counter, CounterValue};

fn add<Z: Adapter, T: CounterValue>(c: &Counter<T>, d: T) -> Change<T> {
    if Z::NAME == "blocking" {
        c.add_blocking(d).unwrap()
    } else {
        Z::exec(c.add(d)).unwrap()
    }
}

fn concurrent_adds<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("counter", Z::NAME);
    let pres = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..10)
        .map(|_| {
            let (cs, path, pres) = (cs.clone(), path.clone(), pres.clone());
            thread::spawn(move || {
                let zk = Z::connect_to(&cs);
                let c = Counter::<i64>::new(zk.as_async(), &path).unwrap();
                for _ in 0..30 {
                    let ch = add::<Z, _>(&c, 1);
                    assert_eq!(ch.post, ch.pre + 1);
                    pres.lock().unwrap().push(ch.pre);
                }
                zk.close().unwrap();
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let mut pres = pres.lock().unwrap().clone();
    pres.sort();
    assert_eq!(
        pres,
        (0..300).collect::<Vec<i64>>(),
        "an add was lost or doubled"
    );
    let zk = Z::connect_to(&cs);
    assert_eq!(zk.get_data(&path).unwrap().0, Data::new("300"));
    let c = Counter::<i64>::new(zk.as_async(), &path).unwrap();
    assert_eq!(Z::exec(c.value()).unwrap(), 300);
    assert_eq!(add::<Z, _>(&c, -301).post, -1);
    assert_eq!(zk.get_data(&path).unwrap().0, Data::new("-1"));
    zk.delete(&path, None).unwrap();
    zk.close().unwrap();
}

fn encodings<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("counter-enc", Z::NAME);
    let zk = Z::connect_to(&cs);
    // Float: Python's repr on the node.
    let f = Counter::with_default(zk.as_async(), &format!("{base}/f"), 1.0f64).unwrap();
    assert_eq!(Z::exec(f.value()).unwrap(), 1.0);
    assert_eq!(zk.get_data(&format!("{base}/f")).unwrap().0, Data::new(""));
    assert_eq!(add::<Z, _>(&f, 2.5).post, 3.5);
    assert_eq!(
        zk.get_data(&format!("{base}/f")).unwrap().0,
        Data::new("3.5")
    );
    add::<Z, _>(&f, 1e16);
    assert_eq!(
        zk.get_data(&format!("{base}/f")).unwrap().0,
        Data::new("1.0000000000000004e+16")
    );
    // An int counter refuses float data (kazoo's ValueError).
    let i = Counter::<i64>::new(zk.as_async(), &format!("{base}/f")).unwrap();
    assert!(Z::exec(i.value()).is_err());
    // Curator form: the node is created holding the default, 4 bytes BE.
    let c = Counter::<i32>::with_default(zk.as_async(), &format!("{base}/c"), 7).unwrap();
    assert_eq!(add::<Z, _>(&c, -10).post, -3);
    assert_eq!(
        zk.get_data(&format!("{base}/c")).unwrap().0,
        Data::new(vec![0xff, 0xff, 0xff, 0xfd])
    );
    assert!(Z::exec(c.add(i32::MAX)).is_ok());
    assert!(Z::exec(c.add(i32::MAX)).is_err(), "left the 4-byte range");
    // An empty node (kazoo made it) reads as the default.
    zk.create(&format!("{base}/e"), "", CreateMode::Persistent)
        .unwrap();
    let e = Counter::<i32>::with_default(zk.as_async(), &format!("{base}/e"), 4).unwrap();
    assert_eq!(Z::exec(e.value()).unwrap(), 4);
    zk.delete_recursive(&base).unwrap();
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [concurrent_adds, encodings]);

// ============================================================================ kazoo

/// 4 kazoo threads and 4 of ours add to one node at once; the total is exact
/// and both read it. Int, float and Curator (`support_curator=True`) forms.
mod kazoo {
    use super::*;
    use recipes_common::{js, kazoo_test, Kazoo, WAIT};

    const ADDS: usize = 150;

    fn kazoo_adds(kz: &mut Kazoo, path: &str, args: &str, delta: &str) -> u64 {
        kz.spawn(&format!(
            "def work():\n    c = zk.Counter({p}{args})\n    for _ in range({ADDS}):\n        c += {delta}\n\
             ts = [threading.Thread(target=work) for _ in range(4)]\n\
             [t.start() for t in ts]\n[t.join() for t in ts]\nresult = 'done'",
            p = js(path)
        ))
    }

    fn ours_add<T: CounterValue>(zk: &TokioZk, path: &str, default: T, delta: T) {
        let ws: Vec<_> = (0..4)
            .map(|_| {
                let c = Counter::with_default(zk.as_async(), path, default).unwrap();
                thread::spawn(move || {
                    for _ in 0..ADDS {
                        TokioZk::exec(c.add(delta)).unwrap();
                    }
                })
            })
            .collect();
        for w in ws {
            w.join().unwrap();
        }
    }

    kazoo_test!(kazoo_and_ours_add_up, "kazoo-counter", body);

    fn body(_: String, mut kz: Kazoo, zk: TokioZk, base: String) {
        let total = 8 * ADDS;

        // Ints (ASCII).
        let p = format!("{base}/int");
        let k = kazoo_adds(&mut kz, &p, "", "1");
        ours_add(&zk, &p, 0i64, 1);
        assert_eq!(kz.finished(k, WAIT), Some(Ok(js("done"))));
        let ours = Counter::<i64>::new(zk.as_async(), &p).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), total as i64);
        assert_eq!(
            kz.run(&format!("result = zk.Counter({}).value", js(&p))),
            total.to_string()
        );

        // Floats (Python repr), +0.5 each.
        let p = format!("{base}/float");
        let k = kazoo_adds(&mut kz, &p, ", default=0.0", "0.5");
        ours_add(&zk, &p, 0.0f64, 0.5);
        assert_eq!(kz.finished(k, WAIT), Some(Ok(js("done"))));
        let ours = Counter::<f64>::new(zk.as_async(), &p).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), total as f64 / 2.0);
        assert_eq!(
            kz.run(&format!(
                "result = zk.Counter({}, default=0.0).value",
                js(&p)
            )),
            format!("{:.1}", total as f64 / 2.0)
        );

        // Curator's 4 bytes, going negative: -1 each.
        let p = format!("{base}/curator");
        let k = kazoo_adds(&mut kz, &p, ", support_curator=True", "-1");
        ours_add(&zk, &p, 0i32, -1);
        assert_eq!(kz.finished(k, WAIT), Some(Ok(js("done"))));
        let ours = Counter::<i32>::new(zk.as_async(), &p).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), -(total as i32));
        assert_eq!(
            kz.run(&format!(
                "result = zk.Counter({}, support_curator=True).value",
                js(&p)
            )),
            format!("-{total}")
        );
        // kazoo made this node empty; we read the default, kazoo reads ours.
        let p = format!("{base}/empty");
        kz.run(&format!(
            "result = zk.Counter({}, default=5, support_curator=True).value",
            js(&p)
        ));
        assert_eq!(zk.get_data(&p).unwrap().0, Data::new(""));
        let ours = Counter::<i32>::with_default(zk.as_async(), &p, 5).unwrap();
        assert_eq!(TokioZk::exec(ours.value()).unwrap(), 5);
        TokioZk::exec(ours.add(-8)).unwrap();
        assert_eq!(
            kz.run(&format!(
                "result = zk.Counter({}, support_curator=True).value",
                js(&p)
            )),
            "-3"
        );
        drop(kz);
        zk.delete_recursive(&base).unwrap();
        zk.close().unwrap();
    }
}
