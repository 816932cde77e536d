//! zk-recipes' [`Lock`] against a real ZooKeeper 3.8 server, for every adapter
//! (tokio, smol, blocking; the async ones run the lock's futures on their own
//! executor, zk-blocking uses the `_blocking` forms): mutual exclusion among 10
//! clients (never two inside, fencing tokens always rising), acquisition in
//! creation order with each waiter watching only its predecessor, try / timeout /
//! drop / cancel leaving no node behind, and a holder whose session is killed
//! handing over to the next (and seeing the loss). Module `kazoo`: the same path
//! shared with a real kazoo 2.11 process (`ZK_KAZOO_PYTHON`; fails without it).
//! The simulated fault schedules are in `recipes_lock_sim.rs`.

mod recipes_common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use recipes_common::{
    eventually, fresh, on_threads, remove_and_close, run, unique, Adapter, Section, WAIT,
};
use zk_client::{ClientBuilder, Error, SessionState};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tests::{kill_session, Suspensions};
use zk_tokio::recipes::{Holding, Lock, LockGuard, LockOptions};

fn acquire<Z: Adapter>(lock: &Lock) -> LockGuard {
    if Z::NAME == "blocking" {
        lock.acquire_blocking(None).unwrap().unwrap()
    } else {
        Z::exec(lock.acquire()).unwrap()
    }
}

fn release<Z: Adapter>(g: LockGuard) {
    if Z::NAME == "blocking" {
        g.release_blocking().unwrap()
    } else {
        Z::exec(g.release()).unwrap()
    }
}

fn children<Z: Zk>(zk: &Z, path: &str) -> Vec<String> {
    let mut k = zk.get_children(path).unwrap();
    k.sort_by_key(|n| n[n.len() - 10..].to_string());
    k
}

/// 10 clients, 15 rounds each: a shared counter never sees two holders, and
/// each holder's fencing token is above every earlier one.
fn mutual_exclusion<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("mutex", Z::NAME);
    let section = Arc::new(Section::default());
    let t = Instant::now();
    let (p, s) = (path.clone(), section.clone());
    on_threads::<Z, _>(&cs, 10, move |zk, w| {
        let lock = Lock::new(zk.as_async(), &p, &format!("w{w}")).unwrap();
        for i in 0..15 {
            let g = acquire::<Z>(&lock);
            s.enter_with(g.fencing_token());
            assert_eq!(g.status(), Holding::Held);
            thread::sleep(Duration::from_millis(1 + (w + i) as u64 % 3));
            s.leave();
            release::<Z>(g);
        }
    });
    let n = section.entries();
    println!(
        "[{}] Lock: {n} acquisitions by 10 clients in {:?}, overlaps {}, fencing token drops {}",
        Z::NAME,
        t.elapsed(),
        section.overlaps(),
        section.token_drops()
    );
    assert_eq!(n, 150);
    assert_eq!(section.overlaps(), 0, "two holders at once");
    assert_eq!(section.token_drops(), 0, "a fencing token went down");
    let zk = Z::connect_to(&cs);
    assert!(children(&zk, &path).is_empty(), "nodes left behind");
    remove_and_close(zk, &path);
}

