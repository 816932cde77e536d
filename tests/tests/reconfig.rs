//! A changing ensemble (issue 11), against real ZooKeeper 3.8 servers, for every adapter:
//! a reconfigurable 3-member ensemble grows to 4 members and then loses one of the original
//! three through `reconfig`, while clients that follow the ensemble's config
//! (`follow_ensemble(true)`) run pipelined creates and another client runs a write load.
//!
//! * After the add, every follower lists 4 hosts and some of them moved to the new member.
//! * After the removal, no follower is on the removed member or lists it, and none tries
//!   it again: a sampler watches every follower's current host, and once the member's
//!   process is stopped a listener on its client port counts connection attempts.
//! * Every session survives (same id, no terminal state, Connected at the end); every call
//!   returned (Ok, or ConnectionLoss when the client moved under it); every acknowledged
//!   create exists at the end.
//!
//! Each adapter gets its own ensemble; the tests take turns (4 JVMs on a 2-core machine).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, Error, ErrorCode, HostAddr, SessionState};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::{Ensemble, ReconfigAccess, Role, ServerOptions};

/// Clients that follow the ensemble's config, per adapter. With 3 -> 4 members each moves
/// with probability 1/4; 32 makes "nobody moved" a 0.01 % event (0.75^32).
const FOLLOWERS: usize = 32;
/// A follower sends a create this often (32 followers: 2,100 a second at most)...
const PACE: Duration = Duration::from_millis(15);
/// ...with at most this many in flight.
const WINDOW: usize = 8;
/// How long a call may take before it counts as one that never returned.
const CALL_DEADLINE: Duration = Duration::from_secs(30);
const SUPER_PASSWORD: &str = "secret";

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn host(addr: std::net::SocketAddr) -> HostAddr {
    HostAddr {
        host: addr.ip().to_string(),
        port: addr.port(),
    }
}

fn sorted(mut hosts: Vec<HostAddr>) -> Vec<HostAddr> {
    hosts.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    hosts
}

/// One follower's pipelined creates under `/f/c<i>-`.
#[derive(Default)]
struct LoadLog {
    /// Every call's result, in submission order.
    results: Vec<Result<String, Error>>,
    /// Set if a call did not return within [`CALL_DEADLINE`].
    hung: bool,
}

type Call = Pin<Box<dyn Future<Output = Result<String, Error>> + Send>>;

/// Creates issued open-loop, one every [`PACE`] (at most [`WINDOW`] in flight), each polled
/// to its end on this thread. Open-loop on purpose: a client that waits for its replies
/// before sending more has nothing in flight when its config read comes back (the server
/// answers a session's requests in order), so it would never move mid-request.
fn follower_load(client: zk_client::Client, i: usize, stop: Arc<AtomicBool>) -> LoadLog {
    let waker = zk_client::blocking::thread_waker(thread::current());
    let mut cx = Context::from_waker(&waker);
    let prefix = format!("/f/c{i:02}-");
    let mut results: Vec<Option<Result<String, Error>>> = Vec::new();
    let mut calls: Vec<(usize, Instant, Call)> = Vec::new();
    let mut next_at = Instant::now();
    let mut hung = false;
    loop {
        let now = Instant::now();
        if !stop.load(Ordering::Relaxed) && now >= next_at {
            next_at = now + PACE;
            if calls.len() < WINDOW {
                calls.push((
                    results.len(),
                    now,
                    Box::pin(client.create(&prefix, "x", CreateMode::PersistentSequential)),
                ));
                results.push(None);
            }
        }
        let mut k = 0;
        while k < calls.len() {
            match calls[k].2.as_mut().poll(&mut cx) {
                Poll::Ready(r) => {
                    let n = calls[k].0;
                    assert!(results[n].is_none(), "call {n} returned twice");
                    results[n] = Some(r);
                    drop(calls.swap_remove(k));
                }
                Poll::Pending => k += 1,
            }
        }
        if stop.load(Ordering::Relaxed) && calls.is_empty() {
            break;
        }
        if calls.iter().any(|(_, at, _)| at.elapsed() > CALL_DEADLINE) {
            hung = true;
            break;
        }
        // Woken by a reply, or at the next submission.
        thread::park_timeout(
            next_at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        );
    }
    LoadLog {
        results: results.into_iter().flatten().collect(),
        hung,
    }
}

/// What the sampler saw of one follower.
#[derive(Default, Clone)]
struct Track {
    /// (ms since start, host) at each change of `current_host()`.
    hosts: Vec<(u128, Option<u16>)>,
    /// When `hosts()` first no longer listed the removed member (having listed it before).
    learnt_removal: Option<Instant>,
    /// Samples on the removed member after `learnt_removal`.
    back_on_removed: usize,
}

