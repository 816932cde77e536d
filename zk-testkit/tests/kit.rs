//! The kit as a user sees it: only its public API, a real server, a killed session.

use std::time::Duration;

use zk_client::{ClientBuilder, CreateMode, SessionState};
use zk_testkit::{kill_session, ZkServer};

#[test]
fn a_killed_session_expires_and_the_client_opens_a_new_one() {
    let server = ZkServer::start();
    let zk = zk_blocking::connect(
        &ClientBuilder::new(&server.connect_string()).session_timeout(Duration::from_secs(6)),
    )
    .expect("connect to the kit's server");
    let old = zk.session().unwrap();
    let eph = zk.create("/mine", "", CreateMode::Ephemeral).unwrap();
    let mut states = zk.state_stream();
    assert_eq!(
        states.recv_timeout(Some(Duration::from_secs(5))),
        Some(SessionState::Connected)
    );
    kill_session(&server.connect_string(), &old, Duration::from_secs(20)).expect("kill");
    let mut seen = Vec::new();
    while !(seen.contains(&SessionState::Expired) && seen.last() == Some(&SessionState::Connected))
    {
        match states.recv_timeout(Some(Duration::from_secs(20))) {
            Some(s) => seen.push(s),
            None => panic!("no Expired then Connected: {seen:?}"),
        }
    }
    assert_ne!(zk.session().unwrap().id, old.id);
    assert!(
        zk.exists(&eph).unwrap().is_none(),
        "the killed session's ephemeral is gone"
    );
    zk.close().unwrap();
}

#[test]
fn servers_stop_and_restart_keeping_their_data() {
    let mut server = ZkServer::start();
    let zk = zk_blocking::connect(&ClientBuilder::new(&server.connect_string())).unwrap();
    zk.create("/kept", "v", CreateMode::Persistent).unwrap();
    drop(zk);
    server.stop();
    assert!(!server.is_running());
    server.restart();
    let zk = zk_blocking::connect(&ClientBuilder::new(&server.connect_string())).unwrap();
    assert_eq!(zk.get_data("/kept").unwrap().0, "v");
    zk.close().unwrap();
}

/// The simulated ensemble: a user's own zk-tokio code, no JVM, virtual time.
#[tokio::test(start_paused = true)]
async fn the_simulated_ensemble_runs_user_code_on_virtual_time() {
    let net = zk_testkit::simnet::SimNet::new(3);
    let zk = zk_tokio::connect_with(
        &ClientBuilder::new(&net.connect_string("")),
        net.connector(),
    )
    .await
    .unwrap();
    zk.create("/a", "1", CreateMode::Persistent).await.unwrap();
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    assert_eq!(zk.state(), SessionState::Connected);
    assert_eq!(zk.get_data("/a").await.unwrap().0, "1");
    zk.close().await.unwrap();
}