/// Waiters get the lock in the order their nodes were created; each watches
/// only its predecessor; `contenders()` lists them in that order.
fn fifo_order<Z: Adapter>() {
    let (cs, path, zk) = fresh::<Z>("fifo");
    let holder = Lock::new(zk.as_async(), &path, "holder").unwrap();
    let g = acquire::<Z>(&holder);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..5 {
        let (cs, p, order) = (cs.clone(), path.clone(), order.clone());
        waiters.push(thread::spawn(move || {
            let zk = Z::connect_to(&cs);
            let lock = Lock::new(zk.as_async(), &p, &format!("c{i}")).unwrap();
            let g = acquire::<Z>(&lock);
            order.lock().unwrap().push(format!("c{i}"));
            release::<Z>(g);
            zk.close().unwrap();
        }));
        eventually(WAIT, "the waiter's node", || {
            children(&zk, &path).len() == i + 2
        });
    }
    let want = ["holder", "c0", "c1", "c2", "c3", "c4"];
    assert_eq!(Z::exec(holder.contenders()).unwrap(), want);
    // One watch per waiter, each on its predecessor's node.
    let kids = children(&zk, &path);
    let host = zk.current_host().unwrap();
    eventually(WAIT, "one watch per waiter, on its predecessor", || {
        let out = Z::four_letter(&host, "wchp").unwrap();
        let mut watched: Vec<(String, usize)> = Vec::new();
        for l in out.lines() {
            if l.starts_with('/') {
                watched.push((l.trim().to_string(), 0));
            } else if !l.trim().is_empty() {
                if let Some(w) = watched.last_mut() {
                    w.1 += 1;
                }
            }
        }
        let ours: Vec<_> = watched
            .into_iter()
            .filter(|(p, _)| p.starts_with(&format!("{path}/")))
            .collect();
        let want: Vec<_> = kids[..5]
            .iter()
            .map(|k| (format!("{path}/{k}"), 1))
            .collect();
        let mut ours_sorted = ours.clone();
        ours_sorted.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        ours_sorted == want_sorted
    });
    release::<Z>(g);
    for w in waiters {
        w.join().expect("a waiter panicked");
    }
    assert_eq!(*order.lock().unwrap(), ["c0", "c1", "c2", "c3", "c4"]);
    assert!(children(&zk, &path).is_empty());
    remove_and_close(zk, &path);
}

/// try_acquire, a timed acquire, a dropped acquire and a cancelled one all
/// leave nothing behind; the holder is unaffected.
fn refusals_leave_nothing<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("refuse", Z::NAME);
    let (zh, zw) = (Z::connect_to(&cs), Z::connect_to(&cs));
    let holder = Lock::new(zh.as_async(), &path, "holder").unwrap();
    let g = acquire::<Z>(&holder);
    let held = children(&zh, &path);
    assert_eq!(held.len(), 1);
    assert!(held[0].len() == 32 + 8 + 10 && held[0][32..].starts_with("__lock__"));
    assert_eq!(
        zh.get_data(&g.node_path()).unwrap().0,
        zk_client::Data::new("holder")
    );

    let other = Lock::new(zw.as_async(), &path, "other").unwrap();
    // Non-blocking.
    let r = if Z::NAME == "blocking" {
        other.try_acquire_blocking().unwrap()
    } else {
        Z::exec(other.try_acquire()).unwrap()
    };
    assert!(r.is_none());
    assert_eq!(children(&zh, &path), held, "try_acquire left its node");
    // Timed.
    let t = Instant::now();
    let r = if Z::NAME == "blocking" {
        other
            .acquire_blocking(Some(Duration::from_millis(300)))
            .unwrap()
    } else {
        Z::exec(other.acquire_timeout(Duration::from_millis(300))).unwrap()
    };
    assert!(r.is_none());
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        children(&zh, &path),
        held,
        "a timed-out acquire left its node"
    );
    // Dropped while waiting (the executor gives up on it).
    let r = zk_client::blocking::block_on(other.acquire(), Some(Duration::from_millis(300)));
    assert!(r.is_none());
    eventually(WAIT, "the dropped acquisition's node removed", || {
        children(&zh, &path) == held
    });
    // Cancelled from another thread.
    let o2 = other.clone();
    let waiting = thread::spawn(move || o2.acquire_blocking(None));
    eventually(WAIT, "the waiter's node", || {
        children(&zh, &path).len() == 2
    });
    other.cancel();
    let r = waiting.join().unwrap();
    assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
    assert_eq!(
        children(&zh, &path),
        held,
        "a cancelled acquire left its node"
    );
    // A later acquisition is not cancelled.
    assert_eq!(g.status(), Holding::Held);
    release::<Z>(g);
    let g2 = other.acquire_blocking(Some(WAIT)).unwrap().unwrap();
    assert_eq!(Z::exec(other.contenders()).unwrap(), ["other"]);
    release::<Z>(g2);
    assert!(children(&zh, &path).is_empty());
    zh.delete(&path, None).unwrap();
    zh.close().unwrap();
    zw.close().unwrap();
}

