//! Fault injection against real ZooKeeper 3.8 servers, written once and run against every
//! adapter (tokio, smol, blocking): server restarts, connection cuts, black holes,
//! session expiry without a server reply, and the loss of an ensemble member. Each test starts
//! its own servers; the fault-injecting [`Proxy`] sits between client and server where needed.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, Error, EventType, Op, SessionState, StateStream};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::{Ensemble, ServerOptions, ZkServer};

const WAIT: Duration = Duration::from_secs(20);

/// The ensemble tests start three JVMs each: one at a time on the 2-core machine.
fn ensemble_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads states until one satisfies `pred`; returns the states seen (the match last) and when
/// the match arrived. Panics after `timeout` with what was seen.
fn wait_state(
    states: &mut StateStream,
    timeout: Duration,
    pred: impl Fn(SessionState) -> bool,
) -> (Vec<SessionState>, Instant) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match states.recv_timeout(Some(left)) {
            Some(s) => {
                seen.push(s);
                if pred(s) {
                    return (seen, Instant::now());
                }
            }
            None => panic!("no matching state within {timeout:?}; seen {seen:?}"),
        }
    }
}

/// A new stream with the current state (the first item) already consumed.
fn states_now<Z: Zk>(zk: &Z) -> StateStream {
    let mut states = zk.state_stream();
    let first = states.recv_timeout(Some(Duration::from_secs(5)));
    assert_eq!(first, Some(zk.state()));
    states
}

fn port_of<Z: Zk>(zk: &Z) -> u16 {
    zk.current_host().expect("current host").port
}

/// a. kill -9 and restart of a standalone server: same session, Suspended then Connected, a
/// data watch set before fires for a change made after, ephemerals survive.
pub fn server_restart<Z: Zk>() {
    let mut server = ZkServer::start();
    let b = ClientBuilder::new(&server.connect_string()).session_timeout(Duration::from_secs(30));
    let zk = Z::connect(&b).expect("connect");
    let id = zk.session().unwrap().id;
    zk.create("/eph", "", CreateMode::Ephemeral).unwrap();
    zk.create("/data", "v0", CreateMode::Persistent).unwrap();
    let (_, _, watch) = zk.get_data_watch("/data").unwrap();
    let mut states = states_now(&zk);

    let t0 = Instant::now();
    server.kill();
    let (seen, suspended_at) = wait_state(&mut states, WAIT, |s| s == SessionState::Suspended);
    assert_eq!(seen, vec![SessionState::Suspended], "{}", Z::NAME);
    server.restart();
    let restarted_at = Instant::now();
    let (seen, connected_at) = wait_state(&mut states, WAIT, |s| s.is_connected());
    assert!(
        !seen.iter().any(|s| s.is_terminal()),
        "{}: states {seen:?}",
        Z::NAME
    );
    assert_eq!(*seen.last().unwrap(), SessionState::Connected);
    println!(
        "[{}] server restart: Suspended after {:?}, server back after {:?}, Connected {:?} after that",
        Z::NAME,
        suspended_at - t0,
        restarted_at - t0,
        connected_at.saturating_duration_since(restarted_at)
    );
    assert_eq!(zk.session().unwrap().id, id, "same session");

    let other = Z::connect(&ClientBuilder::new(&server.connect_string())).expect("connect");
    other.set_data("/data", "v1", None).unwrap();
    let event = watch
        .wait_timeout(Some(Duration::from_secs(10)))
        .expect("watch fires");
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, "/data");
    let stat = other.exists("/eph").unwrap().expect("ephemeral survives");
    assert_eq!(stat.ephemeral_owner, id);
    assert_eq!(&zk.get_data("/data").unwrap().0[..], b"v1");
    other.close().unwrap();
    zk.close().unwrap();
}

