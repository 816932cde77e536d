//! The real-server integration suite, written once and run against every adapter
//! (tokio, smol, blocking) on one shared ZooKeeper 3.8 server per test binary.
//! Each test works under its own path, so the tests stay independent.

use std::time::Duration;

use zk_client::{
    Acl, AddWatchMode, ClientBuilder, CreateMode, CreateOptions, Error, ErrorCode, EventType, Op,
    OpResult, Perms, ReadOp, ReadResult, SessionState, WatcherType,
};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn base<Z: Zk>(test: &str) -> String {
    format!("/{}-{}", test, Z::NAME)
}

fn connect<Z: Zk>() -> Z {
    Z::connect(&ClientBuilder::new(&shared_server().connect_string())).expect("connect")
}

fn fresh<Z: Zk>(test: &str) -> (Z, String) {
    let zk = connect::<Z>();
    let b = base::<Z>(test);
    zk.delete_recursive(&b).unwrap();
    zk.create(&b, "", CreateMode::Persistent).unwrap();
    (zk, b)
}

fn code<T: std::fmt::Debug>(r: zk_client::Result<T>) -> ErrorCode {
    r.expect_err("expected an error").code()
}

pub fn crud<Z: Zk>() {
    let (zk, b) = fresh::<Z>("crud");
    let p = format!("{b}/a");
    assert_eq!(zk.create(&p, "v1", CreateMode::Persistent).unwrap(), p);
    let (data, stat) = zk.get_data(&p).unwrap();
    assert_eq!(&data[..], b"v1");
    assert_eq!(stat.version, 0);
    assert_eq!(stat.data_length, 2);
    assert_eq!(
        code(zk.create(&p, "again", CreateMode::Persistent)),
        ErrorCode::NodeExists
    );
    let st = zk.set_data(&p, "v2", Some(0)).unwrap();
    assert_eq!(st.version, 1);
    assert_eq!(code(zk.set_data(&p, "v3", Some(0))), ErrorCode::BadVersion);
    assert_eq!(&zk.get_data(&p).unwrap().0[..], b"v2");
    zk.create(&format!("{p}/child"), "", CreateMode::Persistent)
        .unwrap();
    assert_eq!(code(zk.delete(&p, None)), ErrorCode::NotEmpty);
    assert_eq!(
        code(zk.delete(&format!("{p}/child"), Some(5))),
        ErrorCode::BadVersion
    );
    zk.delete(&format!("{p}/child"), Some(0)).unwrap();
    zk.delete(&p, None).unwrap();
    assert_eq!(code(zk.get_data(&p)), ErrorCode::NoNode);
    assert_eq!(code(zk.delete(&p, None)), ErrorCode::NoNode);
    assert_eq!(code(zk.set_data(&p, "x", None)), ErrorCode::NoNode);
    assert!(zk.exists(&p).unwrap().is_none());
    assert_eq!(
        code(zk.create(&format!("{b}/missing/x"), "", CreateMode::Persistent)),
        ErrorCode::NoNode
    );
    // Invalid paths are refused before anything is sent.
    for bad in ["", "rel", "/a/", "/a//b", "/a/./b", "/a/../b", "/a\0b"] {
        match zk.create(bad, "", CreateMode::Persistent) {
            Err(Error::InvalidPath { .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(
            matches!(zk.get_data(bad), Err(Error::InvalidPath { .. })),
            "{bad:?}"
        );
    }
    let (kids, st) = zk.get_children_stat(&b).unwrap();
    assert!(kids.is_empty());
    assert_eq!(st.num_children, 0);
    zk.close().unwrap();
}

pub fn sequential_and_ephemeral<Z: Zk>() {
    let (zk, b) = fresh::<Z>("seqeph");
    let s1 = zk
        .create(&format!("{b}/q-"), "", CreateMode::PersistentSequential)
        .unwrap();
    let s2 = zk
        .create(&format!("{b}/q-"), "", CreateMode::PersistentSequential)
        .unwrap();
    assert_eq!(s1, format!("{b}/q-0000000000"));
    assert_eq!(s2, format!("{b}/q-0000000001"));
    let owner = connect::<Z>();
    let e = owner
        .create(&format!("{b}/eph"), "", CreateMode::Ephemeral)
        .unwrap();
    let es = owner
        .create(&format!("{b}/eph-"), "", CreateMode::EphemeralSequential)
        .unwrap();
    assert!(es.starts_with(&format!("{b}/eph-")) && es.len() == format!("{b}/eph-").len() + 10);
    let stat = zk.exists(&e).unwrap().expect("visible to another client");
    assert_eq!(stat.ephemeral_owner, owner.session().unwrap().id);
    assert_eq!(
        code(owner.create(&format!("{e}/kid"), "", CreateMode::Persistent)),
        ErrorCode::NoChildrenForEphemerals
    );
    let mut mine = owner.get_ephemerals("/").unwrap();
    mine.sort();
    assert_eq!(mine, vec![e.clone(), es.clone()]);
    owner.close().unwrap();
    assert_eq!(owner.state(), SessionState::Closed);
    assert!(
        zk.exists(&e).unwrap().is_none(),
        "ephemeral gone after close"
    );
    assert!(zk.exists(&es).unwrap().is_none());
    assert!(matches!(owner.get_data(&b), Err(Error::SessionClosed)));
    zk.close().unwrap();
}

pub fn create_options<Z: Zk>() {
    let (zk, b) = fresh::<Z>("createopts");
    let deep = format!("{b}/x/y/z");
    let opts = CreateOptions {
        make_parents: true,
        ..Default::default()
    };
    let (p, stat) = zk.create_with(&deep, "d", &opts).unwrap();
    assert_eq!(p, deep);
    assert_eq!(stat.data_length, 1);
    assert!(stat.czxid > 0);
    zk.ensure_path(&format!("{b}/e/f/g")).unwrap();
    zk.ensure_path(&format!("{b}/e/f/g")).unwrap();
    assert!(zk.exists(&format!("{b}/e/f/g")).unwrap().is_some());
    let c = format!("{b}/container");
    let (_, st) = zk
        .create_with(&c, "", &CreateOptions::mode(CreateMode::Container))
        .unwrap();
    assert_eq!(st.ephemeral_owner, 0);
    let ttl = format!("{b}/ttl");
    zk.create(&ttl, "t", CreateMode::PersistentWithTtl(60_000))
        .unwrap();
    let s = zk
        .create(
            &format!("{b}/ttlseq-"),
            "",
            CreateMode::PersistentSequentialWithTtl(60_000),
        )
        .unwrap();
    assert!(s.ends_with("0000000000") || s.len() > ttl.len());
    assert!(matches!(
        zk.create(&ttl, "", CreateMode::PersistentWithTtl(0)),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(zk.get_all_children_number(&b).unwrap(), 9);
    zk.delete_recursive(&b).unwrap();
    assert!(zk.exists(&b).unwrap().is_none());
    zk.close().unwrap();
}

pub fn watches<Z: Zk>() {
    let (zk, b) = fresh::<Z>("watches");
    let other = connect::<Z>();
    let p = format!("{b}/w");
    // exist watch on a missing node fires on create
    let (none, w_exist) = zk.exists_watch(&p).unwrap();
    assert!(none.is_none());
    other.create(&p, "1", CreateMode::Persistent).unwrap();
    let ev = w_exist.wait_timeout(WAIT).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, p.as_str())
    );
    // data watch fires on change; two registrations both fire
    let (_, _, w1) = zk.get_data_watch(&p).unwrap();
    let (_, _, w2) = zk.get_data_watch(&p).unwrap();
    other.set_data(&p, "2", None).unwrap();
    assert_eq!(
        w1.wait_timeout(WAIT).unwrap().event_type,
        EventType::NodeDataChanged
    );
    assert_eq!(
        w2.wait_timeout(WAIT).unwrap().event_type,
        EventType::NodeDataChanged
    );
    // child watch
    let (_, _, wc) = zk.get_children_watch(&b).unwrap();
    other
        .create(&format!("{b}/c1"), "", CreateMode::Persistent)
        .unwrap();
    let ev = wc.wait_timeout(WAIT).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeChildrenChanged, b.as_str())
    );
    // persistent and recursive
    let mut pw = zk.add_watch(&p, AddWatchMode::Persistent).unwrap();
    let mut rw = zk.add_watch(&b, AddWatchMode::PersistentRecursive).unwrap();
    other.set_data(&p, "3", None).unwrap();
    other.set_data(&p, "4", None).unwrap();
    for _ in 0..2 {
        assert_eq!(
            pw.recv_timeout(WAIT).unwrap().unwrap().event_type,
            EventType::NodeDataChanged
        );
        let e = rw.recv_timeout(WAIT).unwrap().unwrap();
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDataChanged, p.as_str())
        );
    }
    other
        .create(&format!("{b}/c1/deep"), "", CreateMode::Persistent)
        .unwrap();
    let e = rw.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(
        (e.event_type, e.path),
        (EventType::NodeCreated, format!("{b}/c1/deep"))
    );
    // NodeDeleted fires data and child watches on the node
    let (_, _, wd) = zk.get_data_watch(&p).unwrap();
    let (_, _, wk) = zk.get_children_watch(&p).unwrap();
    other.delete(&p, None).unwrap();
    assert_eq!(
        wd.wait_timeout(WAIT).unwrap().event_type,
        EventType::NodeDeleted
    );
    assert_eq!(
        wk.wait_timeout(WAIT).unwrap().event_type,
        EventType::NodeDeleted
    );
    assert_eq!(
        pw.recv_timeout(WAIT).unwrap().unwrap().event_type,
        EventType::NodeDeleted
    );
    // dropping the last registration removes the server's watch too
    drop(pw);
    let q = format!("{b}/q");
    other.create(&q, "", CreateMode::Persistent).unwrap();
    let (_, _, wq) = zk.get_data_watch(&q).unwrap();
    zk.check_watches(&q, WatcherType::Data).unwrap();
    drop(wq);
    zk.sync(&q).unwrap();
    assert_eq!(
        code(zk.check_watches(&q, WatcherType::Data)),
        ErrorCode::NoWatcher
    );
    // server-side removal ends the local registration
    let (_, _, wr) = zk.get_data_watch(&q).unwrap();
    zk.remove_watches(&q, WatcherType::Data).unwrap();
    assert!(wr.wait_timeout(WAIT).is_err());
    assert_eq!(
        code(zk.remove_watches(&q, WatcherType::Data)),
        ErrorCode::NoWatcher
    );
    drop(rw);
    other.close().unwrap();
    zk.close().unwrap();
}

