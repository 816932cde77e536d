//! zk-recipes' [`Election`] against a real ZooKeeper 3.8 server, for every
//! adapter: one leader at a time among 5 candidates (fencing tokens rising,
//! `contenders()` naming the leader first), a leader whose session is killed
//! learns it from its `Leadership` and the next candidate leads, and `cancel`
//! withdraws a waiting candidate without touching the leader. Module `kazoo`:
//! a kazoo 2.11 `Election` and ours on the same path agree on the leader and
//! the order of candidates (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use recipes_common::{
    eventually, on_threads, remove_and_close, run, unique, Adapter, Section, WAIT,
};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Election, Holding, Leadership};

fn kids<Z: Zk>(zk: &Z, path: &str) -> usize {
    zk.get_children(path).map(|k| k.len()).unwrap_or(0)
}

/// Runs one term: the leader function is `f` (given the identifier's view).
fn term<Z: Adapter, T: Send>(e: &Election, f: impl FnOnce(&Leadership) -> T + Send) -> Option<T> {
    if Z::NAME == "blocking" {
        e.run_blocking(f).unwrap()
    } else {
        Z::exec(e.run(|l| async move { f(&l) })).unwrap()
    }
}

fn one_leader_at_a_time<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("elect", Z::NAME);
    let leading = Arc::new(Section::default());
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let (p, section, b) = (path.clone(), leading.clone(), bad.clone());
    on_threads::<Z, _>(&cs, 5, move |zk, c| {
        let me = format!("cand{c}");
        let e = Election::new(zk.as_async(), &p, &me).unwrap();
        let e2 = e.clone();
        for _ in 0..3 {
            let led = term::<Z, _>(&e, |l| {
                section.enter_with(l.fencing_token());
                let first = e2.contenders_blocking().unwrap();
                if first.first() != Some(&me) {
                    b.lock().unwrap().push(format!("{me} leads but {first:?}"));
                }
                assert_eq!(l.status(), Holding::Held);
                thread::sleep(Duration::from_millis(5));
                section.leave();
            });
            assert!(led.is_some());
        }
    });
    assert_eq!(leading.entries(), 15);
    assert_eq!(leading.overlaps(), 0, "two leaders at once");
    assert_eq!(leading.token_drops(), 0, "token went down");
    let bad = bad.lock().unwrap().clone();
    assert!(bad.is_empty(), "{bad:?}");
    let zk = Z::connect_to(&cs);
    assert_eq!(kids(&zk, &path), 0);
    remove_and_close(zk, &path);
}

fn leader_expiry_hands_over<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("elect-expiry", Z::NAME);
    let za = Z::connect_for(&cs, Duration::from_secs(4));
    let zb = Z::connect_to(&cs);
    let ea = Election::new(za.as_async(), &path, "a").unwrap();
    let eb = Election::new(zb.as_async(), &path, "b").unwrap();
    let (tok_tx, tok_rx) = mpsc::channel();
    let a = thread::spawn(move || {
        // The leader waits until its leadership is lost.
        ea.run_blocking(|l| {
            tok_tx.send(l.fencing_token()).unwrap();
            zk_client::blocking::block_on(l.lost(), Some(Duration::from_secs(60))).is_some()
        })
        .unwrap()
    });
    let token_a = tok_rx.recv_timeout(WAIT).expect("a did not lead");
    let (tx, rx) = mpsc::channel();
    let b = thread::spawn(move || {
        term::<Z, _>(&eb, |l| {
            tx.send(l.fencing_token()).unwrap();
        })
    });
    eventually(WAIT, "b's candidate node", || kids(&zb, &path) == 2);
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "two leaders"
    );
    let t = Instant::now();
    kill_session(&cs, &za.session().unwrap(), WAIT).unwrap();
    let token_b = rx.recv_timeout(WAIT).expect("b did not take over");
    assert!(token_b > token_a);
    assert_eq!(a.join().unwrap(), Some(true), "a was not told it lost");
    println!(
        "[{}] Election: b led {:?} after a's session was killed",
        Z::NAME,
        t.elapsed()
    );
    assert!(b.join().unwrap().is_some());
    eventually(WAIT, "no candidates left", || kids(&zb, &path) == 0);
    zb.delete(&path, None).unwrap();
    za.close().unwrap();
    zb.close().unwrap();
}