/// b. Cuts through the proxy, one call at a time: mid-reply (`cut_after`) and between calls
/// (`cut_all`). Every call returns Ok or ConnectionLoss, the session survives, Ok creates exist.
pub fn cuts<Z: Zk>() {
    let server = ZkServer::start();
    let proxy = Proxy::start(server.addr());
    let b = ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(20));
    let zk = Z::connect(&b).expect("connect");
    let id = zk.session().unwrap().id;
    let big = vec![5u8; 100_000];
    zk.create("/big", big.clone(), CreateMode::Persistent)
        .unwrap();
    let mut states = states_now(&zk);
    for round in 0..3 {
        proxy.cut_after(1000);
        match zk.get_data("/big") {
            Err(Error::ConnectionLoss) => {}
            other => panic!("{} round {round}: {:?}", Z::NAME, other.map(|r| r.1)),
        }
        let (seen, _) = wait_state(&mut states, WAIT, |s| s.is_connected());
        assert!(!seen.iter().any(|s| s.is_terminal()), "{seen:?}");
        assert_eq!(&zk.get_data("/big").unwrap().0[..], &big[..]);
    }
    zk.create("/c", "", CreateMode::Persistent).unwrap();
    let mut results = Vec::new();
    for i in 0..60 {
        if i % 10 == 5 {
            proxy.cut_all();
        }
        let path = format!("/c/n-{i}");
        let r = zk.create(&path, "x", CreateMode::Persistent);
        results.push((path, r));
    }
    let mut ok = 0;
    for (path, r) in &results {
        match r {
            Ok(p) => {
                assert_eq!(p, path);
                ok += 1;
            }
            Err(Error::ConnectionLoss) => {}
            Err(e) => panic!("{}: {path}: unexpected {e:?}", Z::NAME),
        }
    }
    let mut states = zk.state_stream();
    wait_state(&mut states, WAIT, |s| s.is_connected());
    for (path, r) in &results {
        if r.is_ok() {
            assert!(zk.exists(path).unwrap().is_some(), "{path} missing");
        }
    }
    println!(
        "[{}] cuts: 3 mid-reply cuts, 6 cut_all over 60 creates: {ok} Ok",
        Z::NAME
    );
    assert_eq!(zk.session().unwrap().id, id, "same session");
    assert_eq!(proxy.connections(), 1);
    zk.close().unwrap();
}

/// Polls many futures at once (a join without an extra dependency), returning their
/// outputs in order.
struct JoinAll<F: std::future::Future> {
    futs: Vec<Option<std::pin::Pin<Box<F>>>>,
    out: Vec<Option<F::Output>>,
}

impl<F: std::future::Future> std::future::Future for JoinAll<F> {
    type Output = Vec<F::Output>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        let mut pending = false;
        for (i, slot) in this.futs.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        this.out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(
                this.out
                    .iter_mut()
                    .map(|o| o.take().expect("done"))
                    .collect(),
            )
        }
    }
}

// Nothing in JoinAll is pinned in place: the futures are boxed.
impl<F: std::future::Future> Unpin for JoinAll<F> {}

fn join_all<F: std::future::Future>(futs: Vec<F>) -> JoinAll<F> {
    let n = futs.len();
    JoinAll {
        futs: futs.into_iter().map(|f| Some(Box::pin(f))).collect(),
        out: (0..n).map(|_| None).collect(),
    }
}

/// b'. 1,000 creates in flight at once while the proxy cuts the connection at random
/// points: every call returns exactly once, Ok or ConnectionLoss (outcome unknown); the
/// session survives; every acknowledged create is there when read back.
pub fn cuts_under_load<Z: Zk>() {
    const N: usize = 1000;
    let server = ZkServer::start();
    let proxy = Proxy::start(server.addr());
    let b = ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(20));
    let zk = Z::connect(&b).expect("connect");
    let id = zk.session().unwrap().id;
    zk.create("/load", "", CreateMode::Persistent).unwrap();
    let client = zk.as_async().clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cutter = {
        let done = done.clone();
        let mut seed = 0x2545_f491_4f6c_dd1du64 ^ std::process::id() as u64;
        std::thread::spawn(move || {
            let mut cuts = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) && cuts < 12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                std::thread::sleep(Duration::from_millis(5 + seed % 40));
                proxy.cut_all();
                cuts += 1;
            }
            (proxy, cuts)
        })
    };
    // Four waves of 1,000 in flight, so the cuts land at different points of the stream.
    let t = Instant::now();
    let mut results = Vec::new();
    for wave in 0..4 {
        let futs: Vec<_> = (0..N)
            .map(|i| {
                let c = client.clone();
                let path = format!("/load/n-{}", wave * N + i);
                async move {
                    c.create(&path, vec![7u8; 100], CreateMode::Persistent)
                        .await
                }
            })
            .collect();
        results.extend(
            zk_client::blocking::block_on(join_all(futs), Some(Duration::from_secs(60)))
                .expect("every call completes"),
        );
        // Let the session come back before the next wave.
        let _ = zk_client::blocking::block_on(client.wait_connected(), Some(WAIT));
    }
    let elapsed = t.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (_proxy, cuts) = cutter.join().unwrap();
    assert_eq!(results.len(), 4 * N);
    let (mut ok, mut lost) = (0, 0);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(p) => {
                assert_eq!(p, &format!("/load/n-{i}"));
                ok += 1;
            }
            Err(Error::ConnectionLoss) => lost += 1,
            Err(e) => panic!("{}: n-{i}: unexpected {e:?}", Z::NAME),
        }
    }
    println!(
        "[{}] 4 waves of 1000 in flight, {cuts} cuts: {ok} Ok, {lost} ConnectionLoss in {elapsed:?}",
        Z::NAME
    );
    // A cut can land after the last reply: read back with retries on ConnectionLoss.
    let read = |path: &str| {
        for _ in 0..50 {
            match zk.exists(path) {
                Err(Error::ConnectionLoss) => std::thread::sleep(Duration::from_millis(100)),
                other => return other.expect("exists"),
            }
        }
        panic!("{path}: still ConnectionLoss");
    };
    for (i, r) in results.iter().enumerate() {
        if r.is_ok() {
            assert!(
                read(&format!("/load/n-{i}")).is_some(),
                "acknowledged n-{i} missing"
            );
        }
    }
    assert_eq!(zk.session().unwrap().id, id, "same session");
    zk.close().unwrap();
}