pub fn acl_and_auth<Z: Zk>() {
    let (zk, b) = fresh::<Z>("acl");
    zk.add_auth("digest", "alice:secret").unwrap();
    assert!(zk
        .whoami()
        .unwrap()
        .iter()
        .any(|c| c.auth_scheme == "digest" && c.user == "alice"));
    let p = format!("{b}/private");
    let opts = CreateOptions {
        acl: Some(Acl::creator_all()),
        ..Default::default()
    };
    zk.create_with(&p, "s", &opts).unwrap();
    let (acl, _) = zk.get_acl(&p).unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].perms.contains(Perms::ALL));
    let stranger = connect::<Z>();
    assert_eq!(code(stranger.get_data(&p)), ErrorCode::NoAuth);
    assert_eq!(code(stranger.set_data(&p, "x", None)), ErrorCode::NoAuth);
    let st = zk.set_acl(&p, Acl::read_unsafe(), Some(0)).unwrap();
    assert_eq!(st.aversion, 1);
    assert_eq!(&stranger.get_data(&p).unwrap().0[..], b"s");
    assert_eq!(code(stranger.set_data(&p, "x", None)), ErrorCode::NoAuth);
    assert_eq!(code(zk.set_acl(&p, vec![], None)), ErrorCode::InvalidAcl);
    stranger.close().unwrap();
    zk.close().unwrap();
}

