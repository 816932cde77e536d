//! API-level integration tests of the newer client features against a real ZooKeeper 3.8
//! server (and, for `add_watch` on an old server, a fake one): null vs empty data,
//! pipelining in call order, the blocking adapter's `*_async` calls and transactions, the
//! chroot getter, four-letter words on the current server, expiry with a new session, and
//! the retry helpers.
//!
//! Every test that applies to every adapter is written once, generic over the facade, and
//! instantiated for tokio, smol and blocking by [`api!`]. Each test works under its own
//! unique path and runs under a watchdog, and every wait in it is bounded.

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zk_client::fourlw::ServerVersion;
use zk_client::retry::{Idempotence, Interrupt, RetryPolicy};
use zk_client::{
    Acl, AddWatchMode, ClientBuilder, ConnectionEvent, CreateMode, CreateOptions, Data, Error,
    ErrorCode, Op, OpResult, Perms, ReadOp, ReadResult, Result, SessionState,
};
use zk_tests::facade::{AsyncZk, BlockingZk, Runner, Smol, SmolZk, Tokio, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tests::wire::{connect_response, frame, read_frame};

// =============================================================================================
// Harness

/// Watchdog of one whole test (it may include starting the JVM on a busy machine).
const TEST_LIMIT: Duration = Duration::from_secs(150);
/// Bound of one wait that is expected to be quick.
const WAIT: Duration = Duration::from_secs(10);
/// Requests kept in flight at once by the pipelining tests.
const N: usize = 1000;

/// Runs a test body on its own thread: its panic fails the test with its own message; a
/// body still running after [`TEST_LIMIT`] fails it as hung.
fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    zk_tests::watchdog::run(name, TEST_LIMIT, body)
}

/// A path no other test (adapter, process) uses: `/api-<tag>-<adapter>-<pid>-<n>`.
fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("api-", tag, Z::NAME)
}

fn connect<Z: Zk>(b: &ClientBuilder) -> Z {
    Z::connect(b).unwrap_or_else(|e| panic!("{}: connect: {e:?}", Z::NAME))
}

fn connect_shared<Z: Zk>() -> Z {
    connect(&ClientBuilder::new(&shared_server().connect_string()))
}

/// Polls `f` every 10 ms until it returns `Some`, at most `limit`; panics with `what` then.
fn wait_until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The data of `path` as `zk` reads it: `None` for null, else the bytes. Also checks that
/// the Stat's data length agrees.
fn read<Z: Zk>(zk: &Z, path: &str) -> Option<Vec<u8>> {
    let (d, st) = zk
        .get_data(path)
        .unwrap_or_else(|e| panic!("{}: get_data {path}: {e:?}", Z::NAME));
    assert_eq!(st.data_length as usize, d.len(), "{}: {path}", Z::NAME);
    if d.is_null() {
        // Null reads like an empty slice, but is not equal to empty data.
        assert_eq!(&d[..], b"");
        assert_ne!(d, Data::new(""));
        assert_eq!(d.as_option(), None);
    }
    d.into_option().map(|b| b.to_vec())
}