/// How many watches `many_watches` sets: 100,000 restored and fired for every adapter.
const WATCHES: usize = 100_000;

/// Many watches: `n` data watches survive a reconnect within the session (restored with
/// batched SetWatches), the server holds all of them again, and every one fires afterwards.
pub fn many_watches<Z: Zk>() {
    let n = WATCHES;
    let server = ZkServer::start();
    let proxy = Proxy::start(server.addr());
    let b = ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(30));
    let zk = Z::connect(&b).expect("connect");
    let client = zk.as_async().clone();
    let run =
        |f| zk_client::blocking::block_on(f, Some(Duration::from_secs(120))).expect("in time");
    zk.create("/w", "", CreateMode::Persistent).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let ops = chunk
            .iter()
            .map(|i| Op::create(&format!("/w/n{i}"), "", CreateMode::Persistent))
            .collect();
        zk.multi(ops).unwrap();
    }
    let mut watches = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let futs: Vec<_> = chunk
            .iter()
            .map(|i| {
                let c = client.clone();
                let path = format!("/w/n{i}");
                async move { c.get_data_watch(&path).await }
            })
            .collect();
        for r in run(join_all(futs)) {
            watches.push(r.expect("get_data_watch").2);
        }
    }
    let host = zk_client::HostAddr {
        host: "127.0.0.1".into(),
        port: server.port(),
    };
    let server_watches = || -> usize {
        let text = Z::four_letter(&host, "wchs").unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("Total watches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(server_watches(), n);
    let id = zk.session().unwrap().id;
    let mut states = states_now(&zk);
    let t0 = Instant::now();
    proxy.cut_all();
    wait_state(&mut states, WAIT, |s| s == SessionState::Suspended);
    let (_, connected_at) = wait_state(&mut states, WAIT, |s| s == SessionState::Connected);
    while server_watches() < n && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    let restored_at = Instant::now();
    assert_eq!(server_watches(), n, "every watch restored on the server");
    assert_eq!(zk.session().unwrap().id, id);
    println!(
        "[{}] {n} watches: reconnected {:?} after the cut, all restored {:?} after reconnecting (incl. 4lw polling)",
        Z::NAME,
        connected_at - t0,
        restored_at.saturating_duration_since(connected_at)
    );
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let ops = chunk
            .iter()
            .map(|i| Op::set_data(&format!("/w/n{i}"), "x", None))
            .collect();
        zk.multi(ops).unwrap();
    }
    for (i, w) in watches.into_iter().enumerate() {
        let ev = w
            .wait_timeout(Some(Duration::from_secs(20)))
            .unwrap_or_else(|e| panic!("watch {i}: {e}"));
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        assert_eq!(ev.path, format!("/w/n{i}"));
    }
    zk.close().unwrap();
}