/// The holder's session is killed while another client waits: the waiter gets
/// the lock with a higher fencing token, and the old holder sees the loss.
fn holder_expiry_hands_over<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("expiry", Z::NAME);
    let (za, zb) = (
        Z::connect_for(&cs, Duration::from_secs(4)),
        Z::connect_to(&cs),
    );
    let la = Lock::new(za.as_async(), &path, "a").unwrap();
    let lb = Lock::new(zb.as_async(), &path, "b").unwrap();
    let ga = acquire::<Z>(&la);
    let lb2 = lb.clone();
    let waiter = thread::spawn(move || lb2.acquire_blocking(Some(Duration::from_secs(60))));
    eventually(WAIT, "the waiter's node", || {
        children(&zb, &path).len() == 2
    });
    let lost = ga.lost();
    let session = za.session().unwrap();
    let t = Instant::now();
    kill_session(&cs, &session, WAIT).unwrap();
    let gb = waiter
        .join()
        .unwrap()
        .unwrap()
        .expect("the waiter got the lock");
    println!(
        "[{}] Lock: the waiter held {:?} after the holder's session was killed",
        Z::NAME,
        t.elapsed()
    );
    assert!(gb.fencing_token() > ga.fencing_token());
    assert!(
        zk_client::blocking::block_on(lost, Some(WAIT)).is_some(),
        "the old holder was not told"
    );
    assert_eq!(ga.status(), Holding::Lost);
    // Releasing a lost lock is harmless (its node is gone), once reconnected.
    release::<Z>(ga);
    assert_eq!(gb.status(), Holding::Held);
    assert_eq!(Z::exec(lb.contenders()).unwrap(), ["b"]);
    release::<Z>(gb);
    assert!(children(&zb, &path).is_empty());
    zb.delete(&path, None).unwrap();
    za.close().unwrap();
    zb.close().unwrap();
}

