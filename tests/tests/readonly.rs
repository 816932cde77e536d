//! Read-only mode against a real 3-node ensemble, for every adapter: with two
//! members down the survivor serves reads only; a read-only-capable client gets
//! ConnectedReadOnly, reads work and writes fail with NotReadOnly; when the quorum
//! is back the client finds the read-write server on its own (isro probes).

use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, Error, ErrorCode, SessionState};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::{Ensemble, ServerOptions};

fn read_only_phase<Z: Zk>(ens: &Ensemble) -> Z {
    let zk = Z::connect(
        &ClientBuilder::new(&ens.connect_string())
            .read_only(true)
            .session_timeout(Duration::from_secs(6))
            .connect_deadline(Duration::from_secs(20)),
    )
    .expect("a read-only-capable client connects to the read-only survivor");
    assert_eq!(zk.state(), SessionState::ConnectedReadOnly, "{}", Z::NAME);
    assert_eq!(&zk.get_data("/ro").unwrap().0[..], b"before", "{}", Z::NAME);
    match zk.create(&format!("/ro-{}", Z::NAME), "x", CreateMode::Persistent) {
        Err(Error::Server(ErrorCode::NotReadOnly)) => {}
        other => panic!("{}: write on a read-only server: {other:?}", Z::NAME),
    }
    zk
}

fn back_to_read_write<Z: Zk>(zk: &Z) -> Duration {
    let t = Instant::now();
    let mut states = zk.state_stream();
    loop {
        match states.recv_timeout(Some(Duration::from_secs(30))) {
            Some(SessionState::Connected) => break,
            Some(_) => {}
            None => panic!(
                "{}: never left read-only mode (state {:?})",
                Z::NAME,
                zk.state()
            ),
        }
    }
    zk.create(&format!("/rw-{}", Z::NAME), "x", CreateMode::Persistent)
        .expect("writes work again");
    t.elapsed()
}

#[test]
fn read_only_then_read_write_for_every_adapter() {
    let mut ens = Ensemble::start(
        3,
        ServerOptions {
            read_only_mode: true,
            ..Default::default()
        },
    );
    {
        let setup = TokioZk::connect(&ClientBuilder::new(&ens.connect_string())).unwrap();
        setup
            .create("/ro", "before", CreateMode::Persistent)
            .unwrap();
        setup.close().unwrap();
    }
    // Keep member 0; stop the other two. Member 0 drops to read-only.
    ens.stop(1);
    ens.stop(2);
    assert!(
        ens.wait_for_mode(0, "read-only", Duration::from_secs(30)),
        "survivor never went read-only"
    );
    let a = read_only_phase::<TokioZk>(&ens);
    let b = read_only_phase::<SmolZk>(&ens);
    let c = read_only_phase::<BlockingZk>(&ens);
    // Quorum back: every client moves to a read-write server by itself.
    ens.start_member(1);
    ens.start_member(2);
    let ta = back_to_read_write(&a);
    let tb = back_to_read_write(&b);
    let tc = back_to_read_write(&c);
    println!(
        "back to read-write after the quorum returned: tokio {ta:?}, smol {tb:?}, blocking {tc:?}"
    );
    a.close().unwrap();
    b.close().unwrap();
    c.close().unwrap();
}
