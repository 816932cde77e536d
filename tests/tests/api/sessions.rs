//! The session and the hosts: expiry makes a new session, a bounded number of
//! connection rounds, and a new host list the session moves with.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, ConnectionEvent, CreateMode, Error, SessionState};
use zk_tests::facade::{BlockingZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;

use super::support::{connect, connect_shared, unique, WAIT};

/// The session is killed from outside the way Curator's KillSession does it (a second
/// client resumes it, then closes it). The client reports Expired, then opens a new session
/// on its own (the default ExpiryPolicy::NewSession): its ephemeral is gone and it serves
/// requests again.
///
/// The client reaches the server through a proxy that holds its traffic while the session
/// is killed: otherwise the client, dropped by the server when the second client takes
/// its session, may reconnect and take the session back before the second client's
/// closeSession goes out (a race seen on tokio: states `[Suspended, Connected]`, the
/// session alive).
pub(crate) fn expiry_makes_a_new_session<Z: Zk>() {
    let cs = shared_server().connect_string();
    let proxy = Proxy::start(shared_server().addr());
    let a = connect::<Z>(
        &ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(4)),
    );
    let observer = connect_shared::<BlockingZk>();
    let b = unique::<Z>("expiry");
    a.create(&b, "", CreateMode::Persistent).unwrap();
    let eph = a
        .create(&format!("{b}/eph"), "", CreateMode::Ephemeral)
        .unwrap();
    let old = a.session().unwrap();
    assert_eq!(
        observer.exists(&eph).unwrap().unwrap().ephemeral_owner,
        old.id
    );
    let mut states = a.state_stream();
    assert_eq!(
        states.recv_timeout(Some(WAIT)),
        Some(SessionState::Connected)
    );

    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ev2 = events.clone();
    a.add_connection_listener(move |e| ev2.lock().unwrap().push(e));

    // Curator's KillSession, directly on the server, while the client's traffic is held.
    proxy.black_hole(true);
    let resume = ClientBuilder::new(&cs).resume(old.id, old.password.clone());
    let killer = connect::<Z>(&resume);
    assert_eq!(killer.session().unwrap().id, old.id);
    killer.close().unwrap();
    // The server ended the session: resuming it again is refused (seen with
    // terminal expiry; the default would open a new session instead).
    let refused = Z::connect(
        &resume
            .clone()
            .expiry_policy(zk_client::ExpiryPolicy::Terminal),
    );
    assert!(
        matches!(refused, Err(Error::SessionExpired)),
        "{}: the kill did not end the session: {:?}",
        Z::NAME,
        refused.as_ref().err()
    );
    proxy.black_hole(false);

    let limit = Duration::from_secs(20);
    let t = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = limit.saturating_sub(t.elapsed());
        match states.wait_next(Some(left)) {
            Ok(Some(s)) => {
                seen.push(s);
                if s == SessionState::Connected && seen.contains(&SessionState::Expired) {
                    break;
                }
            }
            Ok(None) => panic!("{}: state stream ended; states: {seen:?}", Z::NAME),
            Err(_) => panic!(
                "{}: no Expired then Connected within {limit:?}; states: {seen:?}",
                Z::NAME
            ),
        }
    }
    let at = seen
        .iter()
        .position(|s| *s == SessionState::Expired)
        .unwrap();
    let after = &seen[at + 1..];
    assert_eq!(
        after.first(),
        Some(&SessionState::Connecting),
        "{}: states: {seen:?}",
        Z::NAME
    );
    assert!(
        after
            .iter()
            .all(|s| matches!(s, SessionState::Connecting | SessionState::Connected)),
        "{}: states: {seen:?}",
        Z::NAME
    );
    assert_eq!(a.state(), SessionState::Connected);
    // kazoo's and Curator's view of the same: LOST, then (Curator) RECONNECTED.
    let t = Instant::now();
    while events.lock().unwrap().last() != Some(&ConnectionEvent::Reconnected)
        && t.elapsed() < Duration::from_secs(5)
    {
        thread::sleep(Duration::from_millis(10));
    }
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.ends_with(&[ConnectionEvent::Lost, ConnectionEvent::Reconnected]),
        "{}: connection events {ev:?}",
        Z::NAME
    );
    assert!(
        ev.windows(2).all(|w| w[0] != w[1]),
        "{}: repeats in {ev:?}",
        Z::NAME
    );
    let new = a.session().unwrap();
    assert_ne!(new.id, old.id, "a new session");
    assert_ne!(new.id, 0);
    // The old session's ephemeral is gone, for the client and for everybody else.
    assert!(a.exists(&eph).unwrap().is_none());
    assert!(observer.exists(&eph).unwrap().is_none());
    // The client serves requests again, on the new session.
    let again = a
        .create(&format!("{b}/eph2"), "again", CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(a.get_data(&again).unwrap().0, "again");
    assert_eq!(
        observer.exists(&again).unwrap().unwrap().ephemeral_owner,
        new.id
    );
    a.set_data(&b, "x", None).unwrap();
    assert_eq!(observer.get_data(&b).unwrap().0, "x");
    a.close().unwrap();
    observer.delete_recursive(&b).unwrap();
    observer.close().unwrap();
}

