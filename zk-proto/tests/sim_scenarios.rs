//! Session scenarios against the simulated ensemble: one test per behaviour of the
//! session state machine, each on a fake clock (milliseconds of real time, no sleeps).
#![cfg(feature = "testing")]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::config::Backoff;
use zk_proto::frame::write_frame;
use zk_proto::jute::{from_bytes, Encode};
use zk_proto::testing::net::{sim_hosts, ClientFrame, Dir, SimNet};
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, CoarseState, Config, CreateRequest, DeleteRequest,
    DisconnectReason, ErrorCode, Event, EventType, ExpiryPolicy, MultiOp, MultiRequest,
    MultiResult, OpCode, PathWatchRequest, QueuePolicy, RemovalReason, ReplyHeader, Request,
    RequestId, Response, SessionState, SetDataRequest, SetWatches, SetWatches2, UsageError,
    WatchedEvent, WatcherId, ZkError,
};

const S: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[allow(clippy::disallowed_methods)] // the fake clock needs some instant to start from
fn t0() -> Instant {
    Instant::now()
}

fn net(members: usize, seed: u64) -> SimNet {
    SimNet::new(members, seed, t0())
}

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open_unsafe(),
        flags,
    })
}

fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn get_children(path: &str, watch: bool) -> Request {
    Request::GetChildren(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn set_data(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        version: -1,
    })
}

fn delete(path: &str) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version: -1,
    })
}

fn add_watch(path: &str, mode: AddWatchMode) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode,
    })
}

fn ev(event_type: EventType, path: &str) -> WatchedEvent {
    WatchedEvent {
        event_type,
        path: path.into(),
        zxid: None,
    }
}

/// A client on the given members, connected.
fn connected_client(net: &mut SimNet, members: &[usize], tweak: impl FnOnce(&mut Config)) -> usize {
    let mut c = net.config(members);
    tweak(&mut c);
    let ci = net.add_client(c);
    assert!(
        net.run_until(|n| n.state(ci).is_connected(), 10 * S),
        "client did not connect: {:?}",
        net.client(ci).states()
    );
    ci
}

fn ok(net: &mut SimNet, ci: usize, req: Request) -> Response {
    match net.call(ci, req.clone(), 10 * S) {
        Some(Ok(r)) => r,
        other => panic!("{req:?} -> {other:?}"),
    }
}

fn submit(net: &mut SimNet, ci: usize, req: Request) -> (RequestId, Option<WatcherId>) {
    let s = net.submit(ci, req).expect("submit");
    (s.id, s.watcher)
}

fn no_violations(net: &SimNet) {
    assert!(net.violations.is_empty(), "{:?}", net.violations);
}

/// The member indices of the client's connection attempts, in order.
fn attempts(net: &SimNet, ci: usize) -> Vec<(Duration, String)> {
    let start = net.client(ci).connects.first().map(|c| c.0);
    net.client(ci)
        .connects
        .iter()
        .map(|(t, _, h)| (*t - start.unwrap_or(*t), h.host.clone()))
        .collect()
}

fn disconnect_reasons(net: &SimNet, ci: usize) -> Vec<DisconnectReason> {
    net.client(ci)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ hosts

#[test]
fn hosts_are_tried_in_a_seeded_shuffled_order() {
    let first_pass = |seed: u64| {
        let mut n = net(5, 1);
        for m in 0..5 {
            n.stop_member(m);
        }
        let mut c = n.config(&[0, 1, 2, 3, 4]);
        c.seed = seed;
        let ci = n.add_client(c);
        n.run_until(|n| n.client(ci).connects.len() >= 5, 10 * S);
        let hosts: Vec<String> = attempts(&n, ci).into_iter().map(|a| a.1).take(5).collect();
        no_violations(&n);
        hosts
    };
    let mut orders = std::collections::BTreeSet::new();
    for seed in 0..16 {
        let order = first_pass(seed);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["m0", "m1", "m2", "m3", "m4"],
            "one pass visits each host once"
        );
        assert_eq!(order, first_pass(seed), "same seed, same order");
        orders.insert(order);
    }
    assert!(
        orders.len() > 4,
        "the order depends on the seed: {orders:?}"
    );
}

/// A link whose round trip (2.4 s) is longer than the first handshake waits
/// (1 s, then 2 s): the waits double until one is long enough, and the session
/// comes back on its server with its id; the abandoned handshakes, read by the
/// server before the next one, never take the session from the live connection.
#[test]
fn a_slow_handshake_connects_once_the_wait_has_doubled_past_it() {
    let mut n = net(1, 11);
    let mut c = n.config(&[0]);
    c.session_timeout = 30 * S;
    let ci = n.add_client(c);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 5 * S));
    let sid = n.session(ci).session_id();
    n.set_latency(ms(1200), ms(1200));
    n.reset_session_conn(ci);
    let lost = n.now();
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 30 * S));
    let back = n.now() - lost;
    let reasons = disconnect_reasons(&n, ci);
    assert_eq!(
        reasons[1..],
        [
            DisconnectReason::HandshakeTimeout,
            DisconnectReason::HandshakeTimeout
        ],
        "{reasons:?}"
    );
    // A connect takes a round trip (2.4 s) here. Given up at 2.4 + 1 s, then
    // (the backoff used up meanwhile) at once again, given up 2.4 + 2 s later,
    // then answered 2.4 + 2.4 s after the third start.
    let starts: Vec<Duration> = n
        .client(ci)
        .connects
        .iter()
        .filter(|c| c.0 >= lost)
        .map(|c| c.0 - lost)
        .collect();
    assert_eq!(starts, [ms(0), ms(3400), ms(7800)]);
    assert_eq!(back, ms(12600));
    assert_eq!(n.session(ci).session_id(), sid);
    assert!(!n.client(ci).states().contains(&SessionState::Expired));
    assert_eq!(
        n.session(ci).handshake_wait(),
        S,
        "an answer resets the wait"
    );
    ok(&mut n, ci, create("/slow", b"", 0));
    no_violations(&n);
}

#[test]
fn each_attempt_has_its_own_connect_timeout() {
    let mut n = net(3, 2);
    for m in 0..3 {
        n.partition(m);
    }
    let mut c = n.config(&[0, 1, 2]);
    c.session_timeout = ms(9000);
    let ci = n.add_client(c);
    n.run_until(|n| n.client(ci).connects.len() >= 3, 30 * S);
    let times: Vec<Duration> = attempts(&n, ci).into_iter().map(|a| a.0).collect();
    // 9000 ms / 3 hosts.
    assert_eq!(times, [ms(0), ms(3000), ms(6000)]);
    assert!(disconnect_reasons(&n, ci)
        .iter()
        .all(|r| *r == DisconnectReason::ConnectTimeout));
    assert_eq!(n.state(ci), SessionState::Connecting);
    no_violations(&n);
}

#[test]
fn a_full_failed_pass_backs_off() {
    let mut n = net(3, 3);
    for m in 0..3 {
        n.stop_member(m);
    }
    let c = n_config(&mut n);
    let ci = n.add_client(c);
    n.run_until(|n| n.client(ci).connects.len() >= 9, 30 * S);
    let times: Vec<Duration> = attempts(&n, ci).into_iter().map(|a| a.0).collect();
    // Refused after one round trip (2 ms); no delay inside a pass.
    assert_eq!(&times[..3], [ms(0), ms(2), ms(4)]);
    let gap1 = times[3] - times[2];
    assert!(gap1 >= ms(102) && gap1 <= ms(122), "first backoff {gap1:?}");
    assert_eq!(times[4] - times[3], ms(2));
    let gap2 = times[6] - times[5];
    assert!(
        gap2 >= ms(202) && gap2 <= ms(242),
        "second backoff doubles: {gap2:?}"
    );
    // Once a member is back, the client gets in.
    n.start_member(1);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_eq!(n.client_member(ci), Some(1));
    no_violations(&n);
}

// ------------------------------------------------------- connection retry

#[test]
fn connect_max_rounds_gives_up_unreachable_and_restart_tries_again() {
    let mut n = net(3, 4);
    for m in 0..3 {
        n.stop_member(m);
    }
    let mut c = n_config(&mut n);
    c.connect_max_rounds = Some(2);
    let ci = n.add_client(c);
    let (queued, qw) = submit(&mut n, ci, exists("/x", true));
    let auth = n.add_auth(ci, "digest", b"u:p").unwrap();
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 30 * S));
    assert_eq!(n.state(ci), SessionState::Unreachable);
    assert_eq!(n.state(ci).coarse(), CoarseState::Lost);
    // Two full rounds over the three hosts, then nothing more.
    assert_eq!(n.client(ci).connects.len(), 6);
    assert_eq!(
        n.client(ci).states(),
        [SessionState::Unreachable],
        "from Connecting straight to Unreachable"
    );
    assert_eq!(
        n.client(ci).completion(queued),
        Some(&Err(ZkError::Unreachable))
    );
    assert_eq!(
        n.client(ci).completion(auth),
        Some(&Err(ZkError::Unreachable))
    );
    assert_eq!(
        removal_reason(&n, ci, qw.unwrap()),
        Some(RemovalReason::NotSet(ZkError::Unreachable))
    );
    assert!(matches!(
        n.submit(ci, get_data("/", false)),
        Err(UsageError::SessionTerminated(ZkError::Unreachable))
    ));
    assert_eq!(n.session(ci).poll_timeout(), None, "no timer left");
    n.advance(60 * S);
    assert_eq!(n.client(ci).connects.len(), 6);

    // restart: at once, with a fresh count of rounds.
    n.restart(ci);
    assert_eq!(n.state(ci), SessionState::Connecting);
    assert_eq!(n.client(ci).connects.len(), 7);
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 30 * S));
    assert_eq!(n.state(ci), SessionState::Unreachable);
    assert_eq!(n.client(ci).connects.len(), 12);
    n.start_member(2);
    n.restart(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    ok(&mut n, ci, create("/back", b"", 0));
    no_violations(&n);
}

#[test]
fn a_suspended_session_gives_up_after_its_rounds_and_ends_its_watches() {
    let mut n = net(3, 5);
    let ci = connected_client(&mut n, &[0, 1, 2], |c| {
        c.session_timeout = 30 * S;
        c.connect_max_rounds = Some(3);
    });
    let sid = n.session(ci).session_id().unwrap();
    let (_, w) = submit(&mut n, ci, add_watch("/p", AddWatchMode::Persistent));
    n.advance(ms(10));
    let connects = n.client(ci).connects.len();
    for m in 0..3 {
        n.stop_member(m);
    }
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 30 * S));
    assert_eq!(n.state(ci), SessionState::Unreachable);
    assert!(
        n.client(ci).entered(SessionState::Unreachable).unwrap()
            < n.client(ci).entered(SessionState::Suspended).unwrap() + 10 * S,
        "well before the session timeout"
    );
    assert_eq!(n.client(ci).connects.len() - connects, 9, "three rounds");
    assert_eq!(
        removal_reason(&n, ci, w.unwrap()),
        Some(RemovalReason::SessionEnded(ZkError::Unreachable))
    );
    // The session may still live on the servers: it can be resumed elsewhere.
    assert_eq!(n.session(ci).credentials().map(|c| c.0), Some(sid));
    no_violations(&n);
}

