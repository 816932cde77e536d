//! ChildrenWatch: every change in order.

use std::sync::mpsc;
use std::time::Instant;

use zk_client::{CreateMode, Error, ErrorCode, EventType};
use zk_tests::facade::Zk;
use zk_tests::server::shared_server;
use zk_tokio::recipes::ChildrenWatch;

use super::support::{
    children_until, connect, names, next_children, patient_children_watch, unique, QUIET, WAIT,
};

pub(crate) fn children_watch_sequence<Z: Zk>() {
    let cs = shared_server().connect_string();
    let (zk, w) = (connect::<Z>(&cs), connect::<Z>(&cs));
    let p = unique::<Z>("kids");
    // A missing node ends the watch (kazoo), without a report.
    let mut gone = ChildrenWatch::new(zk.as_async(), &p).unwrap();
    assert_eq!(gone.recv_timeout(Some(WAIT)).unwrap(), None);
    assert_eq!(gone.end_reason(), Some(Error::Server(ErrorCode::NoNode)));

    w.create(&p, "", CreateMode::Persistent).unwrap();
    let mut cw = ChildrenWatch::new(zk.as_async(), &p).unwrap();
    let u = next_children(&mut cw, "first");
    assert_eq!(u.children, names(&[]));
    assert!(u.event.is_none());
    for (op, want) in [
        ("+b", &["b"][..]),
        ("+a", &["a", "b"]),
        ("+c", &["a", "b", "c"]),
        ("-b", &["a", "c"]),
        ("-a", &["c"]),
    ] {
        let child = format!("{p}/{}", &op[1..]);
        if op.starts_with('+') {
            w.create(&child, "", CreateMode::Persistent).unwrap();
        } else {
            w.delete(&child, None).unwrap();
        }
        let u = next_children(&mut cw, op);
        assert_eq!(u.children, names(want), "after {op}");
        assert_eq!(
            u.event.map(|e| e.event_type),
            Some(EventType::NodeChildrenChanged),
            "after {op}"
        );
        assert_eq!(u.stat.unwrap().num_children as usize, want.len());
    }
    // Data changes are not child changes.
    w.set_data(&p, "x", None).unwrap();
    assert!(cw.recv_timeout(Some(QUIET)).is_err());

    // wait_for_creation: keeps watching across a delete and re-create.
    let mut patient = patient_children_watch(zk.as_async(), &p);
    assert_eq!(next_children(&mut patient, "first").children, names(&["c"]));
    w.delete_recursive(&p).unwrap();
    // The plain watch ends with the node (after reporting the last child going).
    let t = Instant::now();
    loop {
        match cw.recv_timeout(Some(WAIT)) {
            Ok(Some(u)) => assert_eq!(u.children, names(&[])),
            Ok(None) => break,
            Err(_) => panic!("the ChildrenWatch did not end with its node"),
        }
        assert!(t.elapsed() < WAIT);
    }
    assert_eq!(cw.end_reason(), Some(Error::Server(ErrorCode::NoNode)));
    children_until(&mut patient, "deleted", &None);
    w.create(&p, "", CreateMode::Persistent).unwrap();
    let u = children_until(&mut patient, "re-created", &names(&[]));
    assert_eq!(u.event.map(|e| e.event_type), Some(EventType::NodeCreated));
    w.create(&format!("{p}/z"), "", CreateMode::Persistent)
        .unwrap();
    children_until(&mut patient, "child of the new node", &names(&["z"]));

    // The callback form, and stop(): no call after it returns.
    let (tx, rx) = mpsc::channel();
    let h = ChildrenWatch::callback(zk.as_async(), &p, Default::default(), move |u| {
        let _ = tx.send(u.children);
        true
    })
    .unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), names(&["z"]));
    w.create(&format!("{p}/y"), "", CreateMode::Persistent)
        .unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), names(&["y", "z"]));
    h.stop();
    w.create(&format!("{p}/x"), "", CreateMode::Persistent)
        .unwrap();
    assert!(rx.recv_timeout(QUIET).is_err(), "called after stop()");
    zk.close().unwrap();
    w.close().unwrap();
}