/// What the async-only tests call on an adapter's client, on its runtime.
trait Ext: Runner {
    fn command(c: &zk_client::Client, cmd: &str) -> Result<String>;
    fn version(c: &zk_client::Client) -> Result<ServerVersion>;
    fn retry<T, F, Fut>(c: &zk_client::Client, kind: Idempotence, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>;
}

impl Ext for Tokio {
    fn command(c: &zk_client::Client, cmd: &str) -> Result<String> {
        Tokio::block_on(c.command(cmd))
    }
    fn version(c: &zk_client::Client) -> Result<ServerVersion> {
        Tokio::block_on(c.server_version())
    }
    fn retry<T, F, Fut>(c: &zk_client::Client, kind: Idempotence, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        Tokio::block_on(c.retry(kind, op))
    }
}

impl Ext for Smol {
    fn command(c: &zk_client::Client, cmd: &str) -> Result<String> {
        Smol::block_on(c.command(cmd))
    }
    fn version(c: &zk_client::Client) -> Result<ServerVersion> {
        Smol::block_on(c.server_version())
    }
    fn retry<T, F, Fut>(c: &zk_client::Client, kind: Idempotence, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        Smol::block_on(c.retry(kind, op))
    }
}

// =============================================================================================
// 1. Null and empty data

/// Null data and empty data stay apart through create, set_data, multi and multi_read,
/// written by one adapter and read back by it and by a client of another adapter.
fn null_and_empty_data<Z: Zk, W: Zk>() {
    let zk = connect_shared::<Z>();
    let other = connect_shared::<W>();
    let b = unique::<Z>("nulldata");
    zk.create(&b, "", CreateMode::Persistent).unwrap();
    let n = format!("{b}/null");
    let e = format!("{b}/empty");
    zk.create(&n, Data::null(), CreateMode::Persistent).unwrap();
    zk.create(&e, "", CreateMode::Persistent).unwrap();
    let (d, _) = zk.get_data(&n).unwrap();
    assert!(d.is_null(), "{}: {d:?}", Z::NAME);
    let (d, _) = zk.get_data(&e).unwrap();
    assert!(!d.is_null() && d.is_empty(), "{}: {d:?}", Z::NAME);
    assert_eq!(d, Data::new(""));
    for (path, want) in [(&n, None), (&e, Some(vec![]))] {
        assert_eq!(read(&zk, path), want, "{} reads {path}", Z::NAME);
        assert_eq!(read(&other, path), want, "{} reads {path}", W::NAME);
    }
    // A watch read sees the same.
    let (d, _, _w) = zk.get_data_watch(&n).unwrap();
    assert!(d.is_null(), "get_data_watch: {d:?}");

    // set_data to null and back, each direction seen by both clients.
    let st = zk.set_data(&e, Data::null(), None).unwrap();
    assert_eq!((st.version, st.data_length), (1, 0));
    assert_eq!(read(&zk, &e), None);
    assert_eq!(read(&other, &e), None);
    zk.set_data(&e, "", None).unwrap();
    assert_eq!(read(&zk, &e), Some(vec![]));
    assert_eq!(read(&other, &e), Some(vec![]));
    zk.set_data(&n, "x", None).unwrap();
    assert_eq!(read(&other, &n), Some(b"x".to_vec()));
    // The other adapter writes null; this one reads it.
    other.set_data(&n, Data::null(), Some(1)).unwrap();
    assert_eq!(read(&zk, &n), None);

    // A transaction creating with null data (and setting null data).
    let m = format!("{b}/multi-null");
    let m2 = format!("{b}/multi-empty");
    let res = zk
        .multi(vec![
            Op::create(&m, Data::null(), CreateMode::Persistent),
            Op::create(&m2, "", CreateMode::Persistent),
            Op::set_data(&e, Data::null(), Some(2)),
        ])
        .unwrap();
    assert_eq!(res.len(), 3);
    assert!(matches!(&res[0], OpResult::Create { path, .. } if *path == m));
    assert!(matches!(&res[2], OpResult::SetData(s) if s.version == 3));
    assert_eq!(read(&zk, &m), None);
    assert_eq!(read(&other, &m), None);
    assert_eq!(read(&other, &m2), Some(vec![]));
    assert_eq!(read(&other, &e), None);

    // create_with keeps null too.
    let c = format!("{b}/create-with-null");
    let (_, st) = zk
        .create_with(&c, Data::null(), &CreateOptions::default())
        .unwrap();
    assert_eq!(st.data_length, 0);
    assert_eq!(read(&other, &c), None);

    // multi_read's GetData keeps them apart as well.
    let reads = other
        .multi_read(vec![
            ReadOp::GetData(m.clone()),
            ReadOp::GetData(m2.clone()),
        ])
        .unwrap();
    assert!(
        matches!(&reads[0], Ok(ReadResult::Data(d, _)) if d.is_null()),
        "{:?}",
        reads[0]
    );
    assert!(
        matches!(&reads[1], Ok(ReadResult::Data(d, _)) if !d.is_null() && d.is_empty()),
        "{:?}",
        reads[1]
    );
    zk.delete_recursive(&b).unwrap();
    other.close().unwrap();
    zk.close().unwrap();
}

// =============================================================================================
// 2. Pipelining in call order (async adapters)

/// 1,000 set_data calls, each followed by a get_data, made in sequence without spawning or
/// polling: the server applies them all before any future is polled, and each get sees the
/// value of the set made just before it. A future dropped unpolled still applies its write.
fn pipelined_in_call_order<R: Runner>() {
    let zk = connect_shared::<AsyncZk<R>>();
    let observer = connect_shared::<BlockingZk>();
    let p = unique::<AsyncZk<R>>("pipelined");
    zk.create(&p, "start", CreateMode::Persistent).unwrap();
    let c = zk.as_async().clone();
    let mut sets = Vec::with_capacity(N);
    let mut gets = Vec::with_capacity(N);
    for i in 0..N {
        sets.push(c.set_data(&p, i.to_string(), None));
        gets.push(c.get_data(&p));
    }
    // Nothing is polled yet, but every request was sent when it was made.
    wait_until(
        WAIT,
        "all writes applied before any future is polled",
        || {
            let v = observer.exists(&p).unwrap().expect("node").version;
            (v == N as i32).then_some(())
        },
    );
    let (set_results, get_results) = R::block_on(async move {
        let mut s = Vec::with_capacity(N);
        for f in sets {
            s.push(f.await);
        }
        let mut g = Vec::with_capacity(N);
        for f in gets {
            g.push(f.await);
        }
        (s, g)
    });
    for (i, (s, g)) in set_results.into_iter().zip(get_results).enumerate() {
        let st = s.unwrap_or_else(|e| panic!("set {i}: {e:?}"));
        assert_eq!(st.version, i as i32 + 1, "set {i}");
        let (d, st) = g.unwrap_or_else(|e| panic!("get {i}: {e:?}"));
        assert_eq!(
            d.to_str(),
            Some(i.to_string().as_str()),
            "get {i} did not see the set just before it"
        );
        assert_eq!(st.version, i as i32 + 1, "get {i}");
    }
    let (d, st) = zk.get_data(&p).unwrap();
    assert_eq!(d, (N - 1).to_string().as_str());
    assert_eq!(st.version, N as i32);

    // Dropped at once, never polled: the write is still applied.
    drop(c.set_data(&p, "dropped", None));
    let (d, st) = R::block_on(c.get_data(&p)).unwrap();
    assert_eq!(d, "dropped");
    assert_eq!(st.version, N as i32 + 1);
    assert_eq!(observer.get_data(&p).unwrap().0, "dropped");
    zk.delete(&p, None).unwrap();
    observer.close().unwrap();
    zk.close().unwrap();
}

// =============================================================================================
// 3. The blocking adapter's *_async calls

fn blocking_async_pipelining() {
    let zk = connect_shared::<BlockingZk>();
    let b = unique::<BlockingZk>("pending");
    zk.create(&b, "", CreateMode::Persistent).unwrap();
    let child = |i: usize| format!("{b}/n{i:04}");
    // All sent from this thread before the first wait.
    let creates: Vec<_> = (0..N)
        .map(|i| zk.create_async(&child(i), i.to_string(), CreateMode::Persistent))
        .collect();
    for (i, p) in creates.into_iter().enumerate() {
        assert_eq!(p.wait().unwrap(), child(i));
    }
    assert_eq!(zk.get_children(&b).unwrap().len(), N);
    assert_eq!(zk.get_all_children_number(&b).unwrap(), N as i32);

    let gets: Vec<_> = (0..N).map(|i| zk.get_async(&child(i))).collect();
    // Behind a thousand requests in flight, this one cannot be answered yet.
    let mut probe = zk.exists_async(&child(N - 1));
    assert!(
        probe.try_get().is_none(),
        "try_get: a result before the reply could have come"
    );
    let mut polls = 1;
    let r = wait_until(WAIT, "try_get gives the result", || {
        polls += 1;
        probe.try_get()
    });
    let st = r.unwrap().expect("the node exists");
    assert_eq!(st.version, 0);
    assert!(polls >= 2);
    assert!(
        probe.try_get().is_none(),
        "try_get gives the result only once"
    );
    for (i, p) in gets.into_iter().enumerate() {
        let (d, _) = p.wait_timeout(Some(WAIT)).unwrap();
        assert_eq!(d.to_str(), Some(i.to_string().as_str()), "get {i}");
    }
    // set_async and delete_async pipeline the same way, errors included.
    let sets: Vec<_> = (0..N)
        .map(|i| zk.set_async(&child(i), "s", Some(if i % 2 == 0 { 0 } else { 7 })))
        .collect();
    for (i, p) in sets.into_iter().enumerate() {
        match (i % 2, p.wait()) {
            (0, Ok(st)) => assert_eq!(st.version, 1),
            (1, Err(Error::Server(ErrorCode::BadVersion))) => {}
            (_, r) => panic!("set {i}: {r:?}"),
        }
    }
    let deletes: Vec<_> = (0..N).map(|i| zk.delete_async(&child(i), None)).collect();
    for p in deletes {
        p.wait().unwrap();
    }
    assert!(zk.get_children(&b).unwrap().is_empty());
    zk.delete(&b, None).unwrap();

    // add_auth_async: the credential is in force once it is answered, and the node a
    // digest ACL guards is this client's, not another's.
    let guarded = format!("{b}-guarded");
    zk.add_auth_async("digest", "pipeliner:pw").wait().unwrap();
    let opts = CreateOptions {
        acl: Some(vec![zk_client::make_digest_acl(
            "pipeliner",
            "pw",
            Perms::ALL,
        )]),
        ..CreateOptions::mode(CreateMode::Persistent)
    };
    zk.create_with(&guarded, "g", &opts).unwrap();
    let stranger = connect_shared::<BlockingZk>();
    assert_eq!(
        stranger.get_data(&guarded).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    assert_eq!(&zk.get_data(&guarded).unwrap().0[..], b"g");
    zk.delete(&guarded, None).unwrap();
    stranger.close().unwrap();
    zk.close().unwrap();
}

// =============================================================================================
// 4. The blocking transaction

fn blocking_transaction() {
    let zk = connect_shared::<BlockingZk>();
    let stranger = connect_shared::<BlockingZk>();
    let b = unique::<BlockingZk>("txn");
    zk.create(&b, "", CreateMode::Persistent).unwrap();
    let a = format!("{b}/a");
    let ro = format!("{b}/read-only");
    let seq = format!("{b}/s-");
    let txn = zk
        .transaction()
        .create(&a, "1", CreateMode::Persistent)
        .create_with_acl(&ro, "ro", Acl::read_unsafe(), CreateMode::Persistent)
        .check(&a, 0)
        .set_data(&a, "2", Some(0))
        .create(&seq, Data::null(), CreateMode::PersistentSequential);
    assert_eq!(txn.ops().len(), 5);
    let res = txn.commit().unwrap();
    assert_eq!(res.len(), 5, "{res:?}");
    assert!(
        matches!(&res[0], OpResult::Create { path, .. } if *path == a),
        "{res:?}"
    );
    assert!(
        matches!(&res[1], OpResult::Create { path, .. } if *path == ro),
        "{res:?}"
    );
    assert_eq!(res[2], OpResult::Check);
    assert!(
        matches!(&res[3], OpResult::SetData(s) if s.version == 1),
        "{res:?}"
    );
    assert!(
        matches!(&res[4], OpResult::Create { path, .. } if *path == format!("{seq}0000000002")),
        "{res:?}"
    );
    // Applied, as another client sees it; the per-op ACL holds.
    assert_eq!(stranger.get_data(&a).unwrap().0, "2");
    let (acl, _) = stranger.get_acl(&ro).unwrap();
    assert_eq!(acl, Acl::read_unsafe());
    assert!(acl[0].perms.contains(Perms::READ) && !acl[0].perms.contains(Perms::WRITE));
    assert_eq!(stranger.get_data(&ro).unwrap().0, "ro");
    assert!(matches!(
        stranger.set_data(&ro, "x", None),
        Err(Error::Server(ErrorCode::NoAuth))
    ));

    // A failing check (a's version is 1): nothing applied, every op has a result.
    let never = format!("{b}/never");
    let r = zk
        .transaction()
        .create(&never, "", CreateMode::Persistent)
        .check(&a, 0)
        .set_data(&a, "3", None)
        .commit();
    match r {
        Err(Error::MultiFailed {
            index,
            code,
            results,
        }) => {
            assert_eq!((index, code), (1, ErrorCode::BadVersion), "{results:?}");
            assert_eq!(results.len(), 3, "{results:?}");
            assert_eq!(results[1], OpResult::Error(ErrorCode::BadVersion));
            // The others are rolled back: reported as errors too, not as applied.
            for i in [0, 2] {
                assert!(
                    matches!(results[i], OpResult::Error(c) if c != ErrorCode::BadVersion),
                    "op {i}: {results:?}"
                );
            }
        }
        other => panic!("failing transaction: {other:?}"),
    }
    assert!(
        stranger.exists(&never).unwrap().is_none(),
        "nothing applied"
    );
    let (d, st) = stranger.get_data(&a).unwrap();
    assert_eq!((d.to_str(), st.version), (Some("2"), 1), "nothing applied");

    // The failing op is the last: its index is reported.
    let r = zk
        .transaction()
        .set_data(&a, "4", Some(1))
        .delete(&ro, None)
        .create(&a, "", CreateMode::Persistent)
        .commit_async()
        .wait();
    match r {
        Err(Error::MultiFailed {
            index,
            code,
            results,
        }) => {
            assert_eq!((index, code), (2, ErrorCode::NodeExists), "{results:?}");
            assert_eq!(results.len(), 3);
        }
        other => panic!("failing transaction: {other:?}"),
    }
    assert_eq!(stranger.get_data(&a).unwrap().1.version, 1);
    assert!(stranger.exists(&ro).unwrap().is_some());
    zk.delete_recursive(&b).unwrap();
    stranger.close().unwrap();
    zk.close().unwrap();
}

// =============================================================================================
// 5. The chroot getter

fn chroot_getter<Z: Zk>() {
    let cs = shared_server().connect_string();
    let chroot = format!("{}/some/chroot", unique::<Z>("chroot"));
    let zk = connect::<Z>(&ClientBuilder::new(&format!("{cs}{chroot}")));
    assert_eq!(zk.as_async().chroot().as_deref(), Some(chroot.as_str()));
    zk.ensure_path("/").unwrap();
    assert_eq!(zk.as_async().chroot().as_deref(), Some(chroot.as_str()));
    let plain = connect_shared::<Z>();
    assert_eq!(plain.as_async().chroot(), None);
    assert!(
        plain.exists(&chroot).unwrap().is_some(),
        "ensure_path created the chroot"
    );
    // The getter names the prefix the server really applies.
    zk.create("/inside", "c", CreateMode::Persistent).unwrap();
    assert_eq!(plain.get_data(&format!("{chroot}/inside")).unwrap().0, "c");
    plain
        .delete_recursive(chroot.rsplit_once("/some").unwrap().0)
        .unwrap();
    zk.close().unwrap();
    plain.close().unwrap();
}

fn blocking_chroot_getter() {
    chroot_getter::<BlockingZk>();
    let cs = shared_server().connect_string();
    let chroot = format!("{}/some/chroot", unique::<BlockingZk>("chroot"));
    let zk = connect::<BlockingZk>(&ClientBuilder::new(&format!("{cs}{chroot}")));
    assert_eq!(zk.chroot().as_deref(), Some(chroot.as_str()));
    assert_eq!(connect_shared::<BlockingZk>().chroot(), None);
    zk.close().unwrap();
}

// =============================================================================================
// 6. Four-letter words on the current server

/// `command` runs on the server the session is on: `ruok` answers `imok`, `cons` lists this
/// very session, and `server_version` carries the full string.
fn command_on_current_server<Z: Zk>(
    command: impl Fn(&Z, &str) -> Result<String>,
    version: impl Fn(&Z) -> Result<ServerVersion>,
) {
    let zk = connect_shared::<Z>();
    assert_eq!(command(&zk, "ruok").unwrap(), "imok");
    let sid = zk.session().unwrap().id;
    let cons = command(&zk, "cons").unwrap();
    assert!(
        cons.contains(&format!("sid=0x{sid:x}")),
        "{}: cons does not list session 0x{sid:x}:\n{cons}",
        Z::NAME
    );
    assert!(command(&zk, "srvr").unwrap().contains("Mode: standalone"));
    assert!(matches!(
        command(&zk, "bad\n"),
        Err(Error::InvalidArgument(_))
    ));
    let v = version(&zk).unwrap();
    assert!(v.full.starts_with("3."), "{v:?}");
    assert!(v.full.contains("built on"), "{v:?}");
    assert_eq!((v.major, v.minor), (3, 8), "{v:?}");
    assert!(
        v.full
            .starts_with(&format!("{}.{}.{}", v.major, v.minor, v.patch)),
        "{v:?}"
    );
    zk.close().unwrap();
}

fn command_async<R: Ext>() {
    command_on_current_server::<AsyncZk<R>>(
        |zk, cmd| R::command(zk.as_async(), cmd),
        |zk| R::version(zk.as_async()),
    );
}

fn command_blocking() {
    command_on_current_server::<BlockingZk>(|zk, cmd| zk.command(cmd), BlockingZk::server_version);
    // The async client underneath a blocking one has them too (a thread runs the word).
    let wait = Some(Duration::from_secs(10));
    command_on_current_server::<BlockingZk>(
        |zk, cmd| zk_client::blocking::block_on(zk.as_async().command(cmd), wait).unwrap(),
        |zk| zk_client::blocking::block_on(zk.as_async().server_version(), wait).unwrap(),
    );
}

// =============================================================================================
// 7. Expiry makes a new session

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
fn expiry_makes_a_new_session<Z: Zk>() {
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

// =============================================================================================
// 8. addWatch on a server older than 3.6

const FAKE_SESSION: i64 = 0x0102_0304_0506_0708;

/// A reply header alone: xid, zxid, err.
fn reply_header(xid: i32, err: i32) -> Vec<u8> {
    let mut p = xid.to_be_bytes().to_vec();
    p.extend_from_slice(&1i64.to_be_bytes());
    p.extend_from_slice(&err.to_be_bytes());
    frame(&p)
}

/// A fake 3.5 server: completes the handshake, answers pings, and answers every other
/// request (addWatch among them) with Unimplemented (-6), as a 3.5 server does to an opcode
/// it does not know. closeSession is answered and ends the connection.
struct OldServer {
    addr: String,
    connections: Arc<AtomicUsize>,
    add_watches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl OldServer {
    fn start() -> OldServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let add_watches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (conns, adds, stop2) = (connections.clone(), add_watches.clone(), stop.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let adds = adds.clone();
                thread::spawn(move || {
                    s.set_nonblocking(false).ok();
                    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    if read_frame(&mut s).is_err() {
                        return;
                    }
                    s.write_all(&connect_response(FAKE_SESSION, 10_000)).ok();
                    loop {
                        let Ok(req) = read_frame(&mut s) else { return };
                        if req.len() < 8 {
                            return;
                        }
                        let xid = i32::from_be_bytes([req[0], req[1], req[2], req[3]]);
                        let op = i32::from_be_bytes([req[4], req[5], req[6], req[7]]);
                        match op {
                            11 => {
                                s.write_all(&reply_header(-2, 0)).ok();
                            }
                            -11 => {
                                s.write_all(&reply_header(xid, 0)).ok();
                                return;
                            }
                            _ => {
                                if op == 106 {
                                    adds.fetch_add(1, Ordering::SeqCst);
                                }
                                s.write_all(&reply_header(xid, -6)).ok();
                            }
                        }
                    }
                });
            }
        });
        OldServer {
            addr,
            connections,
            add_watches,
            stop,
        }
    }
}

impl Drop for OldServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn add_watch_on_old_server_is_unsupported<Z: Zk>() {
    let srv = OldServer::start();
    let zk = connect::<Z>(&ClientBuilder::new(&srv.addr).connect_deadline(WAIT));
    assert_eq!(zk.session().unwrap().id, FAKE_SESSION);
    let mut states = zk.state_stream();
    assert_eq!(
        states.recv_timeout(Some(WAIT)),
        Some(SessionState::Connected)
    );
    for (i, mode) in [AddWatchMode::Persistent, AddWatchMode::PersistentRecursive]
        .into_iter()
        .enumerate()
    {
        let err = match zk.add_watch("/x", mode) {
            Ok(_) => panic!("{}: add_watch {mode:?} succeeded on a 3.5 server", Z::NAME),
            Err(e) => e,
        };
        match &err {
            Error::Unsupported(msg) => assert!(msg.contains("3.6"), "{}: {msg}", Z::NAME),
            e => panic!("{}: add_watch {mode:?}: {e:?}", Z::NAME),
        }
        assert_eq!(err.code(), ErrorCode::Unimplemented);
        assert!(!err.is_retryable() && !err.outcome_unknown());
        assert_eq!(srv.add_watches.load(Ordering::SeqCst), i + 1);
    }
    // The session carries on: same connection, same session, no state change.
    assert_eq!(zk.state(), SessionState::Connected);
    assert_eq!(zk.session().unwrap().id, FAKE_SESSION);
    assert_eq!(
        states.wait_next(Some(Duration::from_millis(500))),
        Err(Error::Timeout),
        "{}: the state changed",
        Z::NAME
    );
    assert_eq!(srv.connections.load(Ordering::SeqCst), 1, "reconnected");
    zk.close().unwrap();
}

// =============================================================================================
// 9. The retry helpers

fn retry_blocking() {
    let cs = shared_server().connect_string();
    let zk = connect_shared::<BlockingZk>();
    let p = unique::<BlockingZk>("retry");
    zk.create(&p, "r", CreateMode::Persistent).unwrap();
    let stat = zk.retry(Idempotence::Safe, |zk| zk.exists(&p)).unwrap();
    assert_eq!(stat.expect("the node exists").data_length, 1);

    let policy = RetryPolicy {
        max_tries: Some(3),
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    };
    let mut n = 0;
    let r: Result<()> = zk.retry_with(&policy, Idempotence::Safe, |_| {
        n += 1;
        Err(Error::ConnectionLoss)
    });
    assert_eq!(
        r,
        Err(Error::RetryFailed {
            attempts: 3,
            last: Box::new(Error::ConnectionLoss)
        })
    );
    assert_eq!(n, 3);
    // A plain write is not repeated after an unknown outcome.
    let mut n = 0;
    let r: Result<()> = zk.retry_with(&policy, Idempotence::Write, |_| {
        n += 1;
        Err(Error::ConnectionLoss)
    });
    assert_eq!((n, r), (1, Err(Error::ConnectionLoss)));

    // An Interrupt set from another thread stops an unlimited loop.
    let flag = Interrupt::new();
    let forever = RetryPolicy {
        delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::forever()
    }
    .with_interrupt(flag.clone());
    let setter = {
        let flag = flag.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            flag.interrupt();
        })
    };
    let t = Instant::now();
    let mut n = 0u32;
    let r: Result<()> = zk.retry_with(&forever, Idempotence::Safe, |_| {
        n += 1;
        if t.elapsed() > Duration::from_secs(20) {
            // Never interrupted: end the loop with an error the assert below names.
            return Err(Error::Server(ErrorCode::SystemError));
        }
        Err(Error::ConnectionLoss)
    });
    assert_eq!(r, Err(Error::Interrupted), "after {n} attempts");
    assert!(n > 5, "unlimited tries went past the default 5: {n}");
    setter.join().unwrap();

    // retry() uses the builder's command retry policy.
    let two = connect::<BlockingZk>(&ClientBuilder::new(&cs).command_retry(RetryPolicy {
        max_tries: Some(2),
        delay: Duration::from_millis(10),
        ..Default::default()
    }));
    let mut n = 0;
    let r: Result<()> = two.retry(Idempotence::Safe, |_| {
        n += 1;
        Err(Error::ConnectionLoss)
    });
    assert!(
        matches!(r, Err(Error::RetryFailed { attempts: 2, .. })),
        "{r:?}"
    );
    assert_eq!(n, 2);

    // The async client under a blocking one retries too; its sleeps between tries
    // run on the shared I/O thread's timers (no thread per sleep): three tries
    // 150 ms apart take at least 300 ms (jitter off).
    let paced = connect::<BlockingZk>(&ClientBuilder::new(&cs).command_retry(RetryPolicy {
        max_tries: Some(3),
        delay: Duration::from_millis(150),
        max_delay: Duration::from_millis(150),
        backoff: 1.0,
        max_jitter: 0.0,
        ..Default::default()
    }));
    let tries = AtomicUsize::new(0);
    let t = Instant::now();
    let r: Result<()> = zk_client::blocking::block_on(
        paced.as_async().retry(Idempotence::Safe, || {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err(Error::ConnectionLoss) }
        }),
        Some(Duration::from_secs(20)),
    )
    .expect("the async retry did not finish");
    let took = t.elapsed();
    assert!(
        matches!(r, Err(Error::RetryFailed { attempts: 3, .. })),
        "{r:?}"
    );
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert!(took >= Duration::from_millis(300), "slept {took:?} in all");
    paced.close().unwrap();
    two.close().unwrap();
    zk.delete(&p, None).unwrap();
    zk.close().unwrap();
}