#[test]
fn reaching_a_server_starts_the_count_of_rounds_again() {
    let mut n = net(3, 6);
    for m in 0..3 {
        n.stop_member(m);
    }
    let mut c = n_config(&mut n);
    c.connect_max_rounds = Some(3);
    let ci = n.add_client(c);
    // Two failed rounds, then a server comes back.
    assert!(n.run_until(|n| n.client(ci).connects.len() >= 6, 30 * S));
    n.start_member(0);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    let connects = n.client(ci).connects.len();
    n.stop_member(0);
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 60 * S));
    assert_eq!(n.state(ci), SessionState::Unreachable);
    // Three whole rounds after the server was lost, not one.
    assert_eq!(n.client(ci).connects.len() - connects, 9);
    no_violations(&n);
}

#[test]
fn an_expired_handshake_answer_is_a_server_reached() {
    // The server answers the handshake "expired": a server was reached, so the
    // rounds start again; with the default policy a new session follows.
    let mut n = net(1, 7);
    let ci = connected_client(&mut n, &[0], |c| c.connect_max_rounds = Some(1));
    let sid = n.session(ci).session_id().unwrap();
    n.expire_session(sid);
    assert!(n.run_until(
        |n| n.client(ci).states().ends_with(&[
            SessionState::Expired,
            SessionState::Connecting,
            SessionState::Connected
        ]),
        10 * S
    ));
    no_violations(&n);
}

#[test]
fn the_default_backoff_waits_at_most_a_second_between_rounds() {
    let mut n = net(3, 8);
    for m in 0..3 {
        n.stop_member(m);
    }
    let c = n_config(&mut n);
    assert_eq!(c.backoff.max, S);
    assert_eq!(c.connect_max_rounds, None);
    let ci = n.add_client(c);
    n.advance(120 * S);
    let times: Vec<Duration> = attempts(&n, ci).into_iter().map(|a| a.0).collect();
    assert!(times.len() > 300, "{} attempts", times.len());
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Refused in 2 ms; the gap after a round is the backoff plus that.
    let round_gaps: Vec<Duration> = gaps.iter().copied().filter(|g| *g > ms(2)).collect();
    assert!(round_gaps.iter().all(|g| *g <= S + ms(2)), "{round_gaps:?}");
    // At the cap the jitter goes below the second: clients spread out.
    let capped = &round_gaps[5..];
    assert!(capped.iter().all(|g| *g >= ms(800)), "{capped:?}");
    let distinct: std::collections::BTreeSet<_> = capped.iter().collect();
    assert!(distinct.len() > capped.len() / 2, "jittered: {capped:?}");
    assert_eq!(n.state(ci), SessionState::Connecting);
    no_violations(&n);
}

#[test]
fn a_client_is_back_within_about_half_a_second_of_a_recovered_ensemble() {
    let mut total = Duration::ZERO;
    let mut worst = Duration::ZERO;
    let runs = 200;
    for seed in 0..runs {
        let mut n = net(3, 100 + seed);
        for m in 0..3 {
            n.stop_member(m);
        }
        let mut c = n_config(&mut n);
        c.seed = seed;
        let ci = n.add_client(c);
        // Long enough for the backoff to reach its cap; the recovery instant
        // varies with the seed.
        n.advance(20 * S + ms(seed * 37 % 1000));
        let back = n.now();
        for m in 0..3 {
            n.start_member(m);
        }
        assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
        let took = n.client(ci).entered(SessionState::Connected).unwrap() - back;
        total += took;
        worst = worst.max(took);
    }
    let mean = total / runs as u32;
    assert!(
        mean >= ms(300) && mean <= ms(600),
        "mean time back {mean:?}"
    );
    assert!(worst <= S + ms(10), "worst {worst:?}");
}

// ------------------------------------------------- replacing the host list

/// Where one session was and went when its host list changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rebalanced {
    before: usize,
    after: usize,
    moved: bool,
}

/// A session connected over `from` (a member picked by its seeded shuffle), then
/// `update_hosts(to(current member))` while connected, run until connected again.
fn rebalance(seed: u64, from: &[usize], to: impl FnOnce(usize) -> Vec<usize>) -> Rebalanced {
    let mut n = net(6, seed);
    n.record_wire = false;
    let mut c = n.config(from);
    c.seed = seed;
    let ci = n.add_client(c);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    let before = n.client_member(ci).unwrap();
    let sid = n.session(ci).session_id();
    let events = n.client(ci).events.len();
    let to = sim_hosts(&to(before));
    n.with_session(ci, |s, now| s.update_hosts(to.clone(), now))
        .unwrap();
    assert_eq!(n.session(ci).hosts(), &to[..]);
    assert_eq!(n.session(ci).config().hosts, to);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    let reasons: Vec<DisconnectReason> = n.client(ci).events[events..]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    let moved = !reasons.is_empty();
    if moved {
        assert_eq!(reasons, [DisconnectReason::Rebalance]);
    }
    assert_eq!(n.session(ci).session_id(), sid, "the same session");
    let after = n.client_member(ci).unwrap();
    assert!(to.contains(&sim_hosts(&[after])[0]));
    assert_eq!(
        moved,
        after != before || !to.contains(&sim_hosts(&[before])[0])
    );
    no_violations(&n);
    Rebalanced {
        before,
        after,
        moved,
    }
}

/// Runs `rebalance` over `runs` seeds; returns the runs that moved and the
/// number of sessions per member afterwards.
fn rebalance_many(
    runs: u64,
    from: &[usize],
    to: impl Fn(usize) -> Vec<usize>,
) -> (Vec<Rebalanced>, [usize; 6]) {
    let mut moved = Vec::new();
    let mut load = [0usize; 6];
    for seed in 0..runs {
        let r = rebalance(seed, from, &to);
        load[r.after] += 1;
        if r.moved {
            moved.push(r);
        }
    }
    (moved, load)
}

#[test]
fn growing_the_list_moves_a_quarter_of_the_sessions_to_the_new_server() {
    // 3 → 4 hosts: each session moves with probability 1 - 3/4, to the new host.
    let (moved, load) = rebalance_many(10_000, &[0, 1, 2], |_| vec![0, 1, 2, 3]);
    assert!(
        (2300..=2700).contains(&moved.len()),
        "{} of 10000 moved",
        moved.len()
    );
    assert!(moved.iter().all(|r| r.after == 3), "all to the new host");
    for (m, l) in load[..4].iter().enumerate() {
        assert!((2250..=2750).contains(l), "m{m} has {l}: {load:?}");
    }
    // Deterministic: the session's seed decides.
    for r in &moved[..20] {
        let seed = (0..10_000)
            .find(|&s| rebalance(s, &[0, 1, 2], |_| vec![0, 1, 2, 3]) == *r)
            .unwrap();
        assert_eq!(rebalance(seed, &[0, 1, 2], |_| vec![0, 1, 2, 3]), *r);
    }
}

#[test]
fn growing_by_two_spreads_the_movers_over_both_new_servers() {
    // 3 → 5: moves with probability 2/5, to one of the two new hosts.
    let (moved, load) = rebalance_many(4000, &[0, 1, 2], |_| vec![0, 1, 2, 3, 4]);
    assert!(
        (1450..=1750).contains(&moved.len()),
        "{} of 4000",
        moved.len()
    );
    assert!(moved.iter().all(|r| r.after >= 3));
    for (m, l) in load[..5].iter().enumerate() {
        assert!((650..=950).contains(l), "m{m} has {l}: {load:?}");
    }
}

#[test]
fn the_same_hosts_in_another_order_move_nobody() {
    let (moved, _) = rebalance_many(2000, &[0, 1, 2], |_| vec![2, 0, 1]);
    assert!(moved.is_empty(), "{moved:?}");
    let (moved, _) = rebalance_many(500, &[0, 1, 2], |_| vec![0, 1, 2]);
    assert!(moved.is_empty());
}

#[test]
fn a_session_whose_server_left_the_list_always_moves() {
    // Replaced by a new server (same size): all go to the new one.
    let (moved, _) = rebalance_many(1000, &[0, 1, 2], |cur| {
        let mut l: Vec<usize> = [0, 1, 2].into_iter().filter(|&m| m != cur).collect();
        l.push(3);
        l
    });
    assert_eq!(moved.len(), 1000);
    assert!(moved.iter().all(|r| r.after == 3));
    // Removed (the list shrinks): all go to the servers that remain.
    let (moved, _) = rebalance_many(1000, &[0, 1, 2], |cur| {
        [0, 1, 2].into_iter().filter(|&m| m != cur).collect()
    });
    assert_eq!(moved.len(), 1000);
    assert!(moved.iter().all(|r| r.after != r.before && r.after < 3));
}

#[test]
fn shrinking_the_list_moves_only_the_sessions_of_the_removed_server() {
    // 4 → 3: those on m3 move, evenly over the three that remain; the rest stay.
    let (moved, load) = rebalance_many(4000, &[0, 1, 2, 3], |_| vec![0, 1, 2]);
    assert!(moved.iter().all(|r| r.before == 3));
    assert!((850..=1150).contains(&moved.len()), "{}", moved.len());
    for (m, l) in load[..3].iter().enumerate() {
        assert!((1200..=1470).contains(l), "m{m} has {l}: {load:?}");
    }
}

#[test]
fn a_shrinking_list_with_a_new_server_keeps_the_spread_even() {
    // 4 → 3 where m2 and m3 leave and m4 joins: the sessions of m2 and m3 (half
    // of all) move, a third of them to m0 or m1 and two thirds to m4, so each
    // server of the new list ends with a third.
    let (moved, load) = rebalance_many(6000, &[0, 1, 2, 3], |_| vec![0, 1, 4]);
    assert!(moved.iter().all(|r| r.before >= 2));
    let to_new = moved.iter().filter(|r| r.after == 4).count();
    assert!(
        (to_new as f64 / moved.len() as f64 - 2.0 / 3.0).abs() < 0.04,
        "{to_new} of {} to the new server",
        moved.len()
    );
    for m in [0, 1, 4] {
        assert!((1800..=2200).contains(&load[m]), "m{m}: {load:?}");
    }
}