/// c. A black-holed connection is detected within the read timeout (2/3 of the negotiated
/// session timeout) plus a margin; the client moves to the next host and keeps the session.
pub fn black_hole_failover<Z: Zk>() {
    let server = ZkServer::start();
    let proxy = Proxy::start(server.addr());
    let cs = format!("{},{}", proxy.addr(), server.addr());
    let b = ClientBuilder::new(&cs)
        .session_timeout(Duration::from_millis(4000))
        .randomize_hosts(false);
    let zk = Z::connect(&b).expect("connect");
    assert_eq!(port_of(&zk), proxy.addr().port(), "first host first");
    let info = zk.session().unwrap();
    let timeout = info.timeout.expect("negotiated timeout");
    assert_eq!(timeout, Duration::from_millis(4000));
    let read_timeout = timeout * 2 / 3;
    zk.create("/eph", "", CreateMode::Ephemeral).unwrap();
    let mut states = states_now(&zk);

    let t0 = Instant::now();
    proxy.black_hole(true);
    let (seen, detected_at) = wait_state(&mut states, WAIT, |s| s != SessionState::Connected);
    assert_eq!(seen, vec![SessionState::Suspended], "{}", Z::NAME);
    let (seen, connected_at) = wait_state(&mut states, WAIT, |s| s.is_connected());
    assert!(!seen.iter().any(|s| s.is_terminal()), "{seen:?}");
    let detect = detected_at - t0;
    let reconnect = connected_at - detected_at;
    println!(
        "[{}] black hole: read timeout {read_timeout:?}, detected after {detect:?}, \
         reconnected to the other host {reconnect:?} later",
        Z::NAME
    );
    assert!(
        detect <= read_timeout + Duration::from_millis(1500),
        "{}: detection took {detect:?}",
        Z::NAME
    );
    assert_eq!(port_of(&zk), server.port(), "moved to the direct host");
    assert_eq!(zk.session().unwrap().id, info.id, "same session");
    let stat = zk.exists("/eph").unwrap().expect("ephemeral survives");
    assert_eq!(stat.ephemeral_owner, info.id);
    // The black hole heals: the abandoned connection was closed, so nothing reaches
    // the server on it and the live connection is not disturbed.
    proxy.reset();
    let t = Instant::now();
    while proxy.connections() > 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        proxy.connections(),
        0,
        "{}: abandoned connection still open",
        Z::NAME
    );
    assert_eq!(
        states.recv_timeout(Some(Duration::from_millis(1500))),
        None,
        "{}: extra state change after the heal",
        Z::NAME
    );
    assert_eq!(port_of(&zk), server.port());
    assert!(zk.exists("/eph").unwrap().is_some());
    zk.close().unwrap();
}

/// d. With the only host black-holed past the session timeout, the client declares the session
/// Expired on its own.
pub fn local_expiry<Z: Zk>() {
    let server = ZkServer::start();
    let proxy = Proxy::start(server.addr());
    // Terminal expiry, to see Expired stay; the default would open a new session at once.
    let b = ClientBuilder::new(&proxy.connect_string())
        .session_timeout(Duration::from_millis(4000))
        .expiry_policy(zk_client::ExpiryPolicy::Terminal);
    let zk = Z::connect(&b).expect("connect");
    let old = zk.session().unwrap();
    let timeout = old.timeout.expect("negotiated timeout");
    zk.create("/old-eph", "", CreateMode::Ephemeral).unwrap();
    let mut states = states_now(&zk);
    let t0 = Instant::now();
    proxy.black_hole(true);
    let (seen, expired_at) = wait_state(&mut states, WAIT, |s| s.is_terminal());
    let took = expired_at - t0;
    println!(
        "[{}] black hole past the session timeout ({timeout:?}): Expired after {took:?} (states {seen:?})",
        Z::NAME
    );
    assert_eq!(*seen.last().unwrap(), SessionState::Expired, "{seen:?}");
    assert!(seen.contains(&SessionState::Suspended), "{seen:?}");
    assert!(
        took >= timeout * 2 / 3 && took <= timeout + Duration::from_secs(3),
        "{}: expiry after {took:?}",
        Z::NAME
    );
    assert!(matches!(zk.exists("/"), Err(Error::SessionExpired)));
    assert_eq!(zk.state(), SessionState::Expired);
    // The partition heals: a new session can be made, and the old one's ephemeral is gone
    // (the server expires it on its own clock, within a tick or two).
    proxy.reset();
    zk.restart();
    wait_state(&mut states, WAIT, |s| s == SessionState::Connected);
    assert_ne!(zk.session().unwrap().id, old.id, "a new session");
    let t = Instant::now();
    while zk.exists("/old-eph").unwrap().is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}: old ephemeral still there",
            Z::NAME
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    zk.close().unwrap();
}

