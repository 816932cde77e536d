//! DataWatch: every change in order, and the rate it keeps up with.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use zk_client::{CreateMode, Data, Error, EventType};
use zk_tests::facade::Zk;
use zk_tests::server::shared_server;
use zk_tokio::recipes::DataWatch;

use super::support::{assert_data, connect, data_is, data_until, next_data, unique, QUIET, WAIT};

pub(crate) fn data_watch_sequence<Z: Zk>() {
    let cs = shared_server().connect_string();
    let (zk, w) = (connect::<Z>(&cs), connect::<Z>(&cs));
    let p = unique::<Z>("data");
    let mut dw = DataWatch::new(zk.as_async(), &p).unwrap();
    assert_data(&next_data(&mut dw, "first"), None, None, "missing at first");
    w.create(&p, "a", CreateMode::Persistent).unwrap();
    let u = next_data(&mut dw, "created");
    assert_data(&u, Some("a"), Some(EventType::NodeCreated), "created");
    assert_eq!(u.stat.unwrap().version, 0);
    w.set_data(&p, "b", None).unwrap();
    let u = next_data(&mut dw, "changed");
    assert_data(&u, Some("b"), Some(EventType::NodeDataChanged), "changed");
    assert_eq!(u.stat.unwrap().version, 1);
    // Null and empty are different values.
    w.set_data(&p, Data::null(), None).unwrap();
    let u = next_data(&mut dw, "null");
    assert!(u.data.as_ref().unwrap().is_null(), "null data: {u:?}");
    w.set_data(&p, "", None).unwrap();
    let u = next_data(&mut dw, "empty");
    let d = u.data.as_ref().unwrap();
    assert!(!d.is_null() && d.is_empty(), "empty data: {u:?}");
    w.delete(&p, None).unwrap();
    assert_data(
        &next_data(&mut dw, "deleted"),
        None,
        Some(EventType::NodeDeleted),
        "deleted",
    );
    w.create(&p, "c", CreateMode::Persistent).unwrap();
    assert_data(
        &next_data(&mut dw, "re-created"),
        Some("c"),
        Some(EventType::NodeCreated),
        "re-created",
    );
    assert!(
        dw.recv_timeout(Some(QUIET)).is_err(),
        "a report nobody caused"
    );

    // The callback form sees the same sequence; false stops it; a panicking
    // callback stops only its own watch.
    let (tx, rx) = mpsc::channel::<Option<String>>();
    let h = DataWatch::callback(zk.as_async(), &p, move |u| {
        let s = u.data.map(|d| String::from_utf8_lossy(&d).into_owned());
        let go_on = s.as_deref() != Some("stop");
        let _ = tx.send(s);
        go_on
    })
    .unwrap();
    let panics = Arc::new(AtomicUsize::new(0));
    let pc = panics.clone();
    let bad = DataWatch::callback(zk.as_async(), &p, move |_| {
        pc.fetch_add(1, Ordering::SeqCst);
        panic!("a callback that panics (expected by the test)");
    })
    .unwrap();
    let got = |what: &str| {
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{what}: no callback"))
    };
    assert_eq!(got("first").as_deref(), Some("c"));
    w.set_data(&p, "d", None).unwrap();
    assert_eq!(got("d").as_deref(), Some("d"));
    w.delete(&p, None).unwrap();
    assert_eq!(got("deleted"), None);
    w.create(&p, "stop", CreateMode::Persistent).unwrap();
    assert_eq!(got("stop").as_deref(), Some("stop"));
    assert!(
        h.wait_finished(Some(WAIT)),
        "returning false did not stop it"
    );
    assert!(h.end_reason().is_none());
    w.set_data(&p, "after", None).unwrap();
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "called after returning false"
    );
    assert!(
        bad.wait_finished(Some(WAIT)),
        "a panicking callback kept running"
    );
    assert_eq!(panics.load(Ordering::SeqCst), 1);
    // The stream watch on the same path is unaffected by both.
    let u = data_until(&mut dw, "still watching", |u| data_is(u, Some("after")));
    assert_eq!(
        u.event.map(|e| e.event_type),
        Some(EventType::NodeDataChanged)
    );
    zk.close().unwrap();
    assert!(
        dw.recv_timeout(Some(WAIT)).unwrap().is_none(),
        "close ends it"
    );
    assert_eq!(dw.end_reason(), Some(Error::SessionClosed));
    w.close().unwrap();
}

/// Events per second through a DataWatch: each change is made only once the
/// previous one was reported (no coalescing), then a burst that coalesces.
pub(crate) fn data_watch_rate<Z: Zk>() {
    let cs = shared_server().connect_string();
    let (zk, w) = (connect::<Z>(&cs), connect::<Z>(&cs));
    let p = unique::<Z>("rate");
    w.create(&p, "0", CreateMode::Persistent).unwrap();
    let mut dw = DataWatch::new(zk.as_async(), &p).unwrap();
    assert!(data_is(&next_data(&mut dw, "first"), Some("0")));
    let n = 500;
    let t = Instant::now();
    for i in 1..=n {
        let v = i.to_string();
        w.set_data(&p, &v, None).unwrap();
        let u = next_data(&mut dw, "sequential");
        assert!(data_is(&u, Some(&v)), "sequential {i}: {u:?}");
        assert_eq!(u.stat.unwrap().version, i);
    }
    let seq_rate = n as f64 / t.elapsed().as_secs_f64();
    // A pipelined burst: the reader sees a coalesced subsequence ending with the last.
    let burst = 5_000;
    let c = w.as_async();
    let t = Instant::now();
    let sets: Vec<_> = (0..burst)
        .map(|i| c.set_data(&p, format!("b{i}"), None))
        .collect();
    for s in sets {
        zk_client::blocking::block_on(s, Some(WAIT))
            .unwrap()
            .unwrap();
    }
    let last = format!("b{}", burst - 1);
    let mut reports = 0;
    let mut prev = 0;
    loop {
        let u = next_data(&mut dw, "burst");
        reports += 1;
        let v = u.stat.unwrap().version;
        assert!(v > prev, "versions go forward: {prev} then {v}");
        prev = v;
        if data_is(&u, Some(&last)) {
            break;
        }
    }
    let burst_rate = burst as f64 / t.elapsed().as_secs_f64();
    println!(
        "[{}] DataWatch: {seq_rate:.0} changes/s reported one by one (set, then wait for the report); \
         a burst of {burst} pipelined sets at {burst_rate:.0}/s reached the last value in {reports} coalesced reports",
        Z::NAME
    );
    zk.close().unwrap();
    w.close().unwrap();
}