#[test]
fn a_moved_session_keeps_its_id_watches_and_chroot() {
    let mut n = net(4, 30);
    let _ = n.admin(Request::Create(CreateRequest {
        path: "/app".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 0,
    }));
    let ci = connected_client(&mut n, &[0, 1, 2], |c| {
        c.chroot = zk_proto::path::Chroot::new("/app").unwrap();
    });
    let sid = n.session(ci).session_id().unwrap();
    let on = n.client_member(ci).unwrap();
    ok(&mut n, ci, create("/x", b"1", 0));
    let (_, data_w) = submit(&mut n, ci, get_data("/x", true));
    let (_, child_w) = submit(
        &mut n,
        ci,
        add_watch("/", AddWatchMode::PersistentRecursive),
    );
    n.advance(ms(10));
    let old_conn = n.session_conn(ci).unwrap();
    // Its server leaves the list; a new one joins.
    let mut hosts: Vec<usize> = [0, 1, 2].into_iter().filter(|&m| m != on).collect();
    hosts.push(3);
    let events = n.client(ci).events.len();
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&hosts), now))
        .unwrap();
    assert_eq!(n.state(ci), SessionState::Suspended, "dropped at once");
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_eq!(n.client_member(ci), Some(3));
    assert_eq!(n.session(ci).session_id(), Some(sid));
    assert_ne!(n.session_conn(ci), Some(old_conn));
    assert_eq!(
        n.client(ci).events[events..]
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Disconnected { conn, reason } => Some((*conn, reason.clone())),
                _ => None,
            })
            .collect::<Vec<_>>(),
        [(old_conn, DisconnectReason::Rebalance)]
    );
    assert_eq!(
        n.client(ci).states()[n.client(ci).states().len() - 2..],
        [SessionState::Suspended, SessionState::Connected]
    );
    assert_eq!(n.session(ci).config().chroot.root(), Some("/app"));
    // The watches were restored on the new server and fire.
    ok(&mut n, ci, set_data("/x", b"2"));
    assert!(n.run_until(
        |n| !n.client(ci).watch_events(data_w.unwrap()).is_empty(),
        5 * S
    ));
    assert_eq!(
        n.client(ci).watch_events(data_w.unwrap()),
        [ev(EventType::NodeDataChanged, "/x")]
    );
    assert!(n
        .client(ci)
        .watch_events(child_w.unwrap())
        .contains(&ev(EventType::NodeDataChanged, "/x")));
    assert_eq!(n.session(ci).hosts(), &sim_hosts(&hosts)[..]);
    no_violations(&n);
}

#[test]
fn a_staying_session_keeps_its_connection() {
    let mut n = net(4, 31);
    let ci = connected_client(&mut n, &[0, 1, 2], |_| {});
    let on = n.client_member(ci).unwrap();
    let conn = n.session_conn(ci).unwrap();
    let events = n.client(ci).events.len();
    // Shrinking around the current server never moves it.
    let hosts: Vec<usize> = vec![on, 3];
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&hosts), now))
        .unwrap();
    n.advance(5 * S);
    assert_eq!(n.session_conn(ci), Some(conn));
    assert_eq!(n.client_member(ci), Some(on));
    assert_eq!(n.client(ci).events.len(), events, "nothing happened");
    // The next reconnect uses the new list only.
    n.stop_member(on);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, 10 * S));
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_eq!(n.client_member(ci), Some(3));
    no_violations(&n);
}

#[test]
fn while_disconnected_the_new_list_is_used_for_the_next_attempt() {
    let mut n = net(4, 32);
    for m in 0..3 {
        n.stop_member(m);
    }
    let mut c = n.config(&[0, 1, 2]);
    c.connect_max_rounds = Some(10);
    let ci = n.add_client(c);
    n.advance(3 * S);
    assert_eq!(n.state(ci), SessionState::Connecting);
    let connects = n.client(ci).connects.len();
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&[3]), now))
        .unwrap();
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_eq!(n.client_member(ci), Some(3));
    assert!(n.client(ci).connects[connects..]
        .iter()
        .all(|(_, _, h)| h.host == "m3"));
    assert!(!disconnect_reasons(&n, ci).contains(&DisconnectReason::Rebalance));
    no_violations(&n);
}

#[test]
fn an_attempt_to_a_removed_server_is_abandoned_for_the_new_list() {
    let mut n = net(2, 33);
    n.partition(0); // connects to m0 hang
    let c = n.config(&[0]);
    let ci = n.add_client(c);
    assert_eq!(n.client(ci).connects.len(), 1);
    n.advance(ms(100));
    let attempt = n.client(ci).connects[0].1;
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&[1]), now))
        .unwrap();
    assert_eq!(n.client(ci).connects.len(), 2, "the next attempt at once");
    assert_eq!(n.client(ci).connects[1].2.host, "m1");
    assert!(n.client(ci).events.iter().any(|(_, e)| *e
        == Event::Disconnected {
            conn: attempt,
            reason: DisconnectReason::Rebalance
        }));
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_eq!(n.client_member(ci), Some(1));
    no_violations(&n);
}

#[test]
fn update_hosts_refuses_an_empty_list_and_works_in_terminal_states() {
    let mut n = net(2, 34);
    let ci = connected_client(&mut n, &[0], |c| c.expiry_policy = ExpiryPolicy::Terminal);
    let before = n.session(ci).hosts().to_vec();
    assert!(matches!(
        n.with_session(ci, |s, now| s.update_hosts(Vec::new(), now)),
        Err(UsageError::InvalidConnectString(_))
    ));
    assert_eq!(n.session(ci).hosts(), &before[..]);
    assert_eq!(n.state(ci), SessionState::Connected);
    n.close(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, 5 * S));
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&[1]), now))
        .unwrap();
    assert_eq!(n.client_member(ci), None);
    n.restart(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_eq!(n.client_member(ci), Some(1));
    no_violations(&n);
}

#[test]
fn a_closing_session_is_not_moved() {
    let mut n = net(3, 35);
    let ci = connected_client(&mut n, &[0], |_| {});
    n.set_hold(0, true);
    n.close(ci);
    // The close reply is held; the server leaves the list meanwhile.
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&[1, 2]), now))
        .unwrap();
    assert!(!disconnect_reasons(&n, ci).contains(&DisconnectReason::Rebalance));
    assert_eq!(n.session(ci).current_host(), None);
    n.set_hold(0, false);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, 5 * S));
    assert_eq!(n.client(ci).connects.len(), 1);
    no_violations(&n);
}

fn n_config(n: &mut SimNet) -> Config {
    n.config(&[0, 1, 2])
}

// -------------------------------------------------------------- handshake

#[test]
fn handshake_carries_zxid_timeout_session_and_read_only_flag() {
    let mut n = net(2, 4);
    let ci = connected_client(&mut n, &[0, 1], |c| {
        c.session_timeout = ms(15_000);
        c.read_only = true;
    });
    let frames = n.client_frames(ci);
    let ClientFrame::Connect(first) = &frames[0].2 else {
        panic!("{frames:?}")
    };
    assert_eq!(first.protocol_version, 0);
    assert_eq!(first.last_zxid_seen, 0);
    assert_eq!(first.timeout, 15_000);
    assert_eq!(first.session_id, 0);
    assert_eq!(&first.passwd[..], &[0u8; 16]);
    assert_eq!(first.read_only, Some(true));
    let sid = n.session(ci).session_id().unwrap();
    assert_eq!(n.session(ci).negotiated_timeout(), Some(ms(15_000)));

    ok(&mut n, ci, create("/h", b"", 0));
    let zxid = n.session(ci).last_zxid();
    assert_eq!(zxid, n.cluster.last_zxid());
    n.reset_session_conn(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    let connects: Vec<_> = n
        .client_frames(ci)
        .into_iter()
        .filter_map(|f| match f.2 {
            ClientFrame::Connect(c) => Some(c),
            _ => None,
        })
        .collect();
    let again = connects.last().unwrap();
    assert_eq!(again.session_id, sid);
    assert_eq!(again.passwd, n.session(ci).credentials().unwrap().1);
    assert_eq!(again.last_zxid_seen, zxid);
    assert_eq!(n.session(ci).session_id(), Some(sid));
    no_violations(&n);
}

#[test]
fn server_behind_the_client_is_skipped_without_expiry() {
    let mut n = net(2, 5);
    n.cluster.set_lagging(1, true);
    let ci = connected_client(&mut n, &[0, 1], |c| c.randomize_hosts = false);
    assert_eq!(n.client_member(ci), Some(0));
    ok(&mut n, ci, create("/ahead", b"", 0));
    let sid = n.session(ci).session_id();
    n.reset_session_conn(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    let hosts: Vec<String> = attempts(&n, ci).into_iter().map(|a| a.1).collect();
    assert_eq!(hosts, ["m0", "m1", "m0"], "m1 closes silently; back to m0");
    assert_eq!(n.session(ci).session_id(), sid);
    assert!(!n.client(ci).states().contains(&SessionState::Expired));
    no_violations(&n);
}

// ------------------------------------------------------------------ timers

fn ping_times(n: &SimNet, ci: usize) -> Vec<Instant> {
    n.client_frames(ci)
        .into_iter()
        .filter_map(|(t, _, f)| match f {
            ClientFrame::Request {
                op: OpCode::Ping, ..
            } => Some(t),
            _ => None,
        })
        .collect()
}

#[test]
fn idle_pings_at_half_the_read_timeout() {
    let mut n = net(1, 6);
    let ci = connected_client(&mut n, &[0], |c| c.session_timeout = ms(12_000));
    let connected = n.client(ci).entered(SessionState::Connected).unwrap();
    // Read timeout 8 s, ping after 4 s idle.
    assert_eq!(n.session(ci).read_timeout(), ms(8000));
    n.advance(13 * S);
    let pings = ping_times(&n, ci);
    assert_eq!(
        pings.iter().map(|t| *t - connected).collect::<Vec<_>>(),
        [ms(4000), ms(8000), ms(12_000)]
    );
    // A request resets the idle clock.
    let before = n.now();
    ok(&mut n, ci, get_data("/", false));
    n.advance(5 * S);
    let next = ping_times(&n, ci)
        .into_iter()
        .find(|t| *t > before)
        .unwrap();
    assert_eq!(next - before, ms(4000));
    assert_eq!(n.state(ci), SessionState::Connected);
    no_violations(&n);
}

#[test]
fn idle_pings_at_most_every_ten_seconds() {
    let mut n = net(1, 7);
    let ci = connected_client(&mut n, &[0], |c| c.session_timeout = ms(40_000));
    let connected = n.client(ci).entered(SessionState::Connected).unwrap();
    n.advance(31 * S);
    let pings: Vec<Duration> = ping_times(&n, ci).iter().map(|t| *t - connected).collect();
    assert_eq!(pings, [10 * S, 20 * S, 30 * S]);
    no_violations(&n);
}

/// Regression (found by `sim_model`, seed 7162928311949264775; fixed in 6b8ee9e).
/// Ping interval 2 s, read timeout 4 s. The server holds the idle ping sent at
/// c+2 s. At c+2.1 s the client sends auth (answered at once: `last_send` =
/// c+2.1 s, the connection stays alive). The ping reply comes at c+4.2 s; the bug
/// made `poll_timeout` return `last_send + 2 s` = c+4.1 s, 100 ms in the past.
#[test]
fn no_poll_timeout_in_the_past_after_a_late_ping_reply() {
    let mut n = net(1, 40);
    let ci = connected_client(&mut n, &[0], |c| c.session_timeout = ms(6000));
    let c = n.client(ci).entered(SessionState::Connected).unwrap();
    n.set_hold(0, true);
    n.advance(c + ms(2050) - n.now());
    assert_eq!(ping_times(&n, ci).len(), 1, "one ping, held by the server");
    n.advance(ms(50));
    let auth = n.add_auth(ci, "digest", b"u:p").unwrap();
    n.advance(c + ms(4199) - n.now());
    assert!(n.client(ci).completion(auth).is_some());
    assert_eq!(n.state(ci), SessionState::Connected);
    n.set_hold(0, false);
    n.advance(ms(5));
    assert_eq!(n.state(ci), SessionState::Connected);
    no_violations(&n);
}

#[test]
fn a_silent_connection_is_dead_after_the_read_timeout() {
    let mut n = net(2, 8);
    let ci = connected_client(&mut n, &[0, 1], |c| c.session_timeout = ms(12_000));
    let m = n.client_member(ci).unwrap();
    let last_recv = n.client(ci).entered(SessionState::Connected).unwrap();
    n.partition(m);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, 20 * S));
    assert_eq!(n.now() - last_recv, ms(8000));
    assert_eq!(disconnect_reasons(&n, ci), [DisconnectReason::ReadTimeout]);
    // It reconnects elsewhere, same session.
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_ne!(n.client_member(ci), Some(m));
    no_violations(&n);
}