/// e. kill -9 of the ensemble member the client is on: the session moves to another member,
/// keeps its id and its ephemeral.
pub fn ensemble_member_loss<Z: Zk>() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _serial = ensemble_lock();
    let mut ensemble = Ensemble::start(3, ServerOptions::default());
    let b = ClientBuilder::new(&ensemble.connect_string()).session_timeout(Duration::from_secs(20));
    let zk = Arc::new(Z::connect(&b).expect("connect"));
    let id = zk.session().unwrap().id;
    zk.create("/eph", "", CreateMode::Ephemeral).unwrap();
    zk.create("/load", "", CreateMode::Persistent).unwrap();
    // A write load runs through both kills; it records every acknowledged create and
    // the longest time between two acknowledged writes.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (zk, stop) = (zk.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut acked, mut lost, mut longest) = (Vec::new(), 0usize, Duration::ZERO);
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match zk.create("/load/w-", "x", CreateMode::PersistentSequential) {
                    Ok(p) => {
                        longest = longest.max(last.elapsed());
                        last = Instant::now();
                        acked.push(p);
                    }
                    Err(e) if e.outcome_unknown() || e.is_retryable() => {
                        lost += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => panic!("write load: {e:?}"),
                }
            }
            (acked, lost, longest)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // 1. kill -9 the member the client is on.
    let port = port_of(&*zk);
    let victim = (0..ensemble.len())
        .find(|&i| ensemble.client_addr(i).port() == port)
        .expect("client is on a member");
    let was_leader = ensemble.leader() == Some(victim);
    let mut states = states_now(&*zk);
    let t0 = Instant::now();
    ensemble.kill(victim);
    let (seen, suspended_at) = wait_state(&mut states, WAIT, |s| s == SessionState::Suspended);
    assert_eq!(seen, vec![SessionState::Suspended]);
    let (seen, connected_at) =
        wait_state(&mut states, Duration::from_secs(25), |s| s.is_connected());
    assert!(!seen.iter().any(|s| s.is_terminal()), "{seen:?}");
    println!(
        "[{}] member {victim} (leader: {was_leader}) killed: Suspended after {:?}, Connected {:?} later",
        Z::NAME,
        suspended_at - t0,
        connected_at - suspended_at
    );
    assert_ne!(port_of(&*zk), port, "on another member");
    // 2. bring it back, then kill -9 the leader.
    ensemble.start_member(victim);
    std::thread::sleep(Duration::from_millis(300));
    let leader = ensemble.leader().expect("a leader");
    let on_leader = ensemble.client_addr(leader).port() == port_of(&*zk);
    let t1 = Instant::now();
    ensemble.kill(leader);
    // Writes resume once a new leader is elected (and, if the client was on the leader,
    // once it reconnected).
    let resumed = loop {
        match zk.create("/load/probe-", "", CreateMode::PersistentSequential) {
            Ok(_) => break t1.elapsed(),
            Err(_) if t1.elapsed() < Duration::from_secs(25) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{}: no write after killing the leader: {e:?}", Z::NAME),
        }
    };
    println!(
        "[{}] leader {leader} killed (client on it: {on_leader}): writes resumed after {resumed:?}",
        Z::NAME
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (acked, lost, longest) = load.join().unwrap();
    println!(
        "[{}] write load: {} acknowledged, {lost} failed with unknown outcome, longest gap {longest:?}",
        Z::NAME,
        acked.len()
    );
    assert!(!acked.is_empty());
    assert_eq!(zk.session().unwrap().id, id, "same session");
    let stat = zk.exists("/eph").unwrap().expect("ephemeral survives");
    assert_eq!(stat.ephemeral_owner, id);
    let present: std::collections::HashSet<String> = zk
        .get_children("/load")
        .unwrap()
        .into_iter()
        .map(|c| format!("/load/{c}"))
        .collect();
    for p in &acked {
        assert!(
            present.contains(p),
            "{}: acknowledged write {p} lost",
            Z::NAME
        );
    }
    zk.close().unwrap();
}

zk_tests::adapter_suites!(direct tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [server_restart, cuts, cuts_under_load, many_watches, black_hole_failover, local_expiry, ensemble_member_loss]);
