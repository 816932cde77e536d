//! The simulated ensemble on threads (`simstd::SimEnsemble`) as a user of zk-smol
//! or zk-blocking sees it: connect, read, write, a watch fired by a write from
//! outside, connections cut by the servers, a stalled member, an expired session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, CreateMode, EventType, SessionState, SystemClock};
use zk_proto::{Acl, CreateRequest, Request, SetDataRequest};
use zk_testkit::simstd::SimEnsemble;

const WAIT: Duration = Duration::from_secs(20);

fn set_from_outside(net: &SimEnsemble, path: &str, data: &'static [u8]) {
    net.with(|c| {
        c.admin(
            Request::SetData(SetDataRequest {
                path: path.into(),
                data: Some(bytes::Bytes::from_static(data)),
                version: -1,
            }),
            Instant::now(),
        )
    })
    .expect("admin setData");
}

fn create_from_outside(net: &SimEnsemble, path: &str) {
    net.with(|c| {
        c.admin(
            Request::Create2(CreateRequest {
                path: path.into(),
                data: Some(bytes::Bytes::new()),
                acl: Acl::open_unsafe(),
                flags: CreateMode::Persistent.flags(),
            }),
            Instant::now(),
        )
    })
    .expect("admin create");
}

fn builder(net: &SimEnsemble) -> ClientBuilder {
    ClientBuilder::new(&net.connect_string(""))
        .session_timeout(Duration::from_secs(3))
        .randomize_hosts(false)
}

/// Waits for `want` on the stream, failing with what it saw instead.
fn wait_for_states(
    mut next: impl FnMut() -> Option<SessionState>,
    want: &[SessionState],
) -> Vec<SessionState> {
    let mut seen = Vec::new();
    let mut left = want.iter().peekable();
    while let Some(w) = left.peek() {
        match next() {
            Some(s) => {
                if s == **w {
                    left.next();
                }
                seen.push(s);
            }
            None => panic!("wanted {want:?}, saw {seen:?} and then nothing"),
        }
    }
    seen
}

/// [`wait_for_states`] for an async state stream, each step bounded by [`WAIT`].
async fn wait_async(states: &mut zk_client::StateStream, want: &[SessionState]) {
    let mut seen = Vec::new();
    for w in want {
        loop {
            let next = futures_lite::future::or(states.next(), async {
                async_io::Timer::after(WAIT).await;
                None
            })
            .await;
            match next {
                Some(s) => {
                    seen.push(s);
                    if s == *w {
                        break;
                    }
                }
                None => panic!("wanted {want:?}, saw {seen:?} and then nothing"),
            }
        }
    }
}

#[test]
fn blocking_client_on_the_threaded_simulator() {
    let net = SimEnsemble::new(3);
    let zk = zk_blocking::connect_with(
        &builder(&net),
        net.blocking_connector(),
        Arc::new(SystemClock),
    )
    .expect("connect to the simulated ensemble");
    assert_eq!(zk.current_host().unwrap().host, "m0");
    zk.create("/a", "one", CreateMode::Persistent).unwrap();
    let eph = zk.create("/e", "", CreateMode::Ephemeral).unwrap();
    let (data, _, watch) = zk.get_data_watch("/a").unwrap();
    assert_eq!(&data[..], b"one");
    set_from_outside(&net, "/a", b"two");
    let ev = watch.wait_timeout(Some(WAIT)).expect("the watch fires");
    assert_eq!(ev.event_type, EventType::NodeDataChanged);

    // The servers close every connection: same session, watches restored.
    let id = zk.session().unwrap().id;
    let (_, watch) = zk.exists_watch("/later").unwrap();
    let mut states = zk.state_stream();
    assert!(net.cut_all() >= 1);
    wait_for_states(
        || states.recv_timeout(Some(WAIT)),
        &[SessionState::Suspended, SessionState::Connected],
    );
    assert_eq!(zk.session().unwrap().id, id);
    create_from_outside(&net, "/later");
    let ev = watch
        .wait_timeout(Some(WAIT))
        .expect("the restored watch fires");
    assert_eq!(ev.event_type, EventType::NodeCreated);

    // A member that stops reading: the client leaves it within its read timeout.
    let on = zk.current_host().unwrap().host;
    let m: usize = on[1..].parse().unwrap();
    net.stall_member(m, true);
    let t = Instant::now();
    wait_for_states(
        || states.recv_timeout(Some(WAIT)),
        &[SessionState::Suspended, SessionState::Connected],
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_ne!(zk.current_host().unwrap().host, on);
    net.stall_member(m, false);

    // Expired by the ensemble: a new session, the ephemeral gone.
    net.with(|c| c.expire_session(id, Instant::now()));
    wait_for_states(
        || states.recv_timeout(Some(WAIT)),
        &[SessionState::Expired, SessionState::Connected],
    );
    assert_ne!(zk.session().unwrap().id, id);
    assert!(zk.exists(&eph).unwrap().is_none());
    zk.close().unwrap();
    assert_eq!(net.open_connections(), 0, "close closed the connection");
}

#[test]
fn smol_client_on_the_threaded_simulator() {
    let net = SimEnsemble::new(3);
    smol::block_on(async {
        let zk = zk_smol::connect_with(&builder(&net), net.smol_connector(), Arc::new(SystemClock))
            .await
            .expect("connect to the simulated ensemble");
        zk.create("/a", "one", CreateMode::Persistent)
            .await
            .unwrap();
        let eph = zk.create("/e", "", CreateMode::Ephemeral).await.unwrap();
        let (data, _, watch) = zk.get_data_watch("/a").await.unwrap();
        assert_eq!(&data[..], b"one");
        set_from_outside(&net, "/a", b"two");
        let ev = watch.await.expect("the watch fires");
        assert_eq!(ev.event_type, EventType::NodeDataChanged);

        let id = zk.session().unwrap().id;
        let (_, watch) = zk.exists_watch("/later").await.unwrap();
        let mut states = zk.state_stream();
        assert!(net.cut_all() >= 1);
        wait_async(
            &mut states,
            &[SessionState::Suspended, SessionState::Connected],
        )
        .await;
        assert_eq!(zk.session().unwrap().id, id);
        create_from_outside(&net, "/later");
        let ev = watch.await.expect("the restored watch fires");
        assert_eq!(ev.event_type, EventType::NodeCreated);

        let on = zk.current_host().unwrap().host;
        let m: usize = on[1..].parse().unwrap();
        net.stall_member(m, true);
        wait_async(
            &mut states,
            &[SessionState::Suspended, SessionState::Connected],
        )
        .await;
        assert_ne!(zk.current_host().unwrap().host, on);
        net.stall_member(m, false);

        net.with(|c| c.expire_session(id, Instant::now()));
        wait_async(
            &mut states,
            &[SessionState::Expired, SessionState::Connected],
        )
        .await;
        assert_ne!(zk.session().unwrap().id, id);
        assert!(zk.exists(&eph).await.unwrap().is_none());
        zk.close().await.unwrap();
    });
    assert_eq!(net.open_connections(), 0, "close closed the connection");
}