/// The connection is cut right after the create went out (its answer lost):
/// the acquisition adopts its node by prefix instead of queueing twice. Then an
/// acquisition dropped while disconnected has its node removed once the
/// connection is back.
fn cut_during_acquisition<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("cut", Z::NAME);
    let proxy = Proxy::start(shared_server().addr());
    let zh = Z::connect_to(&cs);
    let za = Z::connect_to(&proxy.connect_string());
    let suspensions = Suspensions::count(&za);
    let session = za.session().unwrap().id;
    let holder = Lock::new(zh.as_async(), &path, "holder").unwrap();
    let g = acquire::<Z>(&holder);
    let la = Lock::new(za.as_async(), &path, "a").unwrap();
    // Once refused, the lock knows its path exists: the next acquisition's
    // first request is its create.
    assert!(Z::exec(la.try_acquire()).unwrap().is_none());
    // The next bytes from the server (the create's answer) cut the connection.
    proxy.cut_after(0);
    let l2 = la.clone();
    let waiter = thread::spawn(move || l2.acquire_blocking(Some(Duration::from_secs(60))));
    eventually(WAIT, "the waiter's node", || {
        children(&zh, &path).len() == 2
    });
    eventually(WAIT, "the cut", || suspensions.get() == 1);
    eventually(WAIT, "reconnected", || {
        za.state() == SessionState::Connected
    });
    thread::sleep(Duration::from_millis(500));
    let kids = children(&zh, &path);
    assert_eq!(
        kids.len(),
        2,
        "queued twice after the lost answer: {kids:?}"
    );
    assert_eq!(za.session().unwrap().id, session, "the session changed");
    release::<Z>(g);
    let ga = waiter
        .join()
        .unwrap()
        .unwrap()
        .expect("the waiter got the lock");
    assert_eq!(ga.node_path(), format!("{path}/{}", kids[1]));
    release::<Z>(ga);

    // Dropped while the connection is down: removed once it is back.
    let g = acquire::<Z>(&holder);
    let l2 = la.clone();
    let waiter = thread::spawn(move || {
        zk_client::blocking::block_on(l2.acquire(), Some(Duration::from_secs(1))).is_none()
    });
    eventually(WAIT, "the waiter's node", || {
        children(&zh, &path).len() == 2
    });
    proxy.black_hole(true);
    proxy.cut_all();
    assert!(waiter.join().unwrap(), "the acquisition was not dropped");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(children(&zh, &path).len(), 2, "removed while cut off?");
    proxy.black_hole(false);
    eventually(WAIT, "the dropped acquisition's node removed", || {
        children(&zh, &path).len() == 1
    });
    assert_eq!(za.session().unwrap().id, session, "the session changed");

    // Dropped after a create whose answer was lost, while still cut off: once
    // back, the cleanup finds the node by its prefix and removes it. The cut must
    // fall on the create's answer, so nothing else may be on its way when it is
    // armed:
    // - the cleanup's delete above is applied (the holder sees one child) before
    //   its answer is back (a proxy trace showed the cut taking that answer, the
    //   create never sent): a round trip on the client's connection brings every
    //   earlier answer in (a connection answers in order);
    // - the reconnection attempts made into the black hole have their
    //   ConnectRequests forwarded when the hole ends (the trace shows two at
    //   once), and a server given a ConnectRequest for a session closes the
    //   session's other connection (ZooKeeper's CLIENT_RECONNECT): one processed
    //   late drops the client's live connection once more (read from the
    //   server's code, not seen). So the proxy must hold only the client's
    //   connection, and the server get a moment for what the hole let through;
    //   a drop meanwhile is counted before arming.
    eventually(WAIT, "only the client's own connection", || {
        proxy.connections() == 1
    });
    thread::sleep(Duration::from_millis(300));
    eventually(WAIT, "connected", || za.state() == SessionState::Connected);
    assert_eq!(children(&za, &path).len(), 1);
    let before = suspensions.get();
    // The black hole goes on with the cut, before the client can reconnect.
    proxy.partition_after(0);
    let l2 = la.clone();
    let waiter = thread::spawn(move || {
        zk_client::blocking::block_on(l2.acquire(), Some(Duration::from_secs(1))).is_none()
    });
    eventually(WAIT, "the second cut", || suspensions.get() == before + 1);
    assert!(waiter.join().unwrap(), "the acquisition was not dropped");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        children(&zh, &path).len(),
        2,
        "the create was not applied, or its node removed while cut off"
    );
    proxy.black_hole(false);
    eventually(WAIT, "the node found by prefix and removed", || {
        children(&zh, &path).len() == 1
    });
    assert_eq!(za.session().unwrap().id, session, "the session changed");
    release::<Z>(g);
    assert!(children(&zh, &path).is_empty());
    zh.delete(&path, None).unwrap();
    suspensions.remove(&za);
    za.close().unwrap();
    zh.close().unwrap();
}

