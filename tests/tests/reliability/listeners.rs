//! State listeners and streams: a listener that calls the client, the state stream
//! after `close()`, a listener holding a weak client.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self};
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, SessionState};
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;

use super::adapter::Adapter;
use super::support::{
    bounded, check, connect_shared, connect_to, fast_server, panic_text, unique, CALL_LIMIT,
};

pub(crate) fn listener_calls_client<Z: Adapter>() {
    let server = fast_server();
    let proxy = Proxy::start(server.addr());
    let zk = connect_to::<Z>(
        &ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(4)),
    );
    let sid = zk.session().expect("session").id;
    let call = zk.listener_exists(Duration::from_secs(5));
    let (tx, rx) = mpsc::channel();
    // The listener may be queued or running after this test is done with it (it blocks
    // executor threads): it does nothing once `active` is off, and `running` tells when
    // the last call is over, so nothing outlives this test's exclusive slot.
    let active = Arc::new(AtomicBool::new(true));
    let running = Arc::new(AtomicUsize::new(0));
    let (active2, running2) = (active.clone(), running.clone());
    let id = zk.add_listener(move |s| {
        running2.fetch_add(1, Ordering::SeqCst);
        if s.is_connected() && active2.load(Ordering::SeqCst) {
            let t = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(&call)).map_err(|p| panic_text(&*p));
            let _ = tx.send((r, t.elapsed()));
        }
        running2.fetch_sub(1, Ordering::SeqCst);
    });
    // Force a reconnect: cut the connection; the client reconnects through the proxy
    // and resumes its session.
    let cut = Instant::now();
    proxy.cut_all();
    let mut failures = Vec::new();
    match rx.recv_timeout(Duration::from_secs(8)) {
        Err(_) => failures.push(format!(
            "the listener's exists(\"/\") on Connected did not complete within 8 s of the cut \
             (state now {:?})",
            zk.state()
        )),
        Ok((Err(panic), _)) => {
            failures.push(format!("the listener's exists(\"/\") panicked: {panic}"))
        }
        Ok((Ok(Ok(Some(_))), took)) => {
            if took > Duration::from_secs(3) {
                failures.push(format!(
                    "the listener's exists(\"/\") succeeded but took {took:?}"
                ));
            }
        }
        Ok((Ok(r), took)) => failures.push(format!(
            "the listener's exists(\"/\") on Connected returned {r:?} after {took:?} \
             ({:?} after the cut)",
            cut.elapsed()
        )),
    }
    let zk = Arc::new(zk);
    let z2 = zk.clone();
    match bounded(CALL_LIMIT, "exists(\"/\") after the reconnect", move || {
        z2.exists("/")
    }) {
        Ok(Ok(Some(_))) => {}
        Ok(r) => failures.push(format!("exists(\"/\") after the reconnect: {r:?}")),
        Err(e) => failures.push(e),
    }
    if !zk.state().is_connected() {
        failures.push(format!("state after the reconnect: {:?}", zk.state()));
    }
    if zk.session().map(|s| s.id) != Some(sid) {
        failures.push(format!(
            "session changed: 0x{sid:x} -> {:?}",
            zk.session().map(|s| s.id)
        ));
    }
    // Unregister first: the listener holds a clone of the client.
    active.store(false, Ordering::SeqCst);
    zk.remove_listener(id);
    if let Err(e) = bounded(CALL_LIMIT, "close", move || zk.close()) {
        failures.push(e);
    }
    let t = Instant::now();
    while running.load(Ordering::SeqCst) > 0 {
        if t.elapsed() > CALL_LIMIT {
            failures.push(format!(
                "the listener was still running {CALL_LIMIT:?} after close"
            ));
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    check(&format!("{} listener_calls_client", Z::NAME), failures);
}

pub(crate) fn state_stream_ends_after_close<Z: Adapter>() {
    let zk = Arc::new(connect_shared::<Z>());
    let mut s = zk.state_stream();
    let z2 = zk.clone();
    bounded(CALL_LIMIT, "close", move || z2.close())
        .unwrap_or_else(|e| panic!("{}: {e}", Z::NAME))
        .unwrap();
    let wait = Duration::from_secs(3);
    let mut seen = Vec::new();
    let ended = loop {
        let t = Instant::now();
        match s.recv_timeout(Some(wait)) {
            Some(st) => seen.push(st),
            // recv_timeout says None both when the stream ended and when it timed out:
            // an end comes at once.
            None => break t.elapsed() < wait - Duration::from_millis(500),
        }
        assert!(
            seen.len() < 20,
            "{}: endless states after close: {seen:?}",
            Z::NAME
        );
    };
    assert_eq!(
        seen.last(),
        Some(&SessionState::Closed),
        "{}: states after close: {seen:?}",
        Z::NAME
    );
    assert!(
        ended,
        "{}: after {seen:?} the state stream did not end: recv_timeout(Some({wait:?})) timed \
         out instead of returning None at once",
        Z::NAME
    );
    // Once ended it stays ended: next() resolves to None at once.
    let next = zk_client::blocking::block_on(s.next(), Some(Duration::from_secs(1)));
    assert_eq!(next, Some(None), "{}: next() on the ended stream", Z::NAME);
}

/// A listener holding a `Client` clone is a cycle (the session outlives the user's
/// last handle); one holding a `WeakClient` is not: dropping the last handle closes
/// the session, and the server removes its ephemeral at once.
pub(crate) fn weak_client_in_a_listener_lets_the_session_end<Z: Adapter>() {
    let checker: Z = connect_shared();
    let gone_within = |eph: &str, limit: Duration| {
        let t = Instant::now();
        while t.elapsed() < limit {
            if checker.exists(eph).unwrap().is_none() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    };
    let b = ClientBuilder::new(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(30));
    // A new client and an ephemeral node of its session.
    let with_ephemeral = |tag: &str| {
        let zk: Z = connect_to(&b);
        let eph = zk
            .create(&unique::<Z>(tag), "", CreateMode::Ephemeral)
            .unwrap();
        (zk, eph)
    };

    // The control: a strong clone in the listener keeps the session.
    let (zk, eph) = with_ephemeral("cycle");
    let strong = zk.as_async().clone();
    zk.add_listener(move |_| {
        let _ = &strong;
    });
    let escape = zk.as_async().downgrade();
    drop(zk);
    assert!(
        !gone_within(&eph, Duration::from_secs(2)),
        "{}: the control: with a Client in its listener the session outlives the handle",
        Z::NAME
    );
    let kept = escape.upgrade().expect("the cycle keeps the client alive");
    Z::block_on_close(&kept);
    assert!(gone_within(&eph, Duration::from_secs(5)));

    // A WeakClient in the listener: dropping the handle ends the session.
    let (zk, eph) = with_ephemeral("weak");
    let weak = zk.as_async().downgrade();
    zk.add_listener(move |_| {
        if let Some(c) = weak.upgrade() {
            let _ = c.state();
        }
    });
    let probe = zk.as_async().downgrade();
    drop(zk);
    assert!(
        gone_within(&eph, Duration::from_secs(5)),
        "{}: the session ended when the last handle dropped",
        Z::NAME
    );
    assert!(probe.upgrade().is_none());
    checker.close().unwrap();
}
