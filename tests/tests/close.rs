//! Close never hangs, for every adapter: close while reconnecting, close with
//! requests in flight, and dropping the last client handle (which ends the session:
//! its ephemerals vanish).

use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, Error, SessionState};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::{shared_server, ZkServer};

fn close_while_reconnecting<Z: Zk>() {
    let mut server = ZkServer::start();
    let zk = Z::connect(&ClientBuilder::new(&server.connect_string())).unwrap();
    let mut states = zk.state_stream();
    assert_eq!(
        states.recv_timeout(Some(Duration::from_secs(5))),
        Some(SessionState::Connected)
    );
    server.kill();
    assert_eq!(
        states.recv_timeout(Some(Duration::from_secs(10))),
        Some(SessionState::Suspended)
    );
    let t = Instant::now();
    zk.close().unwrap();
    assert_eq!(zk.state(), SessionState::Closed);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "{}: close took {:?}",
        Z::NAME,
        t.elapsed()
    );
    assert!(matches!(zk.exists("/"), Err(Error::SessionClosed)));
}

fn close_with_requests_in_flight<Z: Zk>() {
    let zk = Z::connect(&ClientBuilder::new(&shared_server().connect_string())).unwrap();
    let client = zk.as_async().clone();
    let path = format!("/close-inflight-{}", Z::NAME);
    let _ = zk.create(&path, "x", CreateMode::Persistent);
    // Start 200 reads, then close before they can all have been answered.
    let pending: Vec<_> = (0..200)
        .map(|_| {
            let c = client.clone();
            let p = path.clone();
            std::thread::spawn(move || {
                zk_client::blocking::block_on(c.get_data(&p), Some(Duration::from_secs(10)))
            })
        })
        .collect();
    let t = Instant::now();
    zk.close().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "{}: close took {:?}",
        Z::NAME,
        t.elapsed()
    );
    let mut ok = 0;
    for h in pending {
        match h.join().unwrap().expect("every call completes") {
            Ok(_) => ok += 1,
            Err(Error::SessionClosed | Error::ConnectionLoss) => {}
            Err(e) => panic!("{}: unexpected {e:?}", Z::NAME),
        }
    }
    println!(
        "[{}] close with 200 reads in flight: {ok} answered before the close",
        Z::NAME
    );
}

fn drop_ends_the_session<Z: Zk>() {
    let watcher = Z::connect(&ClientBuilder::new(&shared_server().connect_string())).unwrap();
    let path = format!("/dropped-{}", Z::NAME);
    {
        let zk = Z::connect(&ClientBuilder::new(&shared_server().connect_string())).unwrap();
        zk.create(&path, "", CreateMode::Ephemeral).unwrap();
        assert!(watcher.exists(&path).unwrap().is_some());
        // Dropped here without close().
    }
    let t = Instant::now();
    while watcher.exists(&path).unwrap().is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{}: ephemeral outlived the dropped client",
            Z::NAME
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    watcher.close().unwrap();
}

zk_tests::adapter_suites!(direct tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [close_while_reconnecting, close_with_requests_in_flight, drop_ends_the_session]);
