//! The whole zk-tokio stack (client core, driver, reader and writer tasks) against
//! zk-proto's simulated ensemble over in-memory pipes, on tokio's paused clock.
//! Idle hours, stuck writes and a thousand reconnects each take milliseconds, and
//! every scenario ends with the leak counts back at zero.
//!
//! Defects of issue 10 these catch: the driver sleeping past the session's new
//! deadline (idle client declared dead), a blocked write stopping the clock, the
//! driver never exiting, watches left armed by dropped futures, fired one-shot
//! queues kept forever, probe sockets leaking, state queues nobody reads.

use std::time::Duration;

use proptest::prelude::*;
use zk_proto::OpCode;
use zk_tests::sim::{start_all, stop_member};
use zk_tests::simnet::SimNet;
use zk_tokio::{
    Client, ClientBuilder, ConnectionEvent, CreateMode, Error, LiveCounts, SessionState,
};

fn builder(net: &SimNet, timeout_s: u64) -> ClientBuilder {
    ClientBuilder::new(&net.connect_string(""))
        .session_timeout(Duration::from_secs(timeout_s))
        .connect_deadline(Duration::from_secs(60))
}

async fn connect(net: &SimNet, timeout_s: u64) -> Client {
    zk_tokio::connect_with(&builder(net, timeout_s), net.connector())
        .await
        .expect("connect to the simulated ensemble")
}

fn pings(net: &SimNet) -> usize {
    net.with(|c| {
        c.request_log()
            .iter()
            .filter(|(_, _, op)| *op == OpCode::Ping)
            .count()
    })
}

/// Waits (virtual time) until the driver and every transport are gone.
async fn assert_all_released(diag: &zk_tokio::Diagnostics) {
    for _ in 0..1000 {
        let c = diag.counts();
        if c.drivers == 0 && c.transports == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        diag.counts(),
        LiveCounts::default(),
        "leaked after close and drop"
    );
}

/// Connects (session `timeout_s`) with a state stream, which starts Connected.
async fn connected(net: &SimNet, timeout_s: u64) -> (Client, zk_tokio::StateStream) {
    let zk = connect(net, timeout_s).await;
    let mut states = zk.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));
    (zk, states)
}

/// Closes `zk`, drops it and then `states` (a stream of it), and waits until all
/// it ran is released.
async fn close_released(zk: Client, states: Option<zk_tokio::StateStream>) {
    let diag = zk.diagnostics();
    zk.close().await.unwrap();
    drop(zk);
    drop(states);
    assert_all_released(&diag).await;
}

/// Round `i` of a reconnect loop: cuts every connection, and counts the states
/// `states` reports until Connected again (that one included).
async fn cut_until_connected(net: &SimNet, states: &mut zk_tokio::StateStream, i: usize) -> usize {
    assert!(net.cut_all() >= 1, "round {i}: nothing to cut");
    let mut changes = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), states.next()).await {
            Ok(Some(SessionState::Connected)) => return changes + 1,
            Ok(Some(_)) => changes += 1,
            other => panic!("round {i}: {other:?}"),
        }
    }
}

/// Nothing pending on a state stream right now.
async fn no_state_change(s: &mut zk_tokio::StateStream) -> bool {
    tokio::time::timeout(Duration::ZERO, s.next())
        .await
        .is_err()
}

#[tokio::test(start_paused = true)]
async fn idle_hour_stays_connected_and_pings() {
    let net = SimNet::new(1);
    let (zk, mut states) = connected(&net, 10).await;
    let id = zk.session().unwrap().id;
    let before = pings(&net);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(zk.state(), SessionState::Connected);
    assert!(
        no_state_change(&mut states).await,
        "state changed while idle"
    );
    assert_eq!(zk.session().unwrap().id, id);
    // Read timeout 6.67 s, a ping every 3.33 s of silence: ~1080 in an hour.
    let sent = pings(&net) - before;
    assert!(
        (1000..=1100).contains(&sent),
        "{sent} pings in an idle hour"
    );
    assert!(zk.exists("/").await.unwrap().is_some());
    close_released(zk, Some(states)).await;
}