/// kazoo's connection_retry max_tries: with no server to reach, the client stops
/// after that many rounds (Unreachable, kazoo's LOST) instead of trying forever, and
/// a restart tries again.
pub(crate) fn connection_max_tries_gives_up<Z: Zk>() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let t = Instant::now();
    let r = Z::connect(
        &ClientBuilder::new(&addr.to_string())
            .connection_max_tries(Some(3))
            .connect_deadline(Duration::from_secs(20)),
    );
    assert!(
        matches!(r, Err(Error::Unreachable)),
        "{}: {:?}",
        Z::NAME,
        r.err()
    );
    // Three rounds with the default backoff (100 ms, 200 ms, ...) take well under 5 s.
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{}: {:?}",
        Z::NAME,
        t.elapsed()
    );
    // With no limit the same connect keeps trying until its deadline.
    let t = Instant::now();
    let r = Z::connect(
        &ClientBuilder::new(&addr.to_string()).connect_deadline(Duration::from_millis(1500)),
    );
    assert!(
        matches!(&r, Err(Error::ConnectFailed(c)) if c.contains("refused")),
        "{}: {:?}",
        Z::NAME,
        r.err()
    );
    assert!(t.elapsed() >= Duration::from_millis(1400));
}

/// The Java client's updateServerList on a real ensemble: a client on member 0 is
/// given a list without it and moves to another member with its session, its
/// ephemeral and its watch; then a list with members added keeps it (or moves it
/// to a new one) without losing anything.
pub(crate) fn set_hosts_moves_with_the_session<Z: Zk>(ensemble: &zk_tests::Ensemble) {
    let m = |i: usize| ensemble.client_addr(i).to_string();
    let zk = connect::<Z>(&ClientBuilder::new(&m(0)).session_timeout(Duration::from_secs(6)));
    let id = zk.session().unwrap().id;
    let p = unique::<Z>("sethosts");
    let eph = zk.create(&p, "", CreateMode::Ephemeral).unwrap();
    let (_, w) = zk.exists_watch(&eph).unwrap();
    assert_eq!(zk.current_host().unwrap().to_string(), m(0));
    zk.set_hosts(&format!("{},{}", m(1), m(2))).unwrap();
    let t = Instant::now();
    while zk.current_host().map(|h| h.to_string()) == Some(m(0)) || !zk.state().is_connected() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}: did not move",
            Z::NAME
        );
        thread::sleep(Duration::from_millis(10));
    }
    let host = zk.current_host().unwrap().to_string();
    assert!(host == m(1) || host == m(2), "{}: on {host}", Z::NAME);
    assert_eq!(
        zk.session().unwrap().id,
        id,
        "{}: the move lost the session",
        Z::NAME
    );
    assert_eq!(zk.hosts().len(), 2);
    // The watch came along (SetWatches on the new member): it fires for a change now.
    zk.set_data(&eph, "moved", None).unwrap();
    let ev = w.wait_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ev.path, eph);
    assert_eq!(zk.get_data(&eph).unwrap().0, "moved");
    // A chroot cannot change this way.
    assert!(matches!(
        zk.set_hosts(&format!("{}/other", m(1))),
        Err(Error::InvalidArgument(_))
    ));
    zk.close().unwrap();
}