// ------------------------------------------------------------ xids & replies

#[test]
fn xids_are_sequential_and_an_out_of_order_reply_drops_the_connection() {
    let mut n = net(2, 9);
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let m = n.client_member(ci).unwrap();
    n.set_hold(m, true);
    let a = submit(&mut n, ci, get_data("/", false)).0;
    let b = submit(&mut n, ci, get_data("/zookeeper", false)).0;
    n.advance(ms(5));
    let xids: Vec<i32> = n
        .client_frames(ci)
        .into_iter()
        .filter_map(|f| match f.2 {
            ClientFrame::Request {
                xid,
                op: OpCode::GetData,
                ..
            } => Some(xid),
            _ => None,
        })
        .collect();
    assert_eq!(xids, [1, 2]);
    // The server answers the second first.
    let conn = n.session_conn(ci).unwrap();
    let mut reply = BytesMut::new();
    write_frame(&mut reply, |b| {
        ReplyHeader {
            xid: 2,
            zxid: 1,
            err: ErrorCode::NoNode,
        }
        .encode(b)
    });
    n.inject(ci, conn, Dir::ToClient, &reply);
    n.advance(ms(5));
    assert_eq!(
        disconnect_reasons(&n, ci),
        [DisconnectReason::XidOutOfOrder {
            expected: Some(1),
            got: 2
        }]
    );
    for id in [a, b] {
        assert_eq!(n.client(ci).completions(id), 1);
        assert_eq!(
            n.client(ci).completion(id),
            Some(&Err(ZkError::ConnectionLoss))
        );
    }
    n.set_hold(m, false);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    no_violations(&n);
}

#[test]
fn auth_replies_may_overtake_earlier_replies() {
    let mut n = net(1, 10);
    let ci = connected_client(&mut n, &[0], |_| {});
    n.set_hold(0, true);
    let get = submit(&mut n, ci, get_data("/", false)).0;
    let auth = n.add_auth(ci, "digest", b"alice:secret").unwrap();
    assert!(n.run_until(|n| n.client(ci).completion(auth).is_some(), S));
    assert_eq!(n.client(ci).completion(auth), Some(&Ok(Response::Empty)));
    assert!(n.client(ci).completion(get).is_none());
    n.set_hold(0, false);
    assert!(n.run_until(|n| n.client(ci).completion(get).is_some(), S));
    assert!(matches!(
        n.client(ci).completion(get),
        Some(Ok(Response::GetData(_)))
    ));
    assert!(disconnect_reasons(&n, ci).is_empty());
    let Response::WhoAmI(w) = ok(&mut n, ci, Request::WhoAmI) else {
        panic!()
    };
    assert!(w.client_info.iter().any(|c| c.user == "alice"));
    no_violations(&n);
}

#[test]
fn a_failed_multi_completes_ok_with_error_results() {
    let mut n = net(1, 11);
    let ci = connected_client(&mut n, &[0], |_| {});
    ok(&mut n, ci, create("/m", b"", 0));
    let multi = Request::Multi(MultiRequest {
        ops: vec![
            MultiOp::SetData(SetDataRequest {
                path: "/m".into(),
                data: Some(Bytes::from_static(b"x")),
                version: -1,
            }),
            MultiOp::Create {
                op: OpCode::Create,
                req: CreateRequest {
                    path: "/m".into(),
                    data: Some(Bytes::new()),
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            },
            MultiOp::Delete(DeleteRequest {
                path: "/m".into(),
                version: -1,
            }),
        ],
    });
    let Response::Multi(m) = ok(&mut n, ci, multi) else {
        panic!()
    };
    assert_eq!(
        m.results,
        [
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NodeExists),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert_eq!(m.first_error(), Some(ErrorCode::NodeExists));
    assert_eq!(
        n.cluster.get("/m").unwrap().0.as_deref(),
        Some(&b""[..]),
        "nothing applied"
    );
    assert_eq!(n.state(ci), SessionState::Connected);
    no_violations(&n);
}

// --------------------------------------------------------- connection loss

#[test]
fn null_node_data_reads_back_as_null_not_empty() {
    let mut n = net(1, 12);
    let ci = connected_client(&mut n, &[0], |_| {});
    let null_create = |path: &str| {
        Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        })
    };
    let data_of = |n: &mut SimNet, path: &str| match ok(n, ci, get_data(path, false)) {
        Response::GetData(d) => (d.data, d.stat.data_length),
        other => panic!("{other:?}"),
    };
    ok(&mut n, ci, null_create("/null"));
    ok(&mut n, ci, create("/empty", b"", 0));
    assert_eq!(data_of(&mut n, "/null"), (None, 0));
    assert_eq!(data_of(&mut n, "/empty"), (Some(Bytes::new()), 0));
    assert_eq!(n.cluster.get("/null").unwrap().0, None);

    // setData to null, and back to bytes.
    ok(&mut n, ci, set_data("/null", b"x"));
    assert_eq!(
        data_of(&mut n, "/null"),
        (Some(Bytes::from_static(b"x")), 1)
    );
    ok(
        &mut n,
        ci,
        Request::SetData(SetDataRequest {
            path: "/empty".into(),
            data: None,
            version: -1,
        }),
    );
    assert_eq!(data_of(&mut n, "/empty"), (None, 0));

    // A multi creates with null data; a multiRead reads null as null.
    let Response::Multi(_) = ok(
        &mut n,
        ci,
        Request::Multi(MultiRequest {
            ops: vec![MultiOp::Create {
                op: OpCode::Create,
                req: CreateRequest {
                    path: "/multi-null".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            }],
        }),
    ) else {
        panic!()
    };
    let Response::Multi(m) = ok(
        &mut n,
        ci,
        Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetData(PathWatchRequest {
                    path: "/multi-null".into(),
                    watch: false,
                }),
                MultiOp::GetData(PathWatchRequest {
                    path: "/null".into(),
                    watch: false,
                }),
            ],
        }),
    ) else {
        panic!()
    };
    let datas: Vec<Option<Bytes>> = m
        .results
        .into_iter()
        .map(|r| match r {
            MultiResult::GetData(d) => d.data,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(datas, [None, Some(Bytes::from_static(b"x"))]);
    no_violations(&n);
}

#[test]
fn connection_loss_fails_every_in_flight_request_once_and_moves_on() {
    let mut n = net(3, 12);
    let ci = connected_client(&mut n, &[0, 1, 2], |_| {});
    let m = n.client_member(ci).unwrap();
    let sid = n.session(ci).session_id();
    n.set_hold(m, true);
    let ids: Vec<RequestId> = (0..5)
        .map(|i| submit(&mut n, ci, create(&format!("/n{i}"), b"", 0)).0)
        .collect();
    let (watched, watcher) = submit(&mut n, ci, get_data("/", true));
    n.advance(ms(3));
    n.reset_session_conn(ci);
    assert_eq!(n.state(ci), SessionState::Suspended);
    for id in ids.iter().chain([&watched]) {
        assert_eq!(n.client(ci).completions(*id), 1);
        assert_eq!(
            n.client(ci).completion(*id),
            Some(&Err(ZkError::ConnectionLoss))
        );
    }
    assert!(n
        .client(ci)
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::WatcherRemoved { watcher: w, reason: RemovalReason::NotSet(ZkError::ConnectionLoss) } if Some(*w) == watcher)));
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    assert_ne!(n.client_member(ci), Some(m), "the next host");
    assert_eq!(n.session(ci).session_id(), sid);
    n.set_hold(m, false);
    n.advance(S);
    for id in &ids {
        assert_eq!(n.client(ci).completions(*id), 1, "exactly once");
    }
    assert_eq!(
        n.client(ci).states(),
        [
            SessionState::Connected,
            SessionState::Suspended,
            SessionState::Connected
        ]
    );
    no_violations(&n);
}

#[test]
fn a_reply_cut_mid_frame_is_a_connection_loss() {
    let mut n = net(2, 13);
    n.set_chunking(true);
    n.set_jitter(ms(3));
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let big = vec![7u8; 100_000];
    ok(&mut n, ci, create("/big", &big, 0));
    let conn = n.session_conn(ci).unwrap();
    let id = submit(&mut n, ci, get_data("/big", false)).0;
    n.cut(ci, conn, Dir::ToClient, 50_000);
    assert!(n.run_until(|n| n.client(ci).completion(id).is_some(), 5 * S));
    assert_eq!(
        n.client(ci).completion(id),
        Some(&Err(ZkError::ConnectionLoss))
    );
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    let Response::GetData(d) = ok(&mut n, ci, get_data("/big", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_ref().unwrap().len(), 100_000);
    no_violations(&n);
}

#[test]
fn a_server_restart_moves_the_session() {
    let mut n = net(3, 14);
    let ci = connected_client(&mut n, &[0, 1, 2], |_| {});
    let m = n.client_member(ci).unwrap();
    let sid = n.session(ci).session_id().unwrap();
    ok(&mut n, ci, create("/eph", b"", 1));
    n.stop_member(m);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, S));
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    n.start_member(m);
    assert_ne!(n.client_member(ci), Some(m));
    assert_eq!(n.session(ci).session_id(), Some(sid));
    assert!(n.cluster.get("/eph").is_some(), "the session survived");
    no_violations(&n);
}

#[test]
fn requests_submitted_while_suspended_are_queued_up_to_the_limit() {
    let mut n = net(2, 15);
    let ci = connected_client(&mut n, &[0, 1], |c| {
        c.queue_limit = 3;
        c.session_timeout = ms(20_000);
        c.connect_timeout = Some(ms(500));
    });
    n.partition(0);
    n.partition(1);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, 20 * S));
    let ids: Vec<RequestId> = (0..3)
        .map(|i| submit(&mut n, ci, create(&format!("/q{i}"), b"", 0)).0)
        .collect();
    assert_eq!(
        n.submit(ci, create("/q3", b"", 0)).unwrap_err(),
        UsageError::QueueFull
    );
    assert_eq!(n.session(ci).outstanding(), 3);
    n.advance(S);
    assert!(ids.iter().all(|id| n.client(ci).completion(*id).is_none()));
    n.heal(0);
    n.heal(1);
    assert!(n.run_until(
        |n| ids.iter().all(|id| n.client(ci).completion(*id).is_some()),
        20 * S
    ));
    for id in &ids {
        let got = n.client(ci).completion(*id);
        assert!(
            matches!(got, Some(Ok(Response::Create(_)))),
            "{got:?} {:?}",
            n.client(ci).states()
        );
    }
    assert_eq!(n.cluster.children("/").unwrap().len(), 4);
    no_violations(&n);
}