pub fn multi<Z: Zk>() {
    let (zk, b) = fresh::<Z>("multi");
    let a = format!("{b}/a");
    let res = zk
        .multi(vec![
            Op::create(&a, "1", CreateMode::Persistent),
            Op::set_data(&a, "2", Some(0)),
            Op::check(&a, 1),
            Op::create(&format!("{b}/s-"), "", CreateMode::PersistentSequential),
        ])
        .unwrap();
    assert_eq!(res.len(), 4);
    assert!(matches!(&res[0], OpResult::Create { path, .. } if *path == a));
    assert!(matches!(res[1], OpResult::SetData(s) if s.version == 1));
    assert_eq!(res[2], OpResult::Check);
    match zk.multi(vec![
        Op::create(&format!("{b}/never"), "", CreateMode::Persistent),
        Op::set_data(&a, "x", Some(99)),
        Op::delete(&a, None),
    ]) {
        Err(Error::MultiFailed {
            index,
            code,
            results,
        }) => {
            assert_eq!(index, 1);
            assert_eq!(code, ErrorCode::BadVersion);
            assert_eq!(results.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        zk.exists(&format!("{b}/never")).unwrap().is_none(),
        "nothing applied"
    );
    assert!(zk.exists(&a).unwrap().is_some());
    let reads = zk
        .multi_read(vec![
            ReadOp::GetData(a.clone()),
            ReadOp::GetData(format!("{b}/nope")),
            ReadOp::GetChildren(b.clone()),
        ])
        .unwrap();
    assert!(matches!(&reads[0], Ok(ReadResult::Data(d, _)) if &d[..] == b"2"));
    assert_eq!(reads[1].clone().unwrap_err().code(), ErrorCode::NoNode);
    assert!(matches!(&reads[2], Ok(ReadResult::Children(c)) if c.len() == 2));
    zk.close().unwrap();
}

pub fn session_resume_and_chroot<Z: Zk>() {
    let (zk, b) = fresh::<Z>("resume");
    let e = zk
        .create(&format!("{b}/mine"), "", CreateMode::Ephemeral)
        .unwrap();
    let info = zk.session().unwrap();
    zk.abandon();
    assert_eq!(zk.state(), SessionState::Closed);
    let again = Z::connect(
        &ClientBuilder::new(&shared_server().connect_string())
            .resume(info.id, info.password.clone()),
    )
    .unwrap();
    assert_eq!(again.session().unwrap().id, info.id);
    assert_eq!(again.get_ephemerals("/").unwrap(), vec![e.clone()]);
    again.close().unwrap();
    // The session is closed for both now; a resume of it is refused as expired
    // (with terminal expiry), or answered with a new session (the default, kazoo's).
    let err = Z::connect(
        &ClientBuilder::new(&shared_server().connect_string())
            .resume(info.id, info.password.clone())
            .expiry_policy(zk_client::ExpiryPolicy::Terminal),
    );
    assert!(
        matches!(err, Err(Error::SessionExpired)),
        "{:?}",
        err.as_ref().err()
    );
    let renewed = Z::connect(
        &ClientBuilder::new(&shared_server().connect_string()).resume(info.id, info.password),
    )
    .expect("the default policy opens a new session after the refused resume");
    assert_ne!(renewed.session().unwrap().id, info.id);
    renewed.close().unwrap();
    let root = connect::<Z>();
    assert!(root.exists(&e).unwrap().is_none());
    // chroot
    let ch = Z::connect(&ClientBuilder::new(&format!(
        "{}{b}",
        shared_server().connect_string()
    )))
    .unwrap();
    assert_eq!(
        ch.create("/inside", "c", CreateMode::Persistent).unwrap(),
        "/inside"
    );
    assert_eq!(&root.get_data(&format!("{b}/inside")).unwrap().0[..], b"c");
    let (_, _, w) = ch.get_data_watch("/inside").unwrap();
    root.set_data(&format!("{b}/inside"), "d", None).unwrap();
    assert_eq!(w.wait_timeout(WAIT).unwrap().path, "/inside");
    assert_eq!(ch.sync("/inside").unwrap(), "/inside");
    assert!(ch
        .get_children("/")
        .unwrap()
        .contains(&"inside".to_string()));
    assert!(ch.get_config().is_ok(), "getConfig is never chrooted");
    ch.close().unwrap();
    root.close().unwrap();
}

pub fn misc_ops<Z: Zk>() {
    let (zk, b) = fresh::<Z>("misc");
    let host = zk.current_host().unwrap();
    assert_eq!(Z::four_letter(&host, "ruok").unwrap(), "imok");
    let srvr = zk_client::fourlw::parse_stat(&Z::four_letter(&host, "srvr").unwrap());
    assert_eq!(srvr.version_tuple.map(|v| (v.0, v.1)), Some((3, 8)));
    assert_eq!(srvr.mode, "standalone");
    let mntr = zk_client::fourlw::parse_mntr(&Z::four_letter(&host, "mntr").unwrap());
    assert!(mntr.contains_key("zk_version"));
    assert_eq!(
        zk_client::fourlw::parse_isro(&Z::four_letter(&host, "isro").unwrap()),
        Some(false)
    );
    assert!(matches!(
        Z::four_letter(&host, "bad\n"),
        Err(Error::InvalidArgument(_))
    ));
    let v = zk.server_version().unwrap();
    assert_eq!(v.major, 3);
    assert!(v.minor >= 5, "{v:?}");
    // The full string names the build, as srvr printed it.
    assert!(
        v.full
            .starts_with(&format!("{}.{}.{}", v.major, v.minor, v.patch)),
        "{v:?}"
    );
    assert!(v.full.contains("built on"), "{v:?}");
    let (_, stat) = zk.get_config().unwrap();
    assert!(stat.czxid >= 0);
    // A standalone server without reconfigEnabled refuses reconfig with a typed error.
    assert_eq!(
        code(zk.reconfig(None, Some("2"), None, -1)),
        ErrorCode::ReconfigDisabled
    );
    assert_eq!(zk.sync(&b).unwrap(), b);
    assert_eq!(zk.get_all_children_number(&b).unwrap(), 0);
    assert!(zk.whoami().unwrap().iter().any(|c| c.auth_scheme == "ip"));
    zk.close().unwrap();
}

pub fn lifecycle<Z: Zk>() {
    // Nothing listens on this port: connect gives up with a clear error in time.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let t = std::time::Instant::now();
    let r = Z::connect(
        &ClientBuilder::new(&format!("127.0.0.1:{port}"))
            .connect_deadline(Duration::from_millis(800)),
    );
    // The error names the last attempt's cause (issue 14): ConnectFailed, not a bare Timeout.
    assert!(
        matches!(&r, Err(Error::ConnectFailed(c)) if c.contains(&port.to_string()) && c.contains("refused")),
        "{:?}",
        r.as_ref().err()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let zk = connect::<Z>();
    let mut states = zk.state_stream();
    assert_eq!(states.recv_timeout(WAIT), Some(SessionState::Connected));
    let first = zk.session().unwrap().id;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let listener = zk.add_listener(move |s| s2.lock().unwrap().push(s));
    let dropped = zk.add_listener(|_| panic!("removed listeners are not called"));
    assert!(zk.remove_listener(dropped));
    assert!(!zk.remove_listener(dropped));
    zk.close().unwrap();
    // Listeners run on the client's listener thread, in order.
    let t = std::time::Instant::now();
    while seen.lock().unwrap().is_empty() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*seen.lock().unwrap(), vec![SessionState::Closed]);
    assert!(zk.remove_listener(listener));
    assert_eq!(zk.state(), SessionState::Closed);
    assert_eq!(states.recv_timeout(WAIT), Some(SessionState::Closed));
    // A state stream ends with Closed (its readers must not wait forever); a
    // restarted session is watched through a new one.
    assert_eq!(states.wait_next(WAIT), Ok(None));
    assert!(matches!(zk.exists("/"), Err(Error::SessionClosed)));
    let mut states = zk.state_stream();
    assert_eq!(states.wait_next(WAIT), Ok(Some(SessionState::Closed)));
    assert_eq!(
        states.wait_next(WAIT),
        Ok(None),
        "a stream taken after Closed ends at once"
    );
    let mut states = {
        zk.restart();
        zk.state_stream()
    };
    assert!(matches!(
        states.recv_timeout(WAIT),
        Some(SessionState::Connecting | SessionState::Connected)
    ));
    if zk.state() != SessionState::Connected {
        assert_eq!(states.recv_timeout(WAIT), Some(SessionState::Connected));
    }
    assert_ne!(zk.session().unwrap().id, first);
    assert!(zk.exists("/").unwrap().is_some());
    zk.close().unwrap();
}

/// `restart()` on a live session is kazoo's (`stop()` then `start()`): the
/// session is closed (its ephemeral is gone at once, listeners see Closed) and
/// a new one starts; a call made right after `restart()` runs on the new
/// session instead of failing.
pub fn restart_live_session<Z: Zk>() {
    let path = base::<Z>("restart-live");
    let zk = connect::<Z>();
    let other = connect::<Z>();
    let _ = other.delete(&path, None);
    let old = zk.session().unwrap().id;
    zk.create(&path, "", CreateMode::Ephemeral).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    zk.add_listener(move |s| s2.lock().unwrap().push(s));
    zk.restart();
    // Made at once: it waits for the new session.
    assert!(zk.exists("/").unwrap().is_some());
    let new = zk.session().unwrap().id;
    assert_ne!(new, old, "{}: restart() keeps the session", Z::NAME);
    assert_eq!(zk.state(), SessionState::Connected);
    // The old session was closed, not left to expire: its ephemeral is gone now.
    assert_eq!(
        other.exists(&path).unwrap(),
        None,
        "{}: the old session's ephemeral outlived restart()",
        Z::NAME
    );
    let t = std::time::Instant::now();
    while !seen.lock().unwrap().contains(&SessionState::Connected) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            SessionState::Closed,
            SessionState::Connecting,
            SessionState::Connected
        ],
        "{}: what listeners saw",
        Z::NAME
    );
    zk.close().unwrap();
    other.close().unwrap();
}

zk_tests::adapter_suites!(direct tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [crud, sequential_and_ephemeral, create_options, watches, acl_and_auth, multi, session_resume_and_chroot, misc_ops, lifecycle, restart_live_session]);