fn retry_async<R: Ext>() {
    let cs = shared_server().connect_string();
    let zk = connect_shared::<AsyncZk<R>>();
    let c = zk.as_async().clone();
    let p = unique::<AsyncZk<R>>("retry");
    zk.create(&p, "r", CreateMode::Persistent).unwrap();
    let stat = R::retry(&c, Idempotence::Safe, || c.exists(&p)).unwrap();
    assert_eq!(stat.expect("the node exists").data_length, 1);

    // The builder's policy: 3 tries.
    let three = connect::<AsyncZk<R>>(&ClientBuilder::new(&cs).command_retry(RetryPolicy {
        max_tries: Some(3),
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    }));
    let mut n = 0;
    let r: Result<()> = R::retry(three.as_async(), Idempotence::Safe, || {
        n += 1;
        std::future::ready(Err(Error::ConnectionLoss))
    });
    assert_eq!(
        r,
        Err(Error::RetryFailed {
            attempts: 3,
            last: Box::new(Error::ConnectionLoss)
        })
    );
    assert_eq!(n, 3);
    three.close().unwrap();

    // Unlimited, stopped by an Interrupt from another thread.
    let flag = Interrupt::new();
    let forever = connect::<AsyncZk<R>>(
        &ClientBuilder::new(&cs).command_retry(
            RetryPolicy {
                delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                ..RetryPolicy::forever()
            }
            .with_interrupt(flag.clone()),
        ),
    );
    let setter = {
        let flag = flag.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            flag.interrupt();
        })
    };
    let t = Instant::now();
    let mut n = 0u32;
    let r: Result<()> = R::retry(forever.as_async(), Idempotence::Safe, || {
        n += 1;
        std::future::ready(if t.elapsed() > Duration::from_secs(20) {
            Err(Error::Server(ErrorCode::SystemError))
        } else {
            Err(Error::ConnectionLoss)
        })
    });
    assert_eq!(r, Err(Error::Interrupted), "after {n} attempts");
    assert!(n > 5, "unlimited tries went past the default 5: {n}");
    setter.join().unwrap();
    forever.close().unwrap();
    zk.delete(&p, None).unwrap();
    zk.close().unwrap();
}