#[tokio::test(start_paused = true)]
async fn stuck_write_does_not_stop_the_clock() {
    let net = SimNet::new(1);
    let (zk, mut states) = connected(&net, 6).await;
    net.stall_member(0, true);
    let stalled_at = tokio::time::Instant::now();
    // 2 MiB of writes against a 16 KiB pipe: the writer blocks.
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let zk = zk.clone();
            tokio::spawn(async move {
                zk.create(
                    &format!("/big{i}"),
                    vec![7u8; 256 * 1024],
                    CreateMode::Persistent,
                )
                .await
            })
        })
        .collect();
    // The read timeout (4 s of a 6 s session) fires although the write is stuck.
    let next = tokio::time::timeout(Duration::from_secs(30), states.next())
        .await
        .expect("no state change within 30 s of a stalled peer");
    assert_eq!(next, Some(SessionState::Suspended));
    let took = stalled_at.elapsed();
    assert!(
        took >= Duration::from_millis(3900) && took <= Duration::from_millis(4500),
        "declared dead after {took:?}"
    );
    for c in calls {
        let r = tokio::time::timeout(Duration::from_secs(30), c)
            .await
            .expect("a call never returned")
            .unwrap();
        assert!(
            matches!(r, Err(Error::ConnectionLoss) | Ok(_)),
            "unexpected outcome {r:?}"
        );
    }
    // close() returns although the member still does not read.
    let diag = zk.diagnostics();
    tokio::time::timeout(Duration::from_secs(10), zk.close())
        .await
        .expect("close hung")
        .unwrap();
    drop(zk);
    drop(states);
    assert_all_released(&diag).await;
    assert_eq!(net.open_connections(), 0);
}

#[tokio::test(start_paused = true)]
async fn thousand_reconnects_leave_one_connection() {
    let net = SimNet::new(3);
    let (zk, mut states) = connected(&net, 10).await;
    let id = zk.session().unwrap().id;
    for i in 0..1000 {
        cut_until_connected(&net, &mut states, i).await;
    }
    assert_eq!(zk.session().unwrap().id, id);
    assert!(net.accepted() >= 1001);
    let c = zk.diagnostics().counts();
    assert_eq!((c.transports, c.writers, c.drivers), (1, 1, 1), "{c:?}");
    assert_eq!(net.open_connections(), 1);
    close_released(zk, Some(states)).await;
}

