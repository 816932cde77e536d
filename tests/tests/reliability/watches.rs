//! Watches: a removed one-shot watch, a dropped watch future, an unread
//! persistent watch.

use std::thread::{self};
use std::time::{Duration, Instant};

use zk_client::{
    AddWatchMode, ClientBuilder, CreateMode, Error, ErrorCode, EventType, SessionState, WatcherType,
};
use zk_tests::server::shared_server;

use super::adapter::Adapter;
use super::support::{check, connect_shared, connect_to, unique, watched_paths};

pub(crate) fn remove_watches_oneshot_reports_removed<Z: Adapter>() {
    let zk = connect_shared::<Z>();
    let p = unique::<Z>("rmwatch");
    zk.create(&p, "", CreateMode::Persistent).unwrap();
    let (stat, w) = zk.exists_watch(&p).unwrap();
    assert!(stat.is_some());
    zk.remove_watches(&p, WatcherType::Any).unwrap();
    let r = w.wait_timeout(Some(Duration::from_secs(5)));
    let state = zk.state();
    let still_usable = zk.exists(&p);
    let _ = zk.delete(&p, None);
    zk.close().unwrap();
    match &r {
        Ok(ev) => panic!("{}: the removed watch fired: {ev:?}", Z::NAME),
        Err(Error::Timeout) => panic!(
            "{}: the removed one-shot watch did not resolve within 5 s",
            Z::NAME
        ),
        Err(e @ Error::SessionClosed) => panic!(
            "{}: the one-shot watch removed by remove_watches resolved to {e:?} (\"{e}\") \
             though the session is alive (state {state:?}); expected an error that says the \
             watch was removed",
            Z::NAME
        ),
        Err(e) => assert!(
            matches!(e, Error::WatchRemoved),
            "{}: the removed one-shot watch resolved to {e:?} (\"{e}\"), not WatchRemoved",
            Z::NAME
        ),
    }
    assert_eq!(state, SessionState::Connected, "{}", Z::NAME);
    assert!(
        matches!(still_usable, Ok(Some(_))),
        "{}: exists after the removal: {still_usable:?}",
        Z::NAME
    );
}

pub(crate) fn dropped_watch_future_removes_server_watch<Z: Adapter>() {
    let addr = shared_server().addr();
    let zk = connect_shared::<Z>();
    let sid = zk.session().expect("session").id;
    let p = unique::<Z>("dropwatch");
    zk.create(&p, "v", CreateMode::Persistent).unwrap();
    // The control: a watch that is held shows in wchp (so the check below means something).
    let control = format!("{p}-control");
    zk.create(&control, "", CreateMode::Persistent).unwrap();
    let (_, _, held) = zk.get_data_watch(&control).unwrap();
    assert!(
        watched_paths(addr).contains(&control),
        "{}: wchp does not list the held watch on {control}",
        Z::NAME
    );

    let pending_checked = zk.drop_pending_get_data_watch(&p, &|| {
        // Requests are answered in order: once this is back, the getData was processed.
        zk.exists(&p).unwrap();
        assert!(
            watched_paths(addr).contains(&p),
            "{}: while the get_data_watch future is alive the server holds its watch",
            Z::NAME
        );
    });
    // Whatever was sent has been processed once this is back.
    zk.exists(&p).unwrap();
    thread::sleep(Duration::from_millis(500));
    let mut failures = Vec::new();
    if watched_paths(addr).contains(&p) {
        failures.push(format!(
            "500 ms after the get_data_watch future was dropped, the server still holds a data \
             watch on {p} (wchp)"
        ));
    }
    match zk.check_watches(&p, WatcherType::Data) {
        Err(Error::Server(ErrorCode::NoWatcher)) => {}
        other => failures.push(format!(
            "check_watches({p}, Data) after the drop: {other:?}, expected NoWatcher"
        )),
    }
    zk.set_data(&p, "w", None).unwrap();
    thread::sleep(Duration::from_millis(300));
    if watched_paths(addr).contains(&p) {
        failures.push(format!("after a set_data, wchp lists {p}"));
    }
    if !zk.state().is_connected() || zk.session().map(|s| s.id) != Some(sid) {
        failures.push(format!(
            "afterwards state {:?}, session {:?} (was 0x{sid:x})",
            zk.state(),
            zk.session().map(|s| s.id)
        ));
    }
    drop(held);
    let _ = zk.delete(&p, None);
    let _ = zk.delete(&control, None);
    zk.close().unwrap();
    println!(
        "[{}] dropped_watch_future: the watch was {} while the future was alive",
        Z::NAME,
        if pending_checked {
            "seen on the server"
        } else {
            "not inspected (1 ns call timeout)"
        }
    );
    check(
        &format!("{} dropped_watch_future_removes_server_watch", Z::NAME),
        failures,
    );
}

/// A persistent watch nobody reads keeps at most `watch_backlog` events; the next
/// one ends it: the stream yields what it holds, then `None` with `overflowed()`,
/// and the server no longer holds the watch.
pub(crate) fn unread_persistent_watch_is_bounded<Z: Adapter>() {
    let addr = shared_server().addr();
    let zk: Z = connect_to(&ClientBuilder::new(&shared_server().connect_string()).watch_backlog(8));
    let p = unique::<Z>("backlog");
    zk.create(&p, "", CreateMode::Persistent).unwrap();
    let mut w = zk.add_watch(&p, AddWatchMode::Persistent).unwrap();
    assert!(
        watched_paths(addr).contains(&p),
        "{}: the persistent watch is on the server",
        Z::NAME
    );
    for i in 0..20 {
        zk.set_data(&p, format!("{i}"), None).unwrap();
    }
    // Answers come in order: every event was delivered before this one's reply.
    zk.exists(&p).unwrap();
    let mut events = 0;
    while let Ok(Some(ev)) = w.recv_timeout(Some(Duration::from_secs(5))) {
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        events += 1;
    }
    assert_eq!(events, 8, "{}: the backlog's events, then the end", Z::NAME);
    assert!(w.overflowed(), "{}: the stream says it overflowed", Z::NAME);
    let t = Instant::now();
    while watched_paths(addr).contains(&p) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{}: the server still holds the overflowed watch on {p} (wchp)",
            Z::NAME
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        zk.check_watches(&p, WatcherType::Any),
        Err(Error::Server(ErrorCode::NoWatcher))
    );
    zk.close().unwrap();
}