#[test]
fn fail_fast_policy_fails_requests_while_suspended() {
    let mut n = net(2, 16);
    let ci = connected_client(&mut n, &[0, 1], |c| c.queue_policy = QueuePolicy::FailFast);
    n.partition(0);
    n.partition(1);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, 20 * S));
    let (id, w) = submit(&mut n, ci, get_data("/", true));
    assert_eq!(
        n.client(ci).completion(id),
        Some(&Err(ZkError::NotConnected))
    );
    assert!(n.client(ci).watcher_removed(w.unwrap()));
    no_violations(&n);
}

// -------------------------------------------------------------- reconnect

#[test]
fn reconnect_replays_auth_then_set_watches_then_queued_requests() {
    let mut n = net(2, 17);
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let auth = n.add_auth(ci, "digest", b"bob:pw").unwrap();
    ok(&mut n, ci, create("/w", b"", 0));
    let (_, data_w) = submit(&mut n, ci, get_data("/w", true));
    let (_, pers_w) = submit(&mut n, ci, add_watch("/p", AddWatchMode::Persistent));
    n.advance(ms(10));
    assert!(n.client(ci).completion(auth).is_some());
    assert_eq!(n.session(ci).watch_count(), 2);
    let zxid = n.session(ci).last_zxid();
    n.reset_session_conn(ci);
    let queued = submit(&mut n, ci, get_data("/w", false)).0;
    assert!(n.run_until(|n| n.client(ci).completion(queued).is_some(), 10 * S));
    let conn = n.session_conn(ci).unwrap();
    let frames: Vec<ClientFrame> = n
        .client_frames(ci)
        .into_iter()
        .filter(|f| f.1 == conn)
        .map(|f| f.2)
        .collect();
    assert!(matches!(&frames[0], ClientFrame::Connect(c) if c.last_zxid_seen == zxid));
    assert!(matches!(
        &frames[1],
        ClientFrame::Request {
            xid: -4,
            op: OpCode::Auth,
            ..
        }
    ));
    let ClientFrame::Request {
        op: OpCode::SetWatches2,
        body,
        ..
    } = &frames[2]
    else {
        panic!("{frames:?}")
    };
    let sw: SetWatches2 = from_bytes(body.clone()).unwrap();
    assert_eq!(sw.relative_zxid, zxid);
    assert_eq!(sw.data_watches, ["/w"]);
    assert_eq!(sw.persistent_watches, ["/p"]);
    assert!(matches!(
        &frames[3],
        ClientFrame::Request {
            op: OpCode::GetData,
            ..
        }
    ));
    // Restored on the server: both fire.
    let server_conn = n.server_conn(ci, conn).unwrap();
    assert_eq!(n.cluster.watch_count(server_conn), 2);
    n.admin(set_data("/w", b"x")).unwrap();
    n.admin(create("/p", b"", 0)).unwrap();
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).watch_events(data_w.unwrap()),
        [ev(EventType::NodeDataChanged, "/w")]
    );
    assert_eq!(
        n.client(ci).watch_events(pers_w.unwrap()),
        [ev(EventType::NodeCreated, "/p")]
    );
    no_violations(&n);
}

#[test]
fn watches_missed_while_away_fire_on_reconnect() {
    let mut n = net(2, 18);
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    ok(&mut n, ci, create("/d", b"", 0));
    let (_, w) = submit(&mut n, ci, get_data("/d", true));
    let (_, e) = submit(&mut n, ci, exists("/later", true));
    n.advance(ms(10));
    let m = n.client_member(ci).unwrap();
    n.partition(m);
    n.admin(set_data("/d", b"changed")).unwrap();
    n.admin(create("/later", b"", 0)).unwrap();
    assert!(n.run_until(|n| n.client(ci).watch_events(e.unwrap()).len() == 1, 30 * S));
    assert_eq!(
        n.client(ci).watch_events(w.unwrap()),
        [ev(EventType::NodeDataChanged, "/d")]
    );
    assert_eq!(
        n.client(ci).watch_events(e.unwrap()),
        [ev(EventType::NodeCreated, "/later")]
    );
    // Only one-shot SetWatches (101) were needed.
    assert!(n.client_frames(ci).iter().any(|f| matches!(
        f.2,
        ClientFrame::Request {
            op: OpCode::SetWatches,
            xid: -8,
            ..
        }
    )));
    no_violations(&n);
}

#[test]
fn set_watches_are_split_into_frames_of_at_most_128k_path_chars() {
    let mut n = net(2, 19);
    n.record_wire = true;
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let pad = "x".repeat(96);
    let paths: Vec<String> = (0..3000).map(|i| format!("/{pad}{i:04}")).collect();
    for p in &paths {
        n.admin(create(p, b"", 0)).unwrap();
    }
    let ids: Vec<RequestId> = paths
        .iter()
        .map(|p| submit(&mut n, ci, get_data(p, true)).0)
        .collect();
    assert!(n.run_until(
        |n| ids.iter().all(|id| n.client(ci).completion(*id).is_some()),
        10 * S
    ));
    assert_eq!(n.session(ci).watch_count(), 3000);
    n.reset_session_conn(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    n.advance(ms(50));
    let conn = n.session_conn(ci).unwrap();
    let batches: Vec<SetWatches> = n
        .client_frames(ci)
        .into_iter()
        .filter(|f| f.1 == conn)
        .filter_map(|f| match f.2 {
            ClientFrame::Request {
                op: OpCode::SetWatches,
                body,
                ..
            } => Some(from_bytes(body).unwrap()),
            _ => None,
        })
        .collect();
    let total_chars: usize = paths.iter().map(|p| p.len()).sum();
    assert!(total_chars > 2 * 128 * 1024);
    assert_eq!(batches.len(), total_chars.div_ceil(128 * 1024));
    for b in &batches {
        let chars: usize = b.data_watches.iter().map(|p| p.len()).sum();
        assert!(chars < 128 * 1024 + 101, "{chars}");
    }
    let restored: usize = batches.iter().map(|b| b.data_watches.len()).sum();
    assert_eq!(restored, 3000);
    let server_conn = n.server_conn(ci, conn).unwrap();
    assert_eq!(n.cluster.watch_count(server_conn), 3000);
    no_violations(&n);
}

// ------------------------------------------------------------------ expiry

#[test]
fn server_side_expiry_fails_everything_and_is_terminal() {
    let mut n = net(3, 20);
    let ci = connected_client(&mut n, &[0, 1, 2], |c| {
        c.expiry_policy = ExpiryPolicy::Terminal
    });
    let sid = n.session(ci).session_id().unwrap();
    ok(&mut n, ci, create("/x", b"", 0));
    let (_, w1) = submit(&mut n, ci, get_data("/x", true));
    let (_, w2) = submit(
        &mut n,
        ci,
        add_watch("/", AddWatchMode::PersistentRecursive),
    );
    n.advance(ms(10));
    n.expire_session(sid);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, S));
    let (queued, qw) = submit(&mut n, ci, exists("/y", true));
    assert!(n.run_until(|n| n.state(ci).is_terminal(), 10 * S));
    assert_eq!(n.state(ci), SessionState::Expired);
    assert_eq!(
        n.client(ci).completion(queued),
        Some(&Err(ZkError::SessionExpired))
    );
    for w in [w1, w2, qw] {
        let w = w.unwrap();
        let removed: Vec<_> = n
            .client(ci)
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::WatcherRemoved { watcher, reason } if *watcher == w => Some(reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(removed.len(), 1, "{w:?}");
        assert!(matches!(
            removed[0],
            RemovalReason::SessionEnded(ZkError::SessionExpired)
                | RemovalReason::NotSet(ZkError::SessionExpired)
        ));
    }
    // Terminal: nothing more happens, and new requests are refused.
    let connects = n.client(ci).connects.len();
    n.advance(60 * S);
    assert_eq!(n.client(ci).connects.len(), connects);
    assert_eq!(n.state(ci), SessionState::Expired);
    assert!(matches!(
        n.submit(ci, get_data("/", false)),
        Err(UsageError::SessionTerminated(ZkError::SessionExpired))
    ));
    no_violations(&n);
}

#[test]
fn client_side_expiry_when_no_server_is_reached_for_the_session_timeout() {
    let mut n = net(3, 21);
    let ci = connected_client(&mut n, &[0, 1, 2], |c| {
        c.session_timeout = ms(12_000);
        c.expiry_policy = ExpiryPolicy::Terminal;
    });
    let last_contact = n.client(ci).entered(SessionState::Connected).unwrap();
    let (_, w) = submit(&mut n, ci, add_watch("/p", AddWatchMode::Persistent));
    n.advance(ms(10));
    let last_contact = last_contact.max(n.now() - ms(10) + ms(2));
    for m in 0..3 {
        n.partition(m);
    }
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, 20 * S));
    let queued = submit(&mut n, ci, get_data("/", false)).0;
    assert!(n.run_until(|n| n.state(ci) == SessionState::Expired, 20 * S));
    assert_eq!(n.now() - last_contact, ms(12_000));
    assert_eq!(
        n.client(ci).completion(queued),
        Some(&Err(ZkError::SessionExpired))
    );
    assert!(n.client(ci).watcher_removed(w.unwrap()));
    no_violations(&n);
}

#[test]
fn new_session_policy_opens_a_fresh_session_after_expiry() {
    let mut n = net(2, 22);
    // The default policy.
    let ci = connected_client(&mut n, &[0, 1], |c| {
        assert_eq!(c.expiry_policy, ExpiryPolicy::NewSession);
        assert_eq!(ExpiryPolicy::default(), ExpiryPolicy::NewSession);
    });
    let sid = n.session(ci).session_id().unwrap();
    n.expire_session(sid);
    assert!(n.run_until(
        |n| n.client(ci).states().ends_with(&[
            SessionState::Expired,
            SessionState::Connecting,
            SessionState::Connected
        ]),
        10 * S
    ));
    let new = n.session(ci).session_id().unwrap();
    assert_ne!(new, sid);
    assert!(n.cluster.session_alive(new));
    ok(&mut n, ci, create("/fresh", b"", 1));
    assert_eq!(n.cluster.get("/fresh").unwrap().1.ephemeral_owner, new);
    no_violations(&n);
}

// --------------------------------------------------------------- read-only

#[test]
fn after_a_client_side_expiry_the_default_policy_keeps_trying_with_a_new_session() {
    let mut n = net(3, 23);
    let ci = connected_client(&mut n, &[0, 1, 2], |c| c.session_timeout = ms(6000));
    let sid = n.session(ci).session_id().unwrap();
    let (_, w) = submit(&mut n, ci, add_watch("/p", AddWatchMode::Persistent));
    n.advance(ms(10));
    for m in 0..3 {
        n.partition(m);
    }
    assert!(n.run_until(
        |n| n.client(ci).states().contains(&SessionState::Expired),
        20 * S
    ));
    // Expired was reported, then the same Session went on connecting.
    assert_eq!(n.state(ci), SessionState::Connecting);
    assert_eq!(n.session(ci).session_id(), None);
    assert!(n.client(ci).watcher_removed(w.unwrap()));
    let connects = n.client(ci).connects.len();
    n.advance(10 * S);
    assert!(n.client(ci).connects.len() > connects, "still trying");
    for m in 0..3 {
        n.heal(m);
    }
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 20 * S));
    let new = n.session(ci).session_id().unwrap();
    assert_ne!(new, sid);
    ok(&mut n, ci, create("/after", b"", 0));
    no_violations(&n);
}