// =============================================================================================
// Instantiation

/// The tests for every adapter, plus the adapter's own (`$extra`).
/// kazoo's connection_retry max_tries: with no server to reach, the client stops
/// after that many rounds (Unreachable, kazoo's LOST) instead of trying forever, and
/// a restart tries again.
fn connection_max_tries_gives_up<Z: Zk>() {
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
fn set_hosts_moves_with_the_session<Z: Zk>(ensemble: &zk_tests::Ensemble) {
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

macro_rules! api {
    ($m:ident, $z:ty, $other:ty, { $($extra:item)* }) => {
        mod $m {
            use super::*;
            fn name(test: &str) -> String {
                format!("{}::{test}", <$z as Zk>::NAME)
            }
            #[test]
            fn null_and_empty_data() {
                run(&name("null_and_empty_data"), super::null_and_empty_data::<$z, $other>)
            }
            #[test]
            fn set_hosts_moves_with_the_session() {
                let ensemble = zk_tests::Ensemble::start(3, zk_tests::ServerOptions::default());
                run(&name("set_hosts_moves_with_the_session"), move || super::set_hosts_moves_with_the_session::<$z>(&ensemble))
            }
            #[test]
            fn connection_max_tries_gives_up() {
                run(&name("connection_max_tries_gives_up"), super::connection_max_tries_gives_up::<$z>)
            }
            #[test]
            fn expiry_makes_a_new_session() {
                run(
                    &name("expiry_makes_a_new_session"),
                    super::expiry_makes_a_new_session::<$z>,
                )
            }
            #[test]
            fn add_watch_on_old_server_is_unsupported() {
                run(
                    &name("add_watch_on_old_server_is_unsupported"),
                    super::add_watch_on_old_server_is_unsupported::<$z>,
                )
            }
            $($extra)*
        }
    };
}

api!(tokio, TokioZk, SmolZk, {
    #[test]
    fn pipelined_in_call_order() {
        run(
            &name("pipelined_in_call_order"),
            super::pipelined_in_call_order::<Tokio>,
        )
    }
    #[test]
    fn chroot_getter() {
        run(&name("chroot_getter"), super::chroot_getter::<TokioZk>)
    }
    #[test]
    fn command_on_current_server() {
        run(
            &name("command_on_current_server"),
            super::command_async::<Tokio>,
        )
    }
    #[test]
    fn retry_method() {
        run(&name("retry_method"), super::retry_async::<Tokio>)
    }
});

api!(smol, SmolZk, BlockingZk, {
    #[test]
    fn pipelined_in_call_order() {
        run(
            &name("pipelined_in_call_order"),
            super::pipelined_in_call_order::<Smol>,
        )
    }
    #[test]
    fn chroot_getter() {
        run(&name("chroot_getter"), super::chroot_getter::<SmolZk>)
    }
    #[test]
    fn command_on_current_server() {
        run(
            &name("command_on_current_server"),
            super::command_async::<Smol>,
        )
    }
    #[test]
    fn retry_method() {
        run(&name("retry_method"), super::retry_async::<Smol>)
    }
});

api!(blocking, BlockingZk, TokioZk, {
    #[test]
    fn blocking_async_pipelining() {
        run(
            &name("blocking_async_pipelining"),
            super::blocking_async_pipelining,
        )
    }
    #[test]
    fn blocking_transaction() {
        run(&name("blocking_transaction"), super::blocking_transaction)
    }
    #[test]
    fn chroot_getter() {
        run(&name("chroot_getter"), super::blocking_chroot_getter)
    }
    #[test]
    fn command_on_current_server() {
        run(&name("command_on_current_server"), super::command_blocking)
    }
    #[test]
    fn retry_method() {
        run(&name("retry_method"), super::retry_blocking)
    }
});
