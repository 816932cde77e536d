//! Replacing the host list (`update_hosts`): which sessions move, and how.

use zk_proto::testing::net::sim_hosts;
use zk_proto::{
    Acl, AddWatchMode, CreateRequest, DisconnectReason, Event, EventType, ExpiryPolicy, Request,
    SessionState, UsageError,
};

use super::helpers::{
    add_client, add_watch, close, connected_client, connected_to, create, disconnect_reasons, ev,
    fired, get_data, ms, net, no_violations, ok, set_data, submit, wait_for, S,
};

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
    let ci = add_client(&mut n, from, |c| c.seed = seed);
    wait_for(&mut n, ci, SessionState::Connected, 10 * S);
    let before = n.client_member(ci).unwrap();
    let sid = n.session(ci).session_id();
    let events = n.client(ci).events.len();
    let to = sim_hosts(&to(before));
    n.with_session(ci, |s, now| s.update_hosts(to.clone(), now))
        .unwrap();
    assert_eq!(n.session(ci).hosts(), &to[..]);
    assert_eq!(n.session(ci).config().hosts, to);
    wait_for(&mut n, ci, SessionState::Connected, 10 * S);
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
    connected_to(&mut n, ci, 3, 10 * S);
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
        fired(&n, ci, data_w),
        [ev(EventType::NodeDataChanged, "/x")]
    );
    assert!(fired(&n, ci, child_w).contains(&ev(EventType::NodeDataChanged, "/x")));
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
    wait_for(&mut n, ci, SessionState::Suspended, 10 * S);
    connected_to(&mut n, ci, 3, 10 * S);
    no_violations(&n);
}

#[test]
fn while_disconnected_the_new_list_is_used_for_the_next_attempt() {
    let mut n = net(4, 32);
    for m in 0..3 {
        n.stop_member(m);
    }
    let ci = add_client(&mut n, &[0, 1, 2], |c| c.connect_max_rounds = Some(10));
    n.advance(3 * S);
    assert_eq!(n.state(ci), SessionState::Connecting);
    let connects = n.client(ci).connects.len();
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&[3]), now))
        .unwrap();
    connected_to(&mut n, ci, 3, 10 * S);
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
    let ci = add_client(&mut n, &[0], |_| {});
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
    connected_to(&mut n, ci, 1, 10 * S);
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
    close(&mut n, ci, 5 * S);
    n.with_session(ci, |s, now| s.update_hosts(sim_hosts(&[1]), now))
        .unwrap();
    assert_eq!(n.client_member(ci), None);
    n.restart(ci);
    connected_to(&mut n, ci, 1, 10 * S);
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
    wait_for(&mut n, ci, SessionState::Closed, 5 * S);
    assert_eq!(n.client(ci).connects.len(), 1);
    no_violations(&n);
}