#[test]
fn read_only_then_probe_and_move_to_a_read_write_server() {
    let mut n = net(2, 23);
    n.admin(create("/r", b"data", 0)).unwrap();
    n.stop_member(0);
    n.set_read_only(1, true);
    let ci = connected_client(&mut n, &[0, 1], |c| c.read_only = true);
    assert_eq!(n.state(ci), SessionState::ConnectedReadOnly);
    let ro_sid = n.session(ci).session_id().unwrap();
    let Response::GetData(d) = ok(&mut n, ci, get_data("/r", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_deref().unwrap(), b"data");
    assert_eq!(
        n.call(ci, create("/w", b"", 0), S),
        Some(Err(ZkError::Server(ErrorCode::NotReadOnly)))
    );
    n.advance(2 * S);
    assert_eq!(n.state(ci), SessionState::ConnectedReadOnly);
    let probes = n
        .client_frames(ci)
        .iter()
        .filter(|f| matches!(&f.2, ClientFrame::FourLetter(w) if w == "isro"))
        .count();
    assert_eq!(probes, 0, "m0 is down: probes are refused before sending");
    n.start_member(0);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 120 * S));
    assert_eq!(n.client_member(ci), Some(0));
    assert!(disconnect_reasons(&n, ci).contains(&DisconnectReason::LeavingReadOnly));
    let sid = n.session(ci).session_id().unwrap();
    assert_ne!(
        sid, ro_sid,
        "a read-only session is local; a new global one"
    );
    ok(&mut n, ci, create("/w", b"", 0));
    no_violations(&n);
}

#[test]
fn a_client_that_refuses_read_only_does_not_connect_to_one() {
    let mut n = net(1, 24);
    n.set_read_only(0, true);
    let mut c = n.config(&[0]);
    c.read_only = false;
    let ci = n.add_client(c);
    n.advance(5 * S);
    assert_eq!(n.state(ci), SessionState::Connecting);
    assert!(n.client(ci).connects.len() > 3);
    n.set_read_only(0, false);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    no_violations(&n);
}

// -------------------------------------------------------------------- auth

#[test]
fn auth_failure_is_terminal() {
    let mut n = net(2, 25);
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let (_, w) = submit(&mut n, ci, get_data("/", true));
    n.advance(ms(10));
    let m = n.client_member(ci).unwrap();
    n.set_hold(m, true);
    let pending = submit(&mut n, ci, get_children("/", false)).0;
    let auth = n.add_auth(ci, "bogus", b"x").unwrap();
    assert!(n.run_until(|n| n.state(ci).is_terminal(), S));
    assert_eq!(n.state(ci), SessionState::AuthFailed);
    assert_eq!(
        n.client(ci).completion(auth),
        Some(&Err(ZkError::AuthFailed))
    );
    assert_eq!(
        n.client(ci).completion(pending),
        Some(&Err(ZkError::AuthFailed))
    );
    assert!(n.client(ci).watcher_removed(w.unwrap()));
    let connects = n.client(ci).connects.len();
    n.set_hold(m, false);
    n.advance(60 * S);
    assert_eq!(n.client(ci).connects.len(), connects, "no reconnect");
    assert_eq!(n.state(ci), SessionState::AuthFailed);
    assert!(matches!(
        n.add_auth(ci, "digest", b"a:b"),
        Err(UsageError::SessionTerminated(ZkError::AuthFailed))
    ));
    no_violations(&n);
}

// ------------------------------------------------------------------ watches

#[test]
fn one_shot_data_exist_and_child_watches_fire_once() {
    let mut n = net(1, 26);
    let ci = connected_client(&mut n, &[0], |_| {});
    ok(&mut n, ci, create("/o", b"", 0));
    let (_, data) = submit(&mut n, ci, get_data("/o", true));
    let (_, exist) = submit(&mut n, ci, exists("/o/new", true));
    let (_, child) = submit(&mut n, ci, get_children("/o", true));
    n.advance(ms(10));
    assert_eq!(n.session(ci).watch_count(), 3);
    for _ in 0..2 {
        n.admin(set_data("/o", b"1")).unwrap();
    }
    n.admin(create("/o/new", b"", 0)).unwrap();
    n.admin(create("/o/other", b"", 0)).unwrap();
    n.advance(ms(10));
    let c = n.client(ci);
    assert_eq!(
        c.watch_events(data.unwrap()),
        [ev(EventType::NodeDataChanged, "/o")]
    );
    assert_eq!(
        c.watch_events(exist.unwrap()),
        [ev(EventType::NodeCreated, "/o/new")]
    );
    assert_eq!(
        c.watch_events(child.unwrap()),
        [ev(EventType::NodeChildrenChanged, "/o")]
    );
    assert_eq!(n.session(ci).watch_count(), 0);
    // getData on a missing node arms nothing.
    let (id, w) = submit(&mut n, ci, get_data("/missing", true));
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).completion(id),
        Some(&Err(ZkError::Server(ErrorCode::NoNode)))
    );
    assert!(n.client(ci).watcher_removed(w.unwrap()));
    no_violations(&n);
}

#[test]
fn persistent_and_recursive_watches_keep_firing() {
    let mut n = net(1, 27);
    let ci = connected_client(&mut n, &[0], |_| {});
    let (_, p) = submit(&mut n, ci, add_watch("/p", AddWatchMode::Persistent));
    let (_, r) = submit(
        &mut n,
        ci,
        add_watch("/r", AddWatchMode::PersistentRecursive),
    );
    n.advance(ms(10));
    for req in [
        create("/p", b"", 0),
        set_data("/p", b"1"),
        create("/p/c", b"", 0),
        set_data("/p", b"2"),
        create("/r", b"", 0),
        create("/r/a", b"", 0),
        create("/r/a/b", b"", 0),
        set_data("/r/a/b", b"1"),
        delete("/r/a/b"),
    ] {
        n.admin(req).unwrap();
    }
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).watch_events(p.unwrap()),
        [
            ev(EventType::NodeCreated, "/p"),
            ev(EventType::NodeDataChanged, "/p"),
            ev(EventType::NodeChildrenChanged, "/p"),
            ev(EventType::NodeDataChanged, "/p"),
        ]
    );
    assert_eq!(
        n.client(ci).watch_events(r.unwrap()),
        [
            ev(EventType::NodeCreated, "/r"),
            ev(EventType::NodeCreated, "/r/a"),
            ev(EventType::NodeCreated, "/r/a/b"),
            ev(EventType::NodeDataChanged, "/r/a/b"),
            ev(EventType::NodeDeleted, "/r/a/b"),
        ]
    );
    assert_eq!(n.session(ci).watch_count(), 2);
    no_violations(&n);
}

#[test]
fn removing_a_watcher_stops_its_events_and_the_last_one_removes_the_server_watch() {
    let mut n = net(1, 28);
    let ci = connected_client(&mut n, &[0], |_| {});
    ok(&mut n, ci, create("/x", b"", 0));
    let (_, a) = submit(&mut n, ci, get_data("/x", true));
    let (_, b) = submit(&mut n, ci, get_data("/x", true));
    let (_, p) = submit(&mut n, ci, add_watch("/x", AddWatchMode::Persistent));
    n.advance(ms(10));
    let server_conn = n.server_conn(ci, n.session_conn(ci).unwrap()).unwrap();
    assert_eq!(
        n.cluster.watch_count(server_conn),
        2,
        "one data + one persistent"
    );
    n.remove_watcher(ci, a.unwrap());
    n.remove_watcher(ci, p.unwrap());
    n.advance(ms(10));
    assert!(n.client(ci).watcher_removed(a.unwrap()));
    assert!(n.client(ci).watcher_removed(p.unwrap()));
    assert_eq!(n.cluster.watch_count(server_conn), 2, "b still needs /x");
    n.admin(set_data("/x", b"1")).unwrap();
    n.advance(ms(10));
    assert!(n.client(ci).watch_events(a.unwrap()).is_empty());
    assert!(n.client(ci).watch_events(p.unwrap()).is_empty());
    assert_eq!(n.client(ci).watch_events(b.unwrap()).len(), 1);
    // The last registration on a path takes the server's watch with it.
    let (_, q) = submit(&mut n, ci, add_watch("/q", AddWatchMode::Persistent));
    n.advance(ms(10));
    let before = n.cluster.watch_count(server_conn);
    n.remove_watcher(ci, q.unwrap());
    n.advance(ms(10));
    assert_eq!(n.cluster.watch_count(server_conn), before - 1);
    n.admin(create("/q", b"", 0)).unwrap();
    n.advance(ms(10));
    assert!(n.client(ci).watch_events(q.unwrap()).is_empty());
    no_violations(&n);
}

#[test]
fn each_registration_has_its_own_id_and_fans_out() {
    let mut n = net(1, 29);
    let ci = connected_client(&mut n, &[0], |_| {});
    ok(&mut n, ci, create("/f", b"", 0));
    let (_, a) = submit(&mut n, ci, get_data("/f", true));
    let (_, b) = submit(&mut n, ci, get_data("/f", true));
    n.advance(ms(10));
    assert_ne!(a, b);
    n.admin(set_data("/f", b"1")).unwrap();
    n.advance(ms(10));
    for w in [a, b] {
        assert_eq!(
            n.client(ci).watch_events(w.unwrap()),
            [ev(EventType::NodeDataChanged, "/f")]
        );
    }
    no_violations(&n);
}

#[test]
fn node_deleted_fires_data_exist_and_child_watches() {
    let mut n = net(1, 30);
    let ci = connected_client(&mut n, &[0], |_| {});
    ok(&mut n, ci, create("/d", b"", 0));
    let (_, data) = submit(&mut n, ci, get_data("/d", true));
    let (_, exist) = submit(&mut n, ci, exists("/d", true));
    let (_, child) = submit(&mut n, ci, get_children("/d", true));
    n.advance(ms(10));
    n.admin(delete("/d")).unwrap();
    n.advance(ms(10));
    for w in [data, exist, child] {
        assert_eq!(
            n.client(ci).watch_events(w.unwrap()),
            [ev(EventType::NodeDeleted, "/d")]
        );
    }
    assert_eq!(n.session(ci).watch_count(), 0);
    no_violations(&n);
}

// ------------------------------------------------------------------- close

#[test]
fn close_sends_close_session_and_ends_closed() {
    let mut n = net(1, 31);
    let ci = connected_client(&mut n, &[0], |_| {});
    let sid = n.session(ci).session_id().unwrap();
    ok(&mut n, ci, create("/e", b"", 1));
    let (_, w) = submit(&mut n, ci, get_data("/", true));
    n.advance(ms(10));
    n.close(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, S));
    assert!(n.elapsed() < S);
    assert!(n.client_frames(ci).iter().any(|f| matches!(
        f.2,
        ClientFrame::Request {
            op: OpCode::CloseSession,
            ..
        }
    )));
    assert!(!n.cluster.session_alive(sid));
    assert!(n.cluster.get("/e").is_none());
    assert!(n.client(ci).watcher_removed(w.unwrap()));
    assert_eq!(
        n.client(ci).states(),
        [SessionState::Connected, SessionState::Closed]
    );
    no_violations(&n);
}