/// A Curator-style contender (`_c_<uuid>-lock-<seq>`) blocks us only with the
/// `-lock-` extra pattern; foreign children are ignored.
fn extra_patterns<Z: Adapter>() {
    let (_, path, zk) = fresh::<Z>("curator");
    zk.ensure_path(&path).unwrap();
    zk.create(
        &format!("{path}/lease_holder"),
        "x",
        zk_client::CreateMode::Persistent,
    )
    .unwrap();
    let curator = zk
        .create(
            &format!("{path}/_c_6f1c2d3e-1111-4222-8333-944445555666-lock-"),
            "10.0.0.1",
            zk_client::CreateMode::EphemeralSequential,
        )
        .unwrap();
    let plain = Lock::new(zk.as_async(), &path, "plain").unwrap();
    let g = Z::exec(plain.try_acquire())
        .unwrap()
        .expect("plain lock ignores curator nodes");
    release::<Z>(g);
    let aware = Lock::with_options(
        zk.as_async(),
        &path,
        LockOptions {
            identifier: Some("aware".into()),
            extra_lock_patterns: vec!["-lock-".into()],
            ..LockOptions::default()
        },
    )
    .unwrap();
    assert!(Z::exec(aware.try_acquire()).unwrap().is_none());
    assert_eq!(Z::exec(aware.contenders()).unwrap(), ["10.0.0.1"]);
    zk.delete(&curator, None).unwrap();
    let g = Z::exec(aware.try_acquire()).unwrap().expect("free again");
    release::<Z>(g);
    zk.delete_recursive(&path).unwrap();
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [mutual_exclusion, fifo_order, refusals_leave_nothing, holder_expiry_hands_over, cut_during_acquisition, extra_patterns]);

// ============================================================================ ensemble

/// kill -9 of the ensemble member the holder is on: the holder's session moves
/// to another member and keeps the lock (Suspended, then Held again, same
/// token); the waiter does not get it until the holder releases. Once per
/// adapter, on one 3-member ensemble.
#[test]
fn holder_member_killed_in_ensemble() {
    run("holder_member_killed_in_ensemble", || {
        let mut ens = zk_tests::Ensemble::start(3, zk_tests::ServerOptions::default());
        member_killed::<TokioZk>(&mut ens);
        member_killed::<SmolZk>(&mut ens);
        member_killed::<BlockingZk>(&mut ens);
    })
}

fn member_killed<Z: Adapter>(ens: &mut zk_tests::Ensemble) {
    let cs = ens.connect_string();
    let path = unique("ensemble", Z::NAME);
    let (zh, zw) = (
        Z::connect_for(&cs, Duration::from_secs(20)),
        Z::connect_for(&cs, Duration::from_secs(20)),
    );
    let holder = Lock::new(zh.as_async(), &path, "holder").unwrap();
    let g = acquire::<Z>(&holder);
    let token = g.fencing_token();
    let waiter_lock = Lock::new(zw.as_async(), &path, "waiter").unwrap();
    let w2 = waiter_lock.clone();
    let waiter = thread::spawn(move || w2.acquire_blocking(Some(Duration::from_secs(90))));
    eventually(WAIT, "the waiter's node", || {
        children(&zh, &path).len() == 2
    });
    let port = zh.current_host().unwrap().port;
    let victim = (0..ens.len())
        .find(|&i| ens.client_addr(i).port() == port)
        .expect("the holder is on a member");
    let t = Instant::now();
    ens.kill(victim);
    eventually(WAIT, "the holder suspended", || {
        g.status() == Holding::Suspended || zh.current_host().map(|h| h.port) != Some(port)
    });
    eventually(
        Duration::from_secs(40),
        "the holder back on another member",
        || g.status() == Holding::Held && zh.current_host().map(|h| h.port) != Some(port),
    );
    println!(
        "[{}] Lock: holder's member {victim} killed, held again after {:?}",
        Z::NAME,
        t.elapsed()
    );
    thread::sleep(Duration::from_millis(500));
    assert!(!waiter.is_finished(), "the waiter took a lock still held");
    assert_eq!(g.fencing_token(), token);
    release::<Z>(g);
    let gw = waiter
        .join()
        .unwrap()
        .unwrap()
        .expect("the waiter after the release");
    assert!(gw.fencing_token() > token);
    release::<Z>(gw);
    ens.start_member(victim);
    eventually(
        Duration::from_secs(30),
        "the killed member serving again",
        || ens.mode(victim).is_some(),
    );
    zh.delete(&path, None).unwrap();
    zh.close().unwrap();
    zw.close().unwrap();
}

// ============================================================================ kazoo

/// A real kazoo 2.11 process and our Lock on the same path: each waits for the
/// other's holder, takes over on release, and both list the same contenders.
mod kazoo {
    use super::*;
    use recipes_common::{js, js_list, Kazoo};