/// A listener that never returns (until released) holds back at most the listener
/// backlog (1,024 changes): 600 reconnects make 1,200 changes, and once released it
/// is called for no more than the backlog plus the one it was stuck in. The session
/// itself is not held up meanwhile.
#[tokio::test(start_paused = true)]
async fn a_stuck_listener_holds_a_bounded_backlog() {
    let net = SimNet::new(3);
    let zk = connect(&net, 10).await;
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    zk.add_listener(move |_| {
        if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            let _ = release_rx.lock().unwrap().recv();
        }
    });
    let mut states = zk.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));
    let mut changes = 0;
    for i in 0..600 {
        changes += cut_until_connected(&net, &mut states, i).await;
    }
    assert!(changes >= 1200, "{changes} changes");
    release_tx.send(()).unwrap();
    // Let the listener thread drain what it kept (real threads, real time).
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = calls.load(std::sync::atomic::Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(
        (2..=1 + 1024 + 1).contains(&last),
        "the listener was called {last} times for {changes} changes"
    );
    zk.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn driver_exits_after_close_or_abandon_then_drop() {
    let net = SimNet::new(1);
    for abandon in [false, true] {
        let zk = connect(&net, 10).await;
        let diag = zk.diagnostics();
        assert_eq!(diag.counts().drivers, 1);
        if abandon {
            zk.abandon();
        } else {
            zk.close().await.unwrap();
        }
        drop(zk);
        assert_all_released(&diag).await;
    }
    // Dropping a connected client closes its session and ends its driver too.
    let zk = connect(&net, 10).await;
    let id = zk.session().unwrap().id;
    let diag = zk.diagnostics();
    drop(zk);
    assert_all_released(&diag).await;
    assert!(
        !net.with(|c| c.session_alive(id)),
        "dropped client's session stays open"
    );
}

#[tokio::test(start_paused = true)]
async fn watch_queues_do_not_leak() {
    let net = SimNet::new(1);
    let zk = connect(&net, 10).await;
    zk.create("/w", "x", CreateMode::Persistent).await.unwrap();
    // 200 one-shot watches that fire: nothing stays behind.
    for i in 0..200 {
        let (_, _, w) = zk.get_data_watch("/w").await.unwrap();
        zk.set_data("/w", format!("{i}"), None).await.unwrap();
        w.await.unwrap();
    }
    let c = zk.diagnostics().counts();
    assert_eq!(
        (c.watch_queues, c.session_watches, c.calls),
        (0, 0, 0),
        "{c:?}"
    );
    // A watch call whose future is dropped before the reply: gone locally and on the server.
    net.with(|c| c.set_hold(0, true, tokio::time::Instant::now().into_std()));
    let pending = {
        let zk = zk.clone();
        tokio::spawn(async move { zk.get_data_watch("/w").await.map(|_| ()) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    pending.abort();
    let _ = pending.await;
    net.with(|c| c.set_hold(0, false, tokio::time::Instant::now().into_std()));
    assert!(zk.exists("/w").await.unwrap().is_some());
    let c = zk.diagnostics().counts();
    assert_eq!(
        (c.watch_queues, c.session_watches, c.calls),
        (0, 0, 0),
        "{c:?}"
    );
    let conns = net.with(|c| c.connections(0));
    let server_watches: usize = net.with(|c| conns.iter().map(|k| c.watch_count(*k)).sum());
    assert_eq!(
        server_watches, 0,
        "the dropped call's watch is still armed on the server"
    );
    // A persistent watch dropped unread: its queue goes with it.
    let w = zk
        .add_watch("/w", zk_tokio::AddWatchMode::Persistent)
        .await
        .unwrap();
    for i in 0..50 {
        zk.set_data("/w", format!("p{i}"), None).await.unwrap();
    }
    drop(w);
    zk.exists("/").await.unwrap();
    let c = zk.diagnostics().counts();
    assert_eq!((c.watch_queues, c.session_watches), (0, 0), "{c:?}");
    // State streams nobody reads are pruned.
    for _ in 0..100 {
        let _ = zk.state_stream();
        zk.wait_connected().await.unwrap();
    }
    assert_eq!(zk.diagnostics().counts().state_queues, 0);
    close_released(zk, None).await;
}

#[tokio::test(start_paused = true)]
async fn read_only_probes_do_not_leak_sockets() {
    let net = SimNet::new(3);
    let now = || tokio::time::Instant::now().into_std();
    net.with(|c| {
        c.stop_member(1, now());
        c.stop_member(2, now());
        c.set_read_only(0, true, now());
    });
    let b = builder(&net, 10).read_only(true);
    let zk = zk_tokio::connect_with(&b, net.connector()).await.unwrap();
    assert_eq!(zk.state(), SessionState::ConnectedReadOnly);
    // Probes run for ten virtual minutes (every up-to-60 s, to each other member).
    tokio::time::sleep(Duration::from_secs(600)).await;
    let c = zk.diagnostics().counts();
    assert!(c.transports <= 2, "probe sockets leak: {c:?}");
    assert!(net.open_connections() <= 2);
    close_released(zk, None).await;
}

#[tokio::test(start_paused = true)]
async fn coarse_connection_events_like_kazoo_and_curator() {
    let net = SimNet::new(2);
    let b = builder(&net, 10);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let zk = zk_tokio::connect_with(&b, net.connector()).await.unwrap();
    zk.add_connection_listener(move |e| {
        let _ = tx.send(e);
    });
    let first = zk.session().unwrap().id;
    // Listeners added after connecting hear nothing until something changes.
    net.cut_all();
    // The listener thread is a real thread: wait for it in real time, yielding to
    // the runtime's tasks (which neither sleeps nor moves the paused clock).
    async fn next(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<ConnectionEvent>,
    ) -> Option<ConnectionEvent> {
        let t = std::time::Instant::now();
        loop {
            if let Ok(e) = rx.try_recv() {
                return Some(e);
            }
            if t.elapsed() > Duration::from_secs(5) {
                return None;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert_eq!(next(&mut rx).await, Some(ConnectionEvent::Suspended));
    zk.wait_connected().await.unwrap();
    assert_eq!(next(&mut rx).await, Some(ConnectionEvent::Reconnected));
    // Expired on the server: LOST, then a new session (the default policy) and RECONNECTED.
    net.with(|c| c.expire_session(first, tokio::time::Instant::now().into_std()));
    net.cut_all();
    let mut seen = Vec::new();
    while seen.last() != Some(&ConnectionEvent::Reconnected) {
        match next(&mut rx).await {
            Some(e) => seen.push(e),
            None => panic!("no RECONNECTED after the expiry: {seen:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ConnectionEvent::Suspended,
            ConnectionEvent::Lost,
            ConnectionEvent::Reconnected
        ]
    );
    assert_ne!(zk.session().unwrap().id, first);
    // Never twice in a row.
    zk.close().await.unwrap();
    assert_eq!(next(&mut rx).await, Some(ConnectionEvent::Lost));
    assert_eq!(rx.try_recv().ok(), None);
}

fn set_config(net: &SimNet, members: &[usize]) {
    let text: String = members
        .iter()
        .map(|m| format!("server.{}=m{m}:2888:3888:participant;m{m}:1\n", m + 1))
        .collect();
    net.with(|c| {
        c.admin(
            zk_proto::Request::SetData(zk_proto::SetDataRequest {
                path: "/zookeeper/config".into(),
                data: Some(text.into_bytes().into()),
                version: -1,
            }),
            tokio::time::Instant::now().into_std(),
        )
        .expect("set the simulated config")
    });
}

fn member_of(zk: &Client) -> Option<String> {
    zk.current_host().map(|h| h.host)
}

#[tokio::test(start_paused = true)]
async fn following_the_ensemble_config() {
    let net = SimNet::new(3);
    set_config(&net, &[0]);
    let b = ClientBuilder::new("m0:1")
        .session_timeout(Duration::from_secs(10))
        .follow_ensemble(true);
    let zk = zk_tokio::connect_with(&b, net.connector()).await.unwrap();
    let id = zk.session().unwrap().id;
    zk.create("/e", "", CreateMode::Ephemeral).await.unwrap();
    // Two members join: the client learns them from the config watch.
    set_config(&net, &[0, 1, 2]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut hosts: Vec<String> = zk.hosts().into_iter().map(|h| h.host).collect();
    hosts.sort();
    assert_eq!(hosts, ["m0", "m1", "m2"]);
    // Its member leaves: it moves, same session, and never tries m0 again.
    set_config(&net, &[1, 2]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    zk.wait_connected().await.unwrap();
    assert_ne!(member_of(&zk).as_deref(), Some("m0"));
    assert_eq!(zk.session().unwrap().id, id);
    assert!(zk.exists("/e").await.unwrap().is_some());
    // m0 refuses from now on: a client that still tried it would fail an attempt there.
    net.refuse(0, true);
    let before = net.accepted();
    let mut states = zk.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));
    for round in 0..20 {
        net.cut_all();
        assert_eq!(states.next().await, Some(SessionState::Suspended));
        assert_eq!(
            states.next().await,
            Some(SessionState::Connected),
            "round {round}: a failed attempt (m0?) came first"
        );
        assert_ne!(member_of(&zk).as_deref(), Some("m0"));
    }
    assert_eq!(net.accepted(), before + 20);
    assert_eq!(net.refused(), 0, "the removed member was tried");
    zk.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn set_hosts_rebalances_a_share_of_clients() {
    let net = SimNet::new(4);
    let mut clients = Vec::new();
    for _ in 0..200 {
        let b = ClientBuilder::new("m0:1,m1:1,m2:1").session_timeout(Duration::from_secs(10));
        clients.push(zk_tokio::connect_with(&b, net.connector()).await.unwrap());
    }
    let ids: Vec<i64> = clients.iter().map(|c| c.session().unwrap().id).collect();
    for c in &clients {
        c.set_hosts("m0:1,m1:1,m2:1,m3:1").unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut on_new = 0;
    for (c, id) in clients.iter().zip(&ids) {
        c.wait_connected().await.unwrap();
        assert_eq!(
            c.session().unwrap().id,
            *id,
            "a moved client lost its session"
        );
        on_new += usize::from(member_of(c).as_deref() == Some("m3"));
    }
    // 1 - 3/4 of them move, all to the new member: about 50 of 200.
    assert!(
        (25..=75).contains(&on_new),
        "{on_new} of 200 moved to the new member"
    );
    assert!(clients[0].set_hosts("m0:1/chroot").is_err());
    assert!(clients[0].set_hosts("").is_err());
    for c in clients {
        c.close().await.unwrap();
    }
}

/// One step of a fault schedule.
#[derive(Debug, Clone)]
enum Step {
    /// Start `n` creates and reads without waiting for them.
    Load(u8),
    /// Close every connection from the server side.
    Cut,
    /// Stop member `m` (its connections die).
    Stop(u8),
    /// Start every member again.
    StartAll,
    /// The member the client is on stops reading for a while.
    Stall(u16),
    /// Let virtual time pass.
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u8..40).prop_map(Step::Load),
        2 => Just(Step::Cut),
        1 => (0u8..3).prop_map(Step::Stop),
        1 => Just(Step::StartAll),
        1 => (100u16..6000).prop_map(Step::Stall),
        3 => (1u16..20_000).prop_map(Step::Wait),
    ]
}

async fn run_schedule(steps: Vec<Step>) {
    let net = SimNet::new(3);
    let zk = connect(&net, 10).await;
    let mut calls = Vec::new();
    let mut n = 0u32;
    for s in steps {
        match s {
            Step::Load(k) => {
                for _ in 0..k {
                    n += 1;
                    let (zk, i) = (zk.clone(), n);
                    calls.push(tokio::spawn(async move {
                        if i % 2 == 0 {
                            zk.create(&format!("/n{i}"), "v", CreateMode::Persistent)
                                .await
                                .map(|_| ())
                        } else {
                            zk.exists("/").await.map(|_| ())
                        }
                    }));
                }
            }
            Step::Cut => {
                net.cut_all();
            }
            Step::Stop(m) => stop_member(&net, m as usize),
            Step::StartAll => start_all(&net),
            Step::Stall(ms) => {
                for m in 0..3 {
                    net.stall_member(m, true);
                }
                tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                for m in 0..3 {
                    net.stall_member(m, false);
                }
            }
            Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms as u64)).await,
        }
    }
    start_all(&net);
    // Every call returns exactly once (a JoinHandle yields once), within bounded time.
    for c in calls {
        let r = tokio::time::timeout(Duration::from_secs(120), c)
            .await
            .expect("a call never completed")
            .expect("a call panicked");
        if let Err(e) = r {
            assert!(
                matches!(
                    e,
                    Error::ConnectionLoss | Error::SessionExpired | Error::Server(_)
                ),
                "unexpected error {e:?}"
            );
        }
    }
    let diag = zk.diagnostics();
    assert_eq!(diag.counts().calls, 0);
    tokio::time::timeout(Duration::from_secs(60), zk.close())
        .await
        .expect("close hung")
        .unwrap();
    drop(zk);
    assert_all_released(&diag).await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: zk_tests::sim::proptest_cases(64),
        ..ProptestConfig::default()
    })]
    /// Random fault schedules through the whole stack: every call completes once,
    /// close never hangs, and nothing is left behind.
    #[test]
    fn fault_schedules_through_the_stack(steps in proptest::collection::vec(step(), 1..25)) {
        zk_tests::sim::block_on_paused(run_schedule(steps));
    }
}