#[test]
fn close_waits_a_bounded_time_for_the_reply() {
    let mut n = net(1, 32);
    let ci = connected_client(&mut n, &[0], |c| c.close_timeout = ms(1500));
    n.set_hold(0, true);
    let pending = submit(&mut n, ci, get_data("/", false)).0;
    let start = n.now();
    n.close(ci);
    assert!(matches!(
        n.submit(ci, get_data("/", false)),
        Err(UsageError::SessionTerminated(ZkError::SessionClosed))
    ));
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, 10 * S));
    assert_eq!(n.now() - start, ms(1500));
    assert_eq!(n.client(ci).completions(pending), 1);
    no_violations(&n);
}

#[test]
fn close_while_suspended_closes_at_once() {
    let mut n = net(1, 33);
    let ci = connected_client(&mut n, &[0], |_| {});
    n.stop_member(0);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Suspended, S));
    let queued = submit(&mut n, ci, get_data("/", false)).0;
    n.close(ci);
    assert_eq!(n.state(ci), SessionState::Closed);
    assert_eq!(
        n.client(ci).completion(queued),
        Some(&Err(ZkError::SessionClosed))
    );
    no_violations(&n);
}

// ------------------------------------------------------------------ states

#[test]
fn state_sequence_through_loss_and_close() {
    let mut n = net(2, 34);
    let mut c = n.config(&[0, 1]);
    c.session_timeout = ms(10_000);
    let ci = n.add_client(c);
    assert_eq!(n.state(ci), SessionState::Connecting);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, S));
    n.reset_session_conn(ci);
    assert_eq!(n.state(ci), SessionState::Suspended);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, S));
    n.close(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, S));
    assert_eq!(
        n.client(ci).states(),
        [
            SessionState::Connected,
            SessionState::Suspended,
            SessionState::Connected,
            SessionState::Closed
        ]
    );
    assert_eq!(n.state(ci).coarse(), zk_proto::CoarseState::Lost);
    no_violations(&n);
}

#[test]
fn many_clients_see_each_others_changes_under_chunking_and_jitter() {
    let mut n = net(3, 35);
    n.set_chunking(true);
    n.set_jitter(ms(5));
    let a = connected_client(&mut n, &[0, 1, 2], |_| {});
    let b = connected_client(&mut n, &[0, 1, 2], |_| {});
    ok(&mut n, a, create("/shared", b"", 0));
    let (_, w) = submit(&mut n, b, get_children("/shared", true));
    n.advance(ms(20));
    let Response::Create(c) = ok(&mut n, a, create("/shared/item-", b"v", 3)) else {
        panic!()
    };
    assert_eq!(c.path, "/shared/item-0000000000");
    n.advance(ms(20));
    assert_eq!(
        n.client(b).watch_events(w.unwrap()),
        [ev(EventType::NodeChildrenChanged, "/shared")]
    );
    n.close(a);
    n.advance(S);
    assert!(n.cluster.children("/shared").unwrap().is_empty());
    no_violations(&n);
}

/// Regression (fixed in 6b8ee9e). A watch request still in flight while the last
/// armed registration on the same path is removed: a RemoveWatches(Any) sent then
/// would reach the server after the in-flight getData armed its watch, and wipe
/// it: the new registration would be armed locally but not on the server, and
/// never fire.
#[test]
fn removing_the_last_watcher_keeps_a_watch_that_is_being_set() {
    let mut n = net(1, 41);
    let ci = connected_client(&mut n, &[0], |_| {});
    ok(&mut n, ci, create("/x", b"", 0));
    let (_, old) = submit(&mut n, ci, get_data("/x", true));
    n.advance(ms(10));
    // A second registration is in flight when the first is removed.
    let (id, new) = submit(&mut n, ci, get_data("/x", true));
    n.remove_watcher(ci, old.unwrap());
    n.advance(ms(10));
    assert!(matches!(
        n.client(ci).completion(id),
        Some(Ok(Response::GetData(_)))
    ));
    assert_eq!(
        n.session(ci).watch_count(),
        1,
        "the new registration is armed"
    );
    n.admin(set_data("/x", b"1")).unwrap();
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).watch_events(new.unwrap()),
        [ev(EventType::NodeDataChanged, "/x")],
        "server watches of the connection: {:?}",
        n.cluster
            .watches(n.server_conn(ci, n.session_conn(ci).unwrap()).unwrap())
    );
    no_violations(&n);
}

#[test]
fn chroot_applies_to_requests_events_and_set_watches() {
    let mut n = net(2, 42);
    n.admin(create("/app", b"", 0)).unwrap();
    let ci = connected_client(&mut n, &[0, 1], |c| {
        c.chroot = zk_proto::path::Chroot::new("/app").unwrap()
    });
    let Response::Create(c) = ok(&mut n, ci, create("/s-", b"", 2)) else {
        panic!()
    };
    assert_eq!(c.path, "/s-0000000000");
    assert!(n.cluster.get("/app/s-0000000000").is_some());
    let (_, w) = submit(&mut n, ci, get_data("/s-0000000000", true));
    let (_, cw) = submit(&mut n, ci, get_children("/", true));
    let (_, cfg) = submit(&mut n, ci, exists("/zookeeper/config", true));
    n.advance(ms(10));
    // Restored after a reconnect with server paths, events come back stripped.
    n.reset_session_conn(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    n.advance(ms(10));
    let sw: Vec<SetWatches> = n
        .client_frames(ci)
        .into_iter()
        .filter_map(|f| match f.2 {
            ClientFrame::Request {
                op: OpCode::SetWatches,
                body,
                ..
            } => Some(from_bytes(body).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(sw.len(), 1);
    assert_eq!(sw[0].data_watches, ["/app/s-0000000000"]);
    assert_eq!(sw[0].child_watches, ["/app"]);
    assert_eq!(sw[0].exist_watches.len() + sw[0].data_watches.len(), 1 + 1);
    n.admin(set_data("/app/s-0000000000", b"1")).unwrap();
    n.admin(create("/app/other", b"", 0)).unwrap();
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).watch_events(w.unwrap()),
        [ev(EventType::NodeDataChanged, "/s-0000000000")]
    );
    assert_eq!(
        n.client(ci).watch_events(cw.unwrap()),
        [ev(EventType::NodeChildrenChanged, "/")]
    );
    let _ = cfg;
    no_violations(&n);
}

#[test]
fn a_request_timeout_fails_the_request_and_drops_the_connection() {
    let mut n = net(2, 43);
    let ci = connected_client(&mut n, &[0, 1], |c| c.request_timeout = Some(ms(700)));
    let m = n.client_member(ci).unwrap();
    n.set_hold(m, true);
    let start = n.now();
    let a = submit(&mut n, ci, get_data("/", false)).0;
    n.advance(ms(100));
    let b = submit(&mut n, ci, get_data("/", false)).0;
    assert!(n.run_until(|n| n.client(ci).completion(a).is_some(), 5 * S));
    assert_eq!(n.now() - start, ms(700));
    assert_eq!(n.client(ci).completion(a), Some(&Err(ZkError::Timeout)));
    assert_eq!(
        n.client(ci).completion(b),
        Some(&Err(ZkError::ConnectionLoss))
    );
    assert_eq!(
        disconnect_reasons(&n, ci),
        [DisconnectReason::RequestTimeout]
    );
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    n.set_hold(m, false);
    no_violations(&n);
}

/// An empty multi has nothing to send; it must still complete after the requests
/// submitted before it (completions come in submission order). Today `submit`
/// completes it at once, ahead of the getData still in flight: order [1, 0, 2].
#[test]
fn an_empty_multi_completes_in_submission_order() {
    let mut n = net(1, 44);
    let ci = connected_client(&mut n, &[0], |_| {});
    let before = submit(&mut n, ci, get_data("/", false)).0;
    let empty = submit(&mut n, ci, Request::Multi(MultiRequest { ops: vec![] })).0;
    let after = submit(&mut n, ci, get_data("/", false)).0;
    assert!(n.run_until(|n| n.client(ci).completion(after).is_some(), S));
    let order: Vec<RequestId> = n
        .client(ci)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Completed { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(order, [before, empty, after]);
    assert_eq!(
        n.client(ci).completion(empty),
        Some(&Ok(Response::Multi(Default::default())))
    );
    no_violations(&n);
}

// ------------------------------------------------- limits and edge cases

fn removal_reason(net: &SimNet, ci: usize, watcher: WatcherId) -> Option<RemovalReason> {
    net.client(ci).events.iter().find_map(|(_, e)| match e {
        Event::WatcherRemoved { watcher: w, reason } if *w == watcher => Some(reason.clone()),
        _ => None,
    })
}

fn all_max(c: &mut Config) {
    c.connect_timeout = Some(Duration::MAX);
    c.request_timeout = Some(Duration::MAX);
    c.session_timeout = Duration::MAX;
    c.close_timeout = Duration::MAX;
    c.backoff = Backoff {
        base: Duration::MAX,
        max: Duration::MAX,
        jitter: 1.0,
    };
}

/// `Duration::MAX` for every timeout knob: deadlines saturate instead of
/// overflowing `Instant` (which panicked), and nothing times out spuriously.
#[test]
fn duration_max_timeouts_never_panic() {
    let mut n = net(2, 50);
    let ci = connected_client(&mut n, &[0, 1], all_max);
    ok(&mut n, ci, create("/d", b"", 0));
    let (_, w) = submit(&mut n, ci, get_data("/d", true));
    n.advance(60 * S);
    assert!(disconnect_reasons(&n, ci).is_empty());
    assert!(
        ping_times(&n, ci).len() >= 5,
        "pings keep the session alive"
    );
    n.admin(set_data("/d", b"x")).unwrap();
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).watch_events(w.unwrap()),
        [ev(EventType::NodeDataChanged, "/d")]
    );
    // Through a reconnect (client-side expiry timer, next attempt, SetWatches).
    n.reset_session_conn(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    ok(&mut n, ci, get_data("/d", false));
    n.close(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Closed, S));
    assert_eq!(
        n.client(ci).states(),
        [
            SessionState::Connected,
            SessionState::Suspended,
            SessionState::Connected,
            SessionState::Closed
        ]
    );
    no_violations(&n);

    // A failed pass backs off by "never" (about 30 years), without panicking.
    let mut n = net(1, 51);
    n.stop_member(0);
    let mut c = n.config(&[0]);
    all_max(&mut c);
    let ci = n.add_client(c);
    n.advance(10 * S);
    assert_eq!(n.client(ci).connects.len(), 1);
    let next = n.session(ci).poll_timeout().expect("a next attempt");
    assert!(next > n.now() + Duration::from_secs(10 * 365 * 24 * 3600));
    n.close(ci);
    assert_eq!(n.state(ci), SessionState::Closed);
    no_violations(&n);
}

/// The same credential added 5 times is one credential: replayed once per
/// reconnect, while every add_auth call still completes exactly once.
#[test]
fn a_credential_added_many_times_is_replayed_once() {
    let mut n = net(2, 52);
    let ci = connected_client(&mut n, &[0, 1], |_| {});
    let ids: Vec<RequestId> = (0..5)
        .map(|_| n.add_auth(ci, "digest", b"alice:secret").unwrap())
        .collect();
    n.advance(ms(10));
    n.reset_session_conn(ci);
    // Added again while disconnected: completed by the one replay.
    let more: Vec<RequestId> = (0..3)
        .map(|_| n.add_auth(ci, "digest", b"alice:secret").unwrap())
        .collect();
    n.cluster.clear_request_log();
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    n.advance(ms(10));
    let auths = n
        .cluster
        .request_log()
        .iter()
        .filter(|(_, _, op)| *op == OpCode::Auth)
        .count();
    assert_eq!(auths, 1, "{:?}", n.cluster.request_log());
    for id in ids.iter().chain(&more) {
        assert_eq!(n.client(ci).completions(*id), 1);
        assert_eq!(n.client(ci).completion(*id), Some(&Ok(Response::Empty)));
    }
    let Response::WhoAmI(w) = ok(&mut n, ci, Request::WhoAmI) else {
        panic!()
    };
    assert!(w.client_info.iter().any(|c| c.user == "alice"));
    no_violations(&n);
}

/// getConfig is a request of its own: the chroot does not apply to it, while a
/// getData of "/zookeeper/config" is chrooted like any other path.
#[test]
fn get_config_skips_the_chroot_but_get_data_of_its_path_does_not() {
    let mut n = net(1, 53);
    let server_config = &b"server.0=m0:2888:3888:participant;0.0.0.0:2181\nversion=0"[..];
    n.admin(set_data("/zookeeper/config", server_config))
        .unwrap();
    for p in ["/app", "/app/zookeeper"] {
        n.admin(create(p, b"", 0)).unwrap();
    }
    n.admin(create("/app/zookeeper/config", b"chrooted", 0))
        .unwrap();
    let ci = connected_client(&mut n, &[0], |c| {
        c.chroot = zk_proto::path::Chroot::new("/app").unwrap()
    });
    let Response::GetData(d) = ok(&mut n, ci, get_data("/zookeeper/config", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_deref().unwrap(), b"chrooted");
    let Response::Stat(s) = ok(&mut n, ci, exists("/zookeeper/config", false)) else {
        panic!()
    };
    assert_eq!(s.stat, n.cluster.get("/app/zookeeper/config").unwrap().1);
    let (_, chrooted_w) = submit(&mut n, ci, get_data("/zookeeper/config", true));

    let cfg = n
        .with_session(ci, |s, now| s.submit_get_config(true, now))
        .unwrap();
    assert!(n.run_until(|n| n.client(ci).completion(cfg.id).is_some(), S));
    let Some(Ok(Response::GetData(d))) = n.client(ci).completion(cfg.id) else {
        panic!("{:?}", n.client(ci).completion(cfg.id))
    };
    assert_eq!(d.data.as_deref().unwrap(), server_config);
    assert_eq!(d.stat, n.cluster.get("/zookeeper/config").unwrap().1);

    // Each watch is on its own node.
    n.admin(set_data("/zookeeper/config", b"version=1"))
        .unwrap();
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).watch_events(cfg.watcher.unwrap()),
        [ev(EventType::NodeDataChanged, "/zookeeper/config")]
    );
    assert!(n.client(ci).watch_events(chrooted_w.unwrap()).is_empty());
    n.admin(set_data("/app/zookeeper/config", b"x")).unwrap();
    n.advance(ms(10));
    assert_eq!(
        n.client(ci).watch_events(chrooted_w.unwrap()),
        [ev(EventType::NodeDataChanged, "/zookeeper/config")]
    );
    assert_eq!(n.client(ci).watch_events(cfg.watcher.unwrap()).len(), 1);
    no_violations(&n);
}