    #[test]
    fn kazoo_and_ours_exclude_each_other() {
        run("kazoo_and_ours_exclude_each_other", body)
    }

    fn body() {
        let cs = shared_server().connect_string();
        let mut kz = Kazoo::start(&cs);
        let zk = TokioZk::connect(&ClientBuilder::new(&cs)).unwrap();
        let path = unique("kazoo-lock", "tokio");
        let ours = Lock::new(zk.as_async(), &path, "rs").unwrap();
        kz.run(&format!(
            "objs['l'] = zk.Lock({}, 'py')\nresult = objs['l'].acquire()",
            js(&path)
        ));

        // kazoo holds; ours waits, and both see the same queue.
        assert!(TokioZk::exec(ours.try_acquire()).unwrap().is_none());
        assert_eq!(children(&zk, &path).len(), 1, "try_acquire left a node");
        let o = ours.clone();
        let waiter = thread::spawn(move || TokioZk::exec(o.acquire()));
        eventually(WAIT, "our waiting node", || children(&zk, &path).len() == 2);
        thread::sleep(Duration::from_millis(300));
        assert!(!waiter.is_finished(), "we took the lock kazoo holds");
        assert_eq!(TokioZk::exec(ours.contenders()).unwrap(), ["py", "rs"]);
        assert_eq!(
            kz.run("result = objs['l'].contenders()"),
            js_list(&["py", "rs"])
        );
        kz.run("objs['l'].release()");
        let g = waiter
            .join()
            .unwrap()
            .expect("ours got the lock after kazoo released");

        // Ours holds; kazoo's timed and non-blocking acquires fail and clean up.
        let r = kz.try_run(&format!(
            "objs['k'] = zk.Lock({}, 'py2')\nresult = objs['k'].acquire(timeout=0.5)",
            js(&path)
        ));
        assert!(
            r.as_ref().is_err_and(|e| e.contains("LockTimeout")),
            "{r:?}"
        );
        assert_eq!(
            kz.run("result = objs['k'].acquire(blocking=False)"),
            "false"
        );
        assert_eq!(children(&zk, &path).len(), 1, "kazoo left a node");
        // kazoo waits behind us; both list the same queue; it gets the lock
        // once we release.
        let bg = kz.spawn("result = objs['k'].acquire(timeout=30)");
        eventually(WAIT, "kazoo's waiting node", || {
            children(&zk, &path).len() == 2
        });
        assert_eq!(TokioZk::exec(ours.contenders()).unwrap(), ["rs", "py2"]);
        assert_eq!(
            kz.run("result = objs['k'].contenders()"),
            js_list(&["rs", "py2"])
        );
        assert!(
            kz.finished(bg, Duration::from_millis(300)).is_none(),
            "kazoo took our lock"
        );
        TokioZk::exec(g.release()).unwrap();
        assert_eq!(kz.finished(bg, WAIT), Some(Ok("true".into())));
        assert!(kz.run("result = objs['k'].is_acquired") == "true");
        // And ours waits for kazoo again, then gets it.
        let o = ours.clone();
        let waiter = thread::spawn(move || ours_with_timeout(&o));
        eventually(WAIT, "our waiting node", || children(&zk, &path).len() == 2);
        kz.run("objs['k'].release()");
        let g = waiter
            .join()
            .unwrap()
            .expect("ours after kazoo's second release");
        // kazoo reads our identifier as UTF-8 text.
        assert_eq!(kz.run("result = objs['k'].contenders()"), js_list(&["rs"]));
        TokioZk::exec(g.release()).unwrap();
        assert!(children(&zk, &path).is_empty());
        drop(kz);
        zk.delete_recursive(&path).unwrap();
        zk.close().unwrap();
    }

    fn ours_with_timeout(l: &Lock) -> Option<LockGuard> {
        TokioZk::exec(l.acquire_timeout(WAIT)).unwrap()
    }
}