/// Polls every follower's `current_host()` and `hosts()` every 5 ms.
fn sampler(
    clients: Vec<zk_client::Client>,
    removed: HostAddr,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Track> {
    let mut tracks = vec![Track::default(); clients.len()];
    let mut saw_removed_listed = vec![false; clients.len()];
    while !stop.load(Ordering::Relaxed) {
        for (c, t) in clients.iter().zip(tracks.iter_mut().enumerate()) {
            let (i, t) = t;
            // hosts() first: a host picked from a list that no longer has the member is
            // then surely one chosen after the client learnt.
            let listed = c.hosts().contains(&removed);
            let on = c.current_host().map(|h| h.port);
            if listed {
                saw_removed_listed[i] = true;
            } else if saw_removed_listed[i] && t.learnt_removal.is_none() {
                t.learnt_removal = Some(Instant::now());
            }
            if t.learnt_removal.is_some() && on == Some(removed.port) {
                t.back_on_removed += 1;
            }
            if t.hosts.last().map(|(_, h)| *h) != Some(on) {
                t.hosts.push((t0.elapsed().as_millis(), on));
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    tracks
}

/// Waits until `cond`, polling; the time it took, or `None` after `timeout`.
fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if cond() {
            return Some(t.elapsed());
        }
        if t.elapsed() >= timeout {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// How many session requests member `i` refused because the client had seen a newer zxid.
fn refusals(ens: &Ensemble, i: usize) -> usize {
    std::fs::read_to_string(ens.member_dir(i).join("server.log"))
        .map(|log| log.matches("Refusing session request for client").count())
        .unwrap_or(0)
}

fn config_text(data: &zk_client::Data) -> String {
    String::from_utf8_lossy(&data[..]).into_owned()
}

fn changing_ensemble<Z: Zk>() {
    let _serial = serial();
    let name = Z::NAME;
    let t0 = Instant::now();
    let mut ens = Ensemble::start_reconfigurable(
        3,
        ServerOptions::default(),
        ReconfigAccess::SuperUser(SUPER_PASSWORD.into()),
    );
    let up = t0.elapsed();
    let (m1, m2, m3) = (
        host(ens.client_addr(0)),
        host(ens.client_addr(1)),
        host(ens.client_addr(2)),
    );
    let original = ens.connect_string();
    println!(
        "[{name}] reconfigurable 3-member ensemble up in {up:?}: {original}; config:\n{}",
        ens.membership().unwrap_or_default()
    );

    // The admin (super user) and the writer never list member 2, the one that leaves.
    let others = format!("{m1},{m3}");
    let admin = Z::connect(
        &ClientBuilder::new(&others)
            .auth("digest", format!("super:{SUPER_PASSWORD}"))
            .session_timeout(Duration::from_secs(20)),
    )
    .expect("admin connects");
    admin.create("/w", "", CreateMode::Persistent).unwrap();
    admin.create("/f", "", CreateMode::Persistent).unwrap();

    // The followers, connected to the three original members.
    let b = ClientBuilder::new(&original)
        .follow_ensemble(true)
        .session_timeout(Duration::from_secs(20));
    let mut followers = Vec::new();
    let mut ids = Vec::new();
    let mut state_logs = Vec::new();
    for i in 0..FOLLOWERS {
        let zk = Z::connect(&b).unwrap_or_else(|e| panic!("[{name}] follower {i}: {e:?}"));
        ids.push(zk.session().expect("session").id);
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        zk.add_listener(move |s| lock(&l).push(s));
        state_logs.push(log);
        followers.push(zk);
    }
    let on = |followers: &[Z], port: u16| {
        followers
            .iter()
            .filter(|z| z.current_host().map(|h| h.port) == Some(port))
            .count()
    };
    println!(
        "[{name}] {FOLLOWERS} followers connected: {} / {} / {} on members 1 / 2 / 3",
        on(&followers, m1.port),
        on(&followers, m2.port),
        on(&followers, m3.port)
    );
    let clients: Vec<zk_client::Client> = followers.iter().map(|z| z.as_async().clone()).collect();
    assert!(
        clients.iter().all(|c| c.hosts().len() == 3),
        "[{name}] followers start with the 3 members"
    );

    // The loads and the sampler.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let zk = Z::connect(&ClientBuilder::new(&others).session_timeout(Duration::from_secs(20)))
            .expect("writer connects");
        let stop = stop.clone();
        thread::spawn(move || {
            let (mut acked, mut unknown, mut other) = (Vec::new(), 0usize, Vec::new());
            let mut longest = Duration::ZERO;
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match zk.create("/w/w-", "x", CreateMode::PersistentSequential) {
                    Ok(p) => {
                        longest = longest.max(last.elapsed());
                        last = Instant::now();
                        acked.push(p);
                    }
                    Err(Error::ConnectionLoss) => unknown += 1,
                    Err(e) => other.push(format!("{e:?}")),
                }
                thread::sleep(Duration::from_millis(3));
            }
            let _ = zk.close();
            (acked, unknown, other, longest)
        })
    };
    let loads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (c, stop) = (c.clone(), stop.clone());
            thread::spawn(move || follower_load(c, i, stop))
        })
        .collect();
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (clients, removed, stop) = (clients.clone(), m2.clone(), stop_sampler.clone());
        thread::spawn(move || sampler(clients, removed, t0, stop))
    };
    thread::sleep(Duration::from_millis(500));

    // 1. A fourth member joins: started as a non-voting follower, then added by reconfig.
    let t = Instant::now();
    let four = ens.add_member(Role::Participant);
    let joiner_up = t.elapsed();
    let m4 = host(ens.client_addr(four));
    let spec = ens.server_spec(four);
    // Only the super user may change the membership.
    match followers[0].reconfig(Some(&spec), None, None, -1) {
        Err(Error::Server(ErrorCode::NoAuth)) => {}
        other => panic!(
            "[{name}] reconfig without the super user: {:?}",
            other.map(|(d, _)| config_text(&d))
        ),
    }
    let t = Instant::now();
    let (cfg, _) = admin
        .reconfig(Some(&spec), None, None, -1)
        .unwrap_or_else(|e| panic!("[{name}] reconfig adding {spec}: {e:?}"));
    let add_took = t.elapsed();
    let cfg = config_text(&cfg);
    println!(
        "[{name}] member 4 started (non-voting) in {joiner_up:?}; reconfig add took {add_took:?}; new config:\n{cfg}"
    );
    assert!(cfg.contains(&spec), "[{name}] new config lacks {spec}");
    let four_hosts = sorted(vec![m1.clone(), m2.clone(), m3.clone(), m4.clone()]);
    let t = Instant::now();
    let all_learnt = wait_for(Duration::from_secs(10), || {
        clients.iter().all(|c| sorted(c.hosts()) == four_hosts)
    });
    let lists: Vec<usize> = clients.iter().map(|c| c.hosts().len()).collect();
    assert!(
        all_learnt.is_some(),
        "[{name}] not every follower lists 4 hosts 10 s after the add: {lists:?}"
    );
    // Moves are decided as the list is applied; give the reconnects a moment.
    let first_on_4 =
        wait_for(Duration::from_secs(5), || on(&followers, m4.port) > 0).map(|_| t.elapsed());
    thread::sleep(Duration::from_secs(1));
    let moved_n = on(&followers, m4.port);
    // A member refuses a session whose client has seen a newer zxid than it has applied
    // (the Java client then tries the next server, and so does this one). Under the write
    // load the new member often lags by a few ms, so some movers end up elsewhere.
    let refused_by_4 = refusals(&ens, four);
    println!(
        "[{name}] all followers list 4 hosts {:?} after the add; first on member 4 {:?} after the add; \
         {moved_n} of {FOLLOWERS} on member 4 a second later, {refused_by_4} refused by it (lagging); \
         now {} / {} / {} / {} on members 1 / 2 / 3 / 4",
        all_learnt.unwrap(),
        first_on_4,
        on(&followers, m1.port),
        on(&followers, m2.port),
        on(&followers, m3.port),
        moved_n,
    );
    assert!(
        moved_n > 0 || refused_by_4 > 0,
        "[{name}] no follower moved to member 4 (none on it, none refused by it) within 5 s of learning it"
    );

    // 2. Member 2 leaves.
    let leader_before = ens.leader();
    let on_removed_before = on(&followers, m2.port);
    let t = Instant::now();
    let (cfg, _) = admin
        .reconfig(None, Some(&ens.server_id(1).to_string()), None, -1)
        .unwrap_or_else(|e| panic!("[{name}] reconfig removing 2: {e:?}"));
    let remove_took = t.elapsed();
    let cfg = config_text(&cfg);
    println!(
        "[{name}] reconfig remove 2 took {remove_took:?} (leader before: member {:?}, {on_removed_before} followers on member 2); new config:\n{cfg}",
        leader_before.map(|i| i + 1)
    );
    assert!(
        !cfg.contains("server.2="),
        "[{name}] config still has server 2"
    );
    let three_hosts = sorted(vec![m1.clone(), m3.clone(), m4.clone()]);
    let left = wait_for(Duration::from_secs(15), || {
        clients.iter().all(|c| {
            sorted(c.hosts()) == three_hosts
                && c.current_host().is_some_and(|h| h != m2)
                && c.state() == SessionState::Connected
        })
    });
    let describe = |clients: &[zk_client::Client]| -> Vec<String> {
        clients
            .iter()
            .map(|c| {
                format!(
                    "{:?} on {:?} of {}",
                    c.state(),
                    c.current_host().map(|h| h.port),
                    c.hosts().len()
                )
            })
            .collect()
    };
    assert!(
        left.is_some(),
        "[{name}] 15 s after removing member 2 (port {}), not every follower is Connected elsewhere with 3 hosts: {:?}",
        m2.port,
        describe(&clients)
    );
    println!(
        "[{name}] {:?} after the removal every follower is Connected off member 2 and lists 3 hosts: {} / {} / {} on members 1 / 3 / 4",
        left.unwrap(),
        on(&followers, m1.port),
        on(&followers, m3.port),
        on(&followers, m4.port),
    );

    // Its process goes; anything that connects to its port now is a client trying it again.
    ens.stop(1);
    let listener = TcpListener::bind(("127.0.0.1", m2.port))
        .unwrap_or_else(|e| panic!("[{name}] cannot listen on member 2's port: {e}"));
    listener.set_nonblocking(true).expect("nonblocking");
    let tries = Arc::new(AtomicUsize::new(0));
    let stop_listener = Arc::new(AtomicBool::new(false));
    let trap = {
        let (tries, stop) = (tries.clone(), stop_listener.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {
                        tries.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    thread::sleep(Duration::from_secs(2));

    // Stop the loads; every batch must have come back.
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<LoadLog> = loads
        .into_iter()
        .map(|h| h.join().expect("load thread"))
        .collect();
    let (acked, unknown, writer_errors, longest) = writer.join().expect("writer");
    stop_sampler.store(true, Ordering::Relaxed);
    let tracks = sampler.join().expect("sampler");

    // Sessions: every follower Connected with its first session, no terminal state seen.
    let connected = wait_for(Duration::from_secs(10), || {
        followers
            .iter()
            .all(|z| z.state() == SessionState::Connected)
    });
    stop_listener.store(true, Ordering::Relaxed);
    trap.join().expect("trap");
    let mut problems = Vec::new();
    if connected.is_none() {
        problems.push(format!(
            "not every follower is Connected: {:?}",
            describe(&clients)
        ));
    }
    for (i, z) in followers.iter().enumerate() {
        let states = lock(&state_logs[i]).clone();
        if states.iter().any(|s| s.is_terminal()) {
            problems.push(format!("follower {i}: terminal state in {states:?}"));
        }
        match z.session() {
            Some(s) if s.id == ids[i] => {}
            other => problems.push(format!(
                "follower {i}: session {:#x} became {:?}",
                ids[i],
                other.map(|s| s.id)
            )),
        }
        if sorted(z.as_async().hosts()) != three_hosts {
            problems.push(format!("follower {i}: hosts {:?}", z.as_async().hosts()));
        }
    }
    // Nobody back on member 2 once it knew, nobody at its port after it stopped.
    for (i, t) in tracks.iter().enumerate() {
        if t.learnt_removal.is_none() {
            problems.push(format!(
                "follower {i}: the sampler never saw it drop member 2"
            ));
        }
        if t.back_on_removed > 0 {
            problems.push(format!(
                "follower {i}: on member 2 in {} samples after it dropped it from its list; hosts over time (ms, port): {:?}",
                t.back_on_removed, t.hosts
            ));
        }
    }
    let tries = tries.load(Ordering::Relaxed);
    if tries > 0 {
        problems.push(format!(
            "{tries} connection attempt(s) to the removed member's port after it stopped"
        ));
    }

    // Calls: each came back once, Ok or ConnectionLoss; Ok creates in order, and there.
    let present: HashSet<String> = admin
        .get_children("/f")
        .expect("children of /f")
        .into_iter()
        .map(|c| format!("/f/{c}"))
        .collect();
    let (mut ok, mut lost) = (0usize, 0usize);
    let mut losses_per_follower = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        if log.hung {
            problems.push(format!(
                "follower {i}: a create did not return within {CALL_DEADLINE:?}"
            ));
        }
        let mut last_seq: Option<u64> = None;
        let mut mine_lost = 0;
        for (k, r) in log.results.iter().enumerate() {
            match r {
                Ok(p) => {
                    ok += 1;
                    let seq: u64 = p[p.len() - 10..].parse().expect("sequence suffix");
                    if last_seq.is_some_and(|l| seq <= l) {
                        problems.push(format!(
                            "follower {i}: call {k} acknowledged {p} after sequence {last_seq:?}"
                        ));
                    }
                    last_seq = Some(seq);
                    if !present.contains(p) {
                        problems.push(format!("follower {i}: acknowledged {p} is missing"));
                    }
                }
                Err(Error::ConnectionLoss) => {
                    lost += 1;
                    mine_lost += 1;
                }
                Err(e) => problems.push(format!("follower {i}: call {k} failed with {e:?}")),
            }
        }
        losses_per_follower.push(mine_lost);
    }
    let calls: usize = logs.iter().map(|l| l.results.len()).sum();
    let written: HashSet<String> = admin
        .get_children("/w")
        .expect("children of /w")
        .into_iter()
        .map(|c| format!("/w/{c}"))
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|p| !written.contains(*p)).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "writer: {} acknowledged creates missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    if !writer_errors.is_empty() {
        problems.push(format!("writer errors: {writer_errors:?}"));
    }
    let movers: HashMap<usize, Vec<(u128, Option<u16>)>> = tracks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.hosts.len() > 1)
        .map(|(i, t)| (i, t.hosts.clone()))
        .collect();
    println!(
        "[{name}] follower calls: {calls} in all, {ok} Ok, {lost} ConnectionLoss (per follower {losses_per_follower:?}); \
         writer: {} acknowledged, {unknown} ConnectionLoss, longest gap {longest:?}; \
         {tries} attempts at member 2's port after it stopped; {} followers changed host: {movers:?}",
        acked.len(),
        movers.len()
    );
    assert!(
        ok > 0 && !acked.is_empty(),
        "[{name}] the loads made progress"
    );

    // Members refuse a session whose client has seen a newer zxid than they have (a
    // lagging member, often the new one): such a client tries the next host.
    let refused: Vec<usize> = (0..ens.len()).map(|i| refusals(&ens, i)).collect();
    println!("[{name}] session refusals logged by members 1..4 (client ahead of the member): {refused:?}");
    for z in &followers {
        let _ = z.close();
    }
    let _ = admin.close();
    drop(ens);
    println!("[{name}] done in {:?}", t0.elapsed());
    assert!(
        problems.is_empty(),
        "[{name}] {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The super user's digest the harness hands ZooKeeper is the one ZooKeeper computes
/// (`DigestAuthenticationProvider.generateDigest("super:secret")`).
#[test]
fn super_digest_is_zookeepers() {
    assert_eq!(
        zk_tests::server::super_digest("super", SUPER_PASSWORD),
        "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
    );
}

/// `ReconfigAccess::SkipAcl`: a client without credentials may reconfig. A one-member
/// ensemble (`standaloneEnabled=false`) gains an observer.
#[test]
fn skip_acl_lets_any_client_add_an_observer() {
    let _serial = serial();
    let t0 = Instant::now();
    let mut ens =
        Ensemble::start_reconfigurable(1, ServerOptions::default(), ReconfigAccess::SkipAcl);
    assert_eq!(ens.mode(0).as_deref(), Some("leader"));
    let zk = TokioZk::connect(&ClientBuilder::new(&ens.connect_string())).expect("connect");
    let observer = ens.add_member(Role::Observer);
    let spec = ens.server_spec(observer);
    assert!(spec.contains(":observer;"), "{spec}");
    let (cfg, _) = zk
        .reconfig(Some(&spec), None, None, -1)
        .expect("reconfig without credentials under skipACL");
    let cfg = config_text(&cfg);
    assert!(cfg.contains(&spec), "{cfg}");
    assert!(
        ens.wait_for_mode(observer, "observer", Duration::from_secs(20)),
        "the joiner did not become an observer: mode {:?}\n{}",
        ens.mode(observer),
        ens.log_tail(observer)
    );
    let membership = ens.membership().expect("membership");
    assert!(membership.contains(&spec), "{membership}");
    zk.close().unwrap();
    println!("[skipACL] 1 member + observer {spec} in {:?}", t0.elapsed());
}

#[test]
fn changing_ensemble_tokio() {
    changing_ensemble::<TokioZk>()
}

#[test]
fn changing_ensemble_smol() {
    changing_ensemble::<SmolZk>()
}

#[test]
fn changing_ensemble_blocking() {
    changing_ensemble::<BlockingZk>()
}