/// A SetWatches batch the server rejects on reconnect: the registrations it
/// restored are reported dead (NotSet with the server's code) instead of being
/// left silently armed locally only; the other batches' watches live on.
#[test]
fn a_rejected_set_watches_batch_reports_its_watches_removed() {
    let mut n = net(2, 54);
    // One path per batch: /a (data), /b (data), /p (persistent).
    let ci = connected_client(&mut n, &[0, 1], |c| c.set_watches_batch = 1);
    for p in ["/a", "/b"] {
        ok(&mut n, ci, create(p, b"", 0));
    }
    let (_, a1) = submit(&mut n, ci, get_data("/a", true));
    let (_, a2) = submit(&mut n, ci, exists("/a", true));
    let (_, b) = submit(&mut n, ci, get_data("/b", true));
    let (_, p) = submit(&mut n, ci, add_watch("/p", AddWatchMode::Persistent));
    n.advance(ms(10));
    assert_eq!(n.session(ci).watch_count(), 4);
    n.cluster
        .answer_set_watches([ErrorCode::MarshallingError, ErrorCode::Ok, ErrorCode::Ok]);
    n.reset_session_conn(ci);
    assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
    n.advance(ms(10));
    let conn = n.session_conn(ci).unwrap();
    let batches = n
        .client_frames(ci)
        .into_iter()
        .filter(|f| f.1 == conn && matches!(f.2, ClientFrame::Request { xid: -8, .. }))
        .count();
    assert_eq!(batches, 3);
    let dead = RemovalReason::NotSet(ZkError::Server(ErrorCode::MarshallingError));
    for w in [a1, a2] {
        assert_eq!(removal_reason(&n, ci, w.unwrap()), Some(dead.clone()));
    }
    for w in [b, p] {
        assert_eq!(removal_reason(&n, ci, w.unwrap()), None);
    }
    let failed: Vec<&Event> = n
        .client(ci)
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| matches!(e, Event::RestoreFailed { .. }))
        .collect();
    assert_eq!(
        failed,
        [&Event::RestoreFailed {
            code: ErrorCode::MarshallingError
        }]
    );
    assert_eq!(n.session(ci).watch_count(), 2);
    assert!(disconnect_reasons(&n, ci).len() == 1, "only the reset");
    n.admin(set_data("/a", b"1")).unwrap();
    n.admin(set_data("/b", b"1")).unwrap();
    n.admin(create("/p", b"", 0)).unwrap();
    n.advance(ms(10));
    assert!(n.client(ci).watch_events(a1.unwrap()).is_empty());
    assert_eq!(
        n.client(ci).watch_events(b.unwrap()),
        [ev(EventType::NodeDataChanged, "/b")]
    );
    assert_eq!(
        n.client(ci).watch_events(p.unwrap()),
        [ev(EventType::NodeCreated, "/p")]
    );
    no_violations(&n);
}

/// A reply over max_frame fails only its own request, with ReplyTooLarge; its
/// bytes are skipped as they arrive, and the connection and the ten requests
/// around it carry on.
#[test]
fn a_reply_over_max_frame_fails_only_its_request() {
    let mut n = net(1, 55);
    n.set_chunking(true);
    let ci = connected_client(&mut n, &[0], |c| c.max_frame = 1000);
    for i in 0..10 {
        n.admin(create(&format!("/s{i}"), &[i as u8; 100], 0))
            .unwrap();
    }
    n.admin(create("/big", &[1u8; 5000], 0)).unwrap();
    let before: Vec<RequestId> = (0..5)
        .map(|i| submit(&mut n, ci, get_data(&format!("/s{i}"), false)).0)
        .collect();
    let (big, big_w) = submit(&mut n, ci, get_data("/big", true));
    let after: Vec<RequestId> = (5..10)
        .map(|i| submit(&mut n, ci, get_data(&format!("/s{i}"), false)).0)
        .collect();
    assert!(n.run_until(
        |n| after
            .iter()
            .all(|id| n.client(ci).completion(*id).is_some()),
        5 * S
    ));
    let too_large = ZkError::ReplyTooLarge {
        size: 16 + 4 + 5000 + 68,
        max: 1000,
    };
    assert_eq!(n.client(ci).completion(big), Some(&Err(too_large.clone())));
    assert_eq!(
        removal_reason(&n, ci, big_w.unwrap()),
        Some(RemovalReason::NotSet(too_large.clone()))
    );
    assert!(!too_large.outcome_unknown());
    assert_eq!(too_large.code(), ErrorCode::MarshallingError);
    for (i, id) in before.iter().chain(&after).enumerate() {
        assert_eq!(n.client(ci).completions(*id), 1);
        let Some(Ok(Response::GetData(d))) = n.client(ci).completion(*id) else {
            panic!("{:?}", n.client(ci).completion(*id))
        };
        assert_eq!(d.data.as_deref().unwrap(), &[i as u8; 100][..]);
    }
    assert!(disconnect_reasons(&n, ci).is_empty());
    let Response::GetData(d) = ok(&mut n, ci, get_data("/s3", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_ref().unwrap().len(), 100);
    assert_eq!(n.client(ci).states(), [SessionState::Connected]);
    no_violations(&n);
}

/// An oversized frame that is not the reply to the oldest request (another xid,
/// a notification, or an absurd claim) still drops the connection as malformed.
#[test]
fn an_oversized_frame_answering_nothing_drops_the_connection() {
    let header = |xid: i32| {
        let mut b = 5000i32.to_be_bytes().to_vec();
        b.extend_from_slice(&xid.to_be_bytes());
        b.extend_from_slice(&[0u8; 12]);
        b
    };
    let cases: [(Vec<u8>, i32); 4] = [
        (header(777), 5000),
        (header(-1), 5000),
        (header(-2), 5000),
        // Only the prefix: over MAX_SKIPPABLE_FRAME, so no need to wait for an xid.
        (i32::MAX.to_be_bytes().to_vec(), i32::MAX),
    ];
    for (seed, (bytes, len)) in cases.into_iter().enumerate() {
        let mut n = net(1, 56 + seed as u64);
        let ci = connected_client(&mut n, &[0], |c| c.max_frame = 1000);
        n.set_hold(0, true);
        let id = submit(&mut n, ci, get_data("/", false)).0;
        n.advance(ms(5));
        let conn = n.session_conn(ci).unwrap();
        n.inject(ci, conn, Dir::ToClient, &bytes);
        n.advance(ms(5));
        assert_eq!(
            disconnect_reasons(&n, ci),
            [DisconnectReason::Malformed(
                zk_proto::DecodeError::FrameLength { len, max: 1000 }
            )],
            "case {seed}"
        );
        assert_eq!(
            n.client(ci).completion(id),
            Some(&Err(ZkError::ConnectionLoss))
        );
        n.set_hold(0, false);
        assert!(n.run_until(|n| n.state(ci) == SessionState::Connected, 10 * S));
        no_violations(&n);
    }
}

/// The default max_frame takes the reply for a node as large as a default server
/// accepts: its getData reply is over jute.maxbuffer by the header and Stat.
#[test]
fn the_largest_node_a_server_accepts_can_be_read_with_the_default_max_frame() {
    let mut n = net(1, 60);
    let ci = connected_client(&mut n, &[0], |_| {});
    // The create request is exactly jute.maxbuffer (0xfffff) bytes: 49 + data.
    let data = vec![5u8; 0xfffff - 49];
    ok(&mut n, ci, create("/b", &data, 0));
    let Response::GetData(d) = ok(&mut n, ci, get_data("/b", false)) else {
        panic!()
    };
    assert_eq!(d.data.as_ref().unwrap().len(), data.len());
    assert!(disconnect_reasons(&n, ci).is_empty());
    no_violations(&n);
}