fn cancel_withdraws<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("elect-cancel", Z::NAME);
    let (za, zb) = (Z::connect_to(&cs), Z::connect_to(&cs));
    let ea = Election::new(za.as_async(), &path, "a").unwrap();
    let eb = Election::new(zb.as_async(), &path, "b").unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (led_tx, led_rx) = mpsc::channel();
    let ea2 = ea.clone();
    let a = thread::spawn(move || {
        term::<Z, _>(&ea2, move |l| {
            led_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            l.status()
        })
    });
    led_rx.recv_timeout(WAIT).expect("a did not lead");
    let eb2 = eb.clone();
    let b = thread::spawn(move || term::<Z, _>(&eb2, |_| ()));
    eventually(WAIT, "b's candidate node", || kids(&za, &path) == 2);
    assert_eq!(Z::exec(ea.contenders()).unwrap(), ["a", "b"]);
    eb.cancel();
    assert_eq!(b.join().unwrap(), None, "a cancelled candidate led");
    assert_eq!(kids(&za, &path), 1, "the cancelled candidate's node stayed");
    // Cancelling a leader's election does not interrupt it.
    ea.cancel();
    go_tx.send(()).unwrap();
    assert_eq!(a.join().unwrap(), Some(Holding::Held));
    assert_eq!(kids(&za, &path), 0);
    za.delete(&path, None).unwrap();
    za.close().unwrap();
    zb.close().unwrap();
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [one_leader_at_a_time, leader_expiry_hands_over, cancel_withdraws]);

// ============================================================================ kazoo

/// kazoo's Election and ours on one path: one leader at a time, in the order
/// the candidates joined, and both sides list the same candidates.
mod kazoo {
    use super::*;
    use recipes_common::{js, js_list, kazoo_test, Kazoo};

    /// A kazoo candidate `name` that leads until `objs['go_<name>']` is set.
    fn join_kazoo(kz: &mut Kazoo, path: &str, name: &str) -> u64 {
        kz.run(&format!(
            "objs['e_{name}'] = zk.Election({p}, {n})\nobjs['go_{name}'] = threading.Event()",
            p = js(path),
            n = js(name)
        ));
        kz.spawn(&format!(
            "def lead():\n    say('leader {name}')\n    objs['go_{name}'].wait(60)\n    say('resigned {name}')\n\
             objs['e_{name}'].run(lead)\nresult = 'done'"
        ))
    }

    kazoo_test!(kazoo_and_ours_agree_on_the_leader, "kazoo-elect", body);

    fn body(_: String, mut kz: Kazoo, zk: TokioZk, path: String) {
        let ours = Election::new(zk.as_async(), &path, "rs").unwrap();

        // kazoo leads first; ours waits behind it.
        let k1 = join_kazoo(&mut kz, &path, "py1");
        kz.event("py1 leading", |e| e == "leader py1");
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let o = ours.clone();
        let mine = thread::spawn(move || {
            TokioZk::exec(o.run(|l| async move {
                tx.send(l.fencing_token()).unwrap();
                let _ = go_rx.recv_timeout(Duration::from_secs(60));
            }))
            .unwrap()
        });
        eventually(WAIT, "our candidate node", || kids(&zk, &path) == 2);
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "two leaders"
        );
        assert_eq!(TokioZk::exec(ours.contenders()).unwrap(), ["py1", "rs"]);
        assert_eq!(
            kz.run("result = objs['e_py1'].contenders()"),
            js_list(&["py1", "rs"])
        );
        // kazoo resigns: ours leads; a second kazoo candidate queues behind.
        kz.run("objs['go_py1'].set()");
        kz.event("py1 resigned", |e| e == "resigned py1");
        assert_eq!(kz.finished(k1, WAIT), Some(Ok(js("done"))));
        rx.recv_timeout(WAIT).expect("ours did not lead");
        let k2 = join_kazoo(&mut kz, &path, "py2");
        eventually(WAIT, "kazoo's candidate node", || kids(&zk, &path) == 2);
        assert_eq!(TokioZk::exec(ours.contenders()).unwrap(), ["rs", "py2"]);
        assert_eq!(
            kz.run("result = objs['e_py2'].contenders()"),
            js_list(&["rs", "py2"])
        );
        assert!(
            kz.finished(k2, Duration::from_millis(300)).is_none(),
            "kazoo leads while we do"
        );
        // Ours resigns: kazoo leads.
        go_tx.send(()).unwrap();
        assert!(mine.join().unwrap().is_some());
        kz.event("py2 leading", |e| e == "leader py2");
        // Ours waits again and is cancelled: its node goes, kazoo keeps leading.
        let o = ours.clone();
        let waiting = thread::spawn(move || o.run_blocking(|_| ()).unwrap());
        eventually(WAIT, "our candidate node", || kids(&zk, &path) == 2);
        assert_eq!(
            kz.run("result = objs['e_py2'].contenders()"),
            js_list(&["py2", "rs"])
        );
        ours.cancel();
        assert_eq!(waiting.join().unwrap(), None);
        assert_eq!(
            kz.run("result = objs['e_py2'].contenders()"),
            js_list(&["py2"])
        );
        kz.run("objs['go_py2'].set()");
        assert_eq!(kz.finished(k2, WAIT), Some(Ok(js("done"))));
        assert_eq!(kids(&zk, &path), 0);
        drop(kz);
        zk.delete_recursive(&path).unwrap();
        zk.close().unwrap();
    }
}
