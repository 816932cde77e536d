//! TLS against real ZooKeeper 3.8 servers (the secure client port, Netty), for every adapter:
//! connect, read, write, a watch, a reconnect after a cut, four-letter words over TLS, mutual
//! TLS with the x509 ACL scheme, and each failure case (a TLS client on the plain port, a
//! plain client on the TLS port, an expired certificate, a wrong host name, an unknown CA, a
//! server that never answers the handshake, a client certificate missing where one is needed),
//! each failing within the connect deadline with an error naming the cause while a second,
//! good host is still reached. Plus the digest ACL helpers against ids the server accepts, and
//! no secret in Debug output or logs.
//!
//! Certificates are made here with rcgen (`zk_testkit::certs`) (a CA; a server certificate for IP 127.0.0.1 and DNS
//! localhost; a client certificate; an expired one; one for another name; one from another CA)
//! and packed for the server with the `openssl` command (the test kit panics loudly, never
//! skips, when it is missing).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{
    make_digest_acl, make_digest_acl_credential, ClientBuilder, CreateMode, CreateOptions, Error,
    ErrorCode, EventType, Perms, Result, SessionState,
};
use zk_tests::certs::{CertPair, TestCa};
use zk_tests::facade::{AsyncZk, BlockingZk, Runner, Smol, SmolZk, Tokio, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::{ClientAuth, ServerOptions, TlsServerOptions, ZkServer};
use zk_tls::{TlsHosts, TlsOptions};

// =============================================================================================
// Harness

const TEST_LIMIT: Duration = Duration::from_secs(150);
const WAIT: Duration = Duration::from_secs(10);
/// Per-attempt connect timeout of the failure cases.
const ATTEMPT: Duration = Duration::from_millis(1500);
/// `connect()`'s deadline in the failure cases.
const DEADLINE: Duration = Duration::from_secs(5);

fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    zk_tests::watchdog::run(name, TEST_LIMIT, body)
}

fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("tls-", tag, Z::NAME)
}

fn wait_until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// What the TLS suite needs of an adapter beyond the facade.
trait TlsZk: Zk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self>;
    fn connect_per_host(b: &ClientBuilder, hosts: TlsHosts) -> Result<Self>;
    fn command(&self, cmd: &str) -> Result<String>;
    fn last_connect_error(&self) -> Option<String>;
}

impl TlsZk for TokioZk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self> {
        Tokio::block_on(zk_tokio::connect_tls(b, tls)).map(AsyncZk::new)
    }
    fn connect_per_host(b: &ClientBuilder, hosts: TlsHosts) -> Result<Self> {
        let c = zk_tokio::tls::TlsConnector::per_host(hosts);
        Tokio::block_on(zk_tokio::connect_with(b, c.into())).map(AsyncZk::new)
    }
    fn command(&self, cmd: &str) -> Result<String> {
        Tokio::block_on(zk_tokio::ClientExt::command(&self.client, cmd))
    }
    fn last_connect_error(&self) -> Option<String> {
        self.client.last_connect_error()
    }
}

impl TlsZk for SmolZk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self> {
        Smol::block_on(zk_smol::connect_tls(b, tls)).map(AsyncZk::new)
    }
    fn connect_per_host(b: &ClientBuilder, hosts: TlsHosts) -> Result<Self> {
        let c = zk_smol::tls::TlsConnector::per_host(hosts);
        Smol::block_on(zk_smol::connect_with(
            b,
            c.into(),
            std::sync::Arc::new(zk_client::SystemClock),
        ))
        .map(AsyncZk::new)
    }
    fn command(&self, cmd: &str) -> Result<String> {
        Smol::block_on(zk_smol::ClientExt::command(&self.client, cmd))
    }
    fn last_connect_error(&self) -> Option<String> {
        self.client.last_connect_error()
    }
}

impl TlsZk for BlockingZk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self> {
        zk_blocking::connect_tls(b, tls)
    }
    fn connect_per_host(b: &ClientBuilder, hosts: TlsHosts) -> Result<Self> {
        let c = zk_blocking::tls::TlsConnector::per_host(hosts);
        zk_blocking::connect_with(b, c.into(), std::sync::Arc::new(zk_client::SystemClock))
    }
    fn command(&self, cmd: &str) -> Result<String> {
        zk_blocking::Client::command(self, cmd)
    }
    fn last_connect_error(&self) -> Option<String> {
        zk_blocking::Client::last_connect_error(self)
    }
}

// =============================================================================================
// Certificates and servers

type Pair = CertPair;

struct Pki {
    ca: String,
    server: Pair,
    client: Pair,
    expired: Pair,
    wrong_name: Pair,
    other_ca: Pair,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = TestCa::new("zk-tests CA");
        let other = TestCa::new("some other CA");
        let here = ["127.0.0.1", "localhost"];
        Pki {
            server: ca.leaf(&here, "zk-server"),
            client: ca.leaf(&here, "zk-client"),
            expired: ca.expired_leaf(&here, "zk-expired"),
            wrong_name: ca.leaf(&["zk.example.invalid"], "zk-wrong"),
            other_ca: other.leaf(&here, "zk-other"),
            ca: ca.pem().to_owned(),
        }
    })
}

fn tls_server(pair: &Pair, auth: ClientAuth) -> ZkServer {
    ZkServer::start_with(ServerOptions {
        tls: Some(TlsServerOptions::new(
            &pair.cert,
            &pair.key,
            &pki().ca,
            auth,
        )),
        ..ServerOptions::default()
    })
}

macro_rules! server {
    ($name:ident, $pair:ident, $auth:expr) => {
        fn $name() -> &'static ZkServer {
            static S: OnceLock<ZkServer> = OnceLock::new();
            S.get_or_init(|| tls_server(&pki().$pair, $auth))
        }
    };
}

server!(good, server, ClientAuth::Want);
server!(mutual, server, ClientAuth::Need);
server!(expired, expired, ClientAuth::Want);
server!(wrong_name, wrong_name, ClientAuth::Want);
server!(other_ca, other_ca, ClientAuth::Want);

fn trust_ca() -> TlsOptions {
    TlsOptions::new().ca_pem(&pki().ca)
}

fn with_client_cert() -> TlsOptions {
    trust_ca().client_cert_pem(&pki().client.cert, &pki().client.key)
}

fn tls_connect<Z: TlsZk>(hosts: &str, tls: TlsOptions) -> Z {
    Z::connect_tls(&ClientBuilder::new(hosts), tls)
        .unwrap_or_else(|e| panic!("{}: TLS connect to {hosts}: {e}", Z::NAME))
}

// =============================================================================================
// The tests, once per adapter

macro_rules! tls_tests {
    ($($name:ident),* $(,)?) => {
        mod tokio_tls { $( #[test] fn $name() { super::run(stringify!($name), super::$name::<super::TokioZk>) } )* }
        mod smol_tls { $( #[test] fn $name() { super::run(stringify!($name), super::$name::<super::SmolZk>) } )* }
        mod blocking_tls { $( #[test] fn $name() { super::run(stringify!($name), super::$name::<super::BlockingZk>) } )* }
    };
}

tls_tests!(
    read_write_watch_over_tls,
    four_letter_words_over_tls,
    reconnect_after_a_cut,
    tls_client_on_the_plain_port,
    plain_client_on_the_tls_port,
    expired_certificate,
    wrong_host_name,
    unknown_ca,
    handshake_never_answered,
    bad_host_first_then_a_good_one,
    per_host_settings,
    mutual_tls_and_the_x509_scheme,
    digest_acl_helpers_against_the_server,
);

fn read_write_watch_over_tls<Z: TlsZk>() {
    let zk: Z = tls_connect(&good().secure_connect_string(), trust_ca());
    assert_eq!(
        zk.current_host().unwrap().port,
        good().secure_port().unwrap()
    );
    let path = unique::<Z>("rw");
    zk.create(&path, "hello", CreateMode::Persistent).unwrap();
    let (data, stat, watch) = zk.get_data_watch(&path).unwrap();
    assert_eq!(&data[..], &b"hello"[..]);
    // A second client, plain, changes it: the TLS client's watch fires.
    let plain = Z::connect(&ClientBuilder::new(&good().connect_string())).unwrap();
    plain.set_data(&path, "bye", Some(stat.version)).unwrap();
    let ev = watch.wait_timeout(Some(WAIT)).unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    assert_eq!(&zk.get_data(&path).unwrap().0[..], &b"bye"[..]);
    // A larger write and read (several TLS records).
    let big = vec![7u8; 200_000];
    zk.set_data(&path, big.clone(), None).unwrap();
    assert_eq!(&zk.get_data(&path).unwrap().0[..], &big[..]);
    zk.delete(&path, None).unwrap();
    assert!(zk.exists(&path).unwrap().is_none());
    // Checking the name against "localhost" instead of the dialled IP also passes.
    let by_name: Z = tls_connect(
        &good().secure_connect_string(),
        trust_ca().server_name("localhost"),
    );
    assert!(by_name.exists("/").unwrap().is_some());
    by_name.close().unwrap();
    zk.close().unwrap();
    plain.close().unwrap();
}

fn four_letter_words_over_tls<Z: TlsZk>() {
    let zk: Z = tls_connect(&good().secure_connect_string(), trust_ca());
    // ZooKeeper answers four-letter words on its secure port too, after the handshake.
    assert_eq!(zk.command("ruok").unwrap(), "imok");
    let srvr = zk.command("srvr").unwrap();
    assert!(srvr.contains("Mode:"), "{srvr}");
    let v = zk.server_version().unwrap();
    assert_eq!((v.major, v.minor), (3, 8), "{v:?}");
    // The plain four-letter word on the TLS port gets nothing (the server waits for a
    // ClientHello), within its timeout.
    let t = Instant::now();
    let host = zk.current_host().unwrap();
    assert!(Z::four_letter(&host, "ruok").is_err());
    assert!(t.elapsed() < Duration::from_secs(8));
    zk.close().unwrap();
}

fn reconnect_after_a_cut<Z: TlsZk>() {
    let proxy = Proxy::start(good().secure_addr());
    let zk: Z = Z::connect_tls(
        &ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(20)),
        trust_ca(),
    )
    .unwrap();
    let id = zk.session().unwrap().id;
    let path = unique::<Z>("cut");
    zk.create(&path, "a", CreateMode::Persistent).unwrap();
    let (_, _, watch) = zk.get_data_watch(&path).unwrap();
    let mut states = zk.state_stream();
    proxy.cut_all();
    let mut seen = Vec::new();
    wait_until(WAIT, "Suspended then Connected after the cut", || {
        while let Some(s) = states.recv_timeout(Some(Duration::from_millis(10))) {
            seen.push(s);
        }
        let i = seen.iter().position(|s| *s == SessionState::Suspended)?;
        seen[i..].contains(&SessionState::Connected).then_some(())
    });
    assert_eq!(zk.session().unwrap().id, id, "the session survives the cut");
    // The watch was restored over the new TLS connection.
    let other = Z::connect(&ClientBuilder::new(&good().connect_string())).unwrap();
    other.set_data(&path, "b", None).unwrap();
    assert_eq!(
        watch.wait_timeout(Some(WAIT)).unwrap().event_type,
        EventType::NodeDataChanged
    );
    assert_eq!(&zk.get_data(&path).unwrap().0[..], &b"b"[..]);
    zk.delete(&path, None).unwrap();
    zk.close().unwrap();
    other.close().unwrap();
}

/// A connect that must fail: returns the error's text, having checked it is a
/// `ConnectFailed` that came within the deadline.
fn failing_connect<Z: TlsZk>(hosts: &str, tls: Option<TlsOptions>) -> String {
    let b = ClientBuilder::new(hosts)
        .connect_timeout(ATTEMPT)
        .connect_deadline(DEADLINE);
    let t = Instant::now();
    let r = match tls {
        Some(tls) => Z::connect_tls(&b, tls),
        None => Z::connect(&b),
    };
    let took = t.elapsed();
    let e = match r {
        Ok(_) => panic!("{}: connect to {hosts} succeeded; it must not", Z::NAME),
        Err(e) => e,
    };
    assert!(
        took < DEADLINE + Duration::from_secs(3),
        "{}: the failed connect took {took:?}",
        Z::NAME
    );
    let Error::ConnectFailed(cause) = &e else {
        panic!("{}: expected ConnectFailed, got {e:?}", Z::NAME);
    };
    assert!(
        cause.contains(hosts.split(',').next().unwrap()),
        "the cause names the host: {cause}"
    );
    assert!(e.is_retryable());
    println!("{}: {hosts}: {e}", Z::NAME);
    e.to_string()
}

fn assert_names(e: &str, any_of: &[&str]) {
    assert!(
        any_of.iter().any(|w| e.contains(w)),
        "the error should say one of {any_of:?}: {e}"
    );
}

fn tls_client_on_the_plain_port<Z: TlsZk>() {
    let e = failing_connect::<Z>(&good().connect_string(), Some(trust_ca()));
    assert_names(&e, &["plain, non-TLS port", "does not speak TLS"]);
}

fn plain_client_on_the_tls_port<Z: TlsZk>() {
    let e = failing_connect::<Z>(&good().secure_connect_string(), None);
    assert_names(&e, &["a plain client on a TLS port"]);
}

fn expired_certificate<Z: TlsZk>() {
    let e = failing_connect::<Z>(&expired().secure_connect_string(), Some(trust_ca()));
    assert_names(&e, &["has expired"]);
}

fn wrong_host_name<Z: TlsZk>() {
    let e = failing_connect::<Z>(&wrong_name().secure_connect_string(), Some(trust_ca()));
    assert_names(&e, &["wrong host name"]);
    // Told not to check the name (kazoo's check_hostname=False), the same server passes.
    let zk: Z = tls_connect(
        &wrong_name().secure_connect_string(),
        trust_ca().skip_hostname_verification(),
    );
    assert!(zk.exists("/").unwrap().is_some());
    zk.close().unwrap();
    // And with the name it does have.
    let zk: Z = tls_connect(
        &wrong_name().secure_connect_string(),
        trust_ca().server_name("zk.example.invalid"),
    );
    zk.close().unwrap();
}

fn unknown_ca<Z: TlsZk>() {
    let e = failing_connect::<Z>(&other_ca().secure_connect_string(), Some(trust_ca()));
    assert_names(&e, &["not signed by a trusted CA"]);
    // The test-only opt-out connects to anything.
    let zk: Z = tls_connect(
        &other_ca().secure_connect_string(),
        TlsOptions::new().danger_accept_invalid_certs_for_tests(),
    );
    assert!(zk.exists("/").unwrap().is_some());
    zk.close().unwrap();
}

fn handshake_never_answered<Z: TlsZk>() {
    // Connected at TCP level, nothing forwarded: the attempt's timeout must end it.
    let proxy = Proxy::start(good().secure_addr());
    proxy.black_hole(true);
    let e = failing_connect::<Z>(&proxy.connect_string(), Some(trust_ca()));
    assert_names(&e, &["timeout", "timed out"]);
}

fn bad_host_first_then_a_good_one<Z: TlsZk>() {
    let hosts = format!(
        "{},{}",
        expired().secure_connect_string(),
        good().secure_connect_string()
    );
    let t = Instant::now();
    let zk = Z::connect_tls(
        &ClientBuilder::new(&hosts)
            .randomize_hosts(false)
            .connect_timeout(ATTEMPT),
        trust_ca(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", Z::NAME));
    assert!(t.elapsed() < DEADLINE, "took {:?}", t.elapsed());
    assert_eq!(
        zk.current_host().unwrap().port,
        good().secure_port().unwrap()
    );
    let last = zk
        .last_connect_error()
        .expect("the first host's failure is kept");
    assert!(last.contains(&expired().secure_connect_string()), "{last}");
    assert!(last.contains("expired"), "{last}");
    zk.close().unwrap();
}

/// `tcp://` and `tls://` in the connect string: one session over a plain port,
/// then moved (`set_hosts`) to the same server's TLS port; and options per host
/// overriding the default, for better (the right name) and for worse.
fn per_host_settings<Z: TlsZk>() {
    let plain = good().connect_string();
    let secure = good().secure_connect_string();
    let (hosts, table) =
        TlsHosts::parse(&format!("tcp://{plain},tls://{secure}"), &trust_ca(), false).unwrap();
    assert_eq!(hosts, format!("{plain},{secure}"));
    let zk = Z::connect_per_host(&ClientBuilder::new(&plain), table)
        .unwrap_or_else(|e| panic!("{}: {e}", Z::NAME));
    let path = unique::<Z>("per-host");
    zk.create(&path, b"x", CreateMode::Ephemeral).unwrap();
    let id = zk.session().unwrap().id;
    zk.set_hosts(&secure).unwrap();
    wait_until(WAIT, "the move to the TLS port", || {
        (zk.current_host().map(|h| h.port) == good().secure_port() && zk.state().is_connected())
            .then_some(())
    });
    assert_eq!(zk.session().unwrap().id, id, "the session moved with it");
    assert_eq!(&zk.get_data(&path).unwrap().0[..], b"x");
    zk.close().unwrap();

    // The default checks a name the certificate lacks; the entry for this host fixes it.
    let bad_default = trust_ca().server_name("zk.example.invalid");
    let table = TlsHosts::new(&bad_default)
        .unwrap()
        .host(&secure, &trust_ca())
        .unwrap();
    let zk = Z::connect_per_host(&ClientBuilder::new(&secure), table)
        .unwrap_or_else(|e| panic!("{}: {e}", Z::NAME));
    assert!(zk.exists("/").unwrap().is_some());
    zk.close().unwrap();

    // And the reverse: an entry's own options apply to its host, and fail it.
    let table = TlsHosts::new(&trust_ca())
        .unwrap()
        .host(&secure, &bad_default)
        .unwrap();
    let b = ClientBuilder::new(&secure)
        .connect_timeout(ATTEMPT)
        .connect_deadline(DEADLINE);
    match Z::connect_per_host(&b, table) {
        Err(Error::ConnectFailed(cause)) => assert_names(&cause, &["wrong host name"]),
        Err(e) => panic!("{}: expected ConnectFailed, got {e:?}", Z::NAME),
        Ok(_) => panic!("{}: connected with the wrong name", Z::NAME),
    }
}

fn mutual_tls_and_the_x509_scheme<Z: TlsZk>() {
    // Without a client certificate the server refuses the handshake.
    let e = failing_connect::<Z>(&mutual().secure_connect_string(), Some(trust_ca()));
    assert_names(&e, &["alert", "closed the connection"]);
    // With one it lets us in, and knows us by the certificate's subject (the x509 scheme).
    let zk: Z = tls_connect(&mutual().secure_connect_string(), with_client_cert());
    let ids = zk.whoami().unwrap();
    let me = ids
        .iter()
        .find(|i| i.auth_scheme == "x509")
        .unwrap_or_else(|| panic!("no x509 identity in {ids:?}"))
        .user
        .clone();
    assert!(me.contains("CN=zk-client"), "{me}");
    let path = unique::<Z>("x509");
    let acl = vec![zk_client::make_acl("x509", &me, Perms::ALL)];
    zk.create_with(
        &path,
        "mine",
        &CreateOptions {
            acl: Some(acl.clone()),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    assert_eq!(&zk.get_data(&path).unwrap().0[..], &b"mine"[..]);
    assert_eq!(zk.get_acl(&path).unwrap().0, acl);
    // The same server's plain port has no certificate, so no x509 id: NoAuth.
    let plain = Z::connect(&ClientBuilder::new(&mutual().connect_string())).unwrap();
    assert_eq!(
        plain.get_data(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    zk.delete(&path, None).unwrap();
    zk.close().unwrap();
    plain.close().unwrap();
}

fn digest_acl_helpers_against_the_server<Z: TlsZk>() {
    let server = zk_tests::shared_server();
    let owner = Z::connect(&ClientBuilder::new(&server.connect_string())).unwrap();
    let path = unique::<Z>("digest");
    // ADMIN too: without it getACL shows a digest id's hash as "x" (ZooKeeper 3.6+).
    let acl = vec![make_digest_acl("alice", "alice-pw", Perms::ALL)];
    assert_eq!(
        acl[0].id.id,
        format!("alice:{}", {
            let c = make_digest_acl_credential("alice", "alice-pw");
            c.split_once(':').unwrap().1.to_string()
        })
    );
    // A client with no credential may create a node whose ACL names only alice.
    owner
        .create_with(
            &path,
            "secret data",
            &CreateOptions {
                acl: Some(acl.clone()),
                ..CreateOptions::default()
            },
        )
        .unwrap();
    // getACL needs READ (ZooKeeper 3.5+): NoAuth for the anonymous owner too.
    assert_eq!(
        owner.get_acl(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    assert_eq!(
        owner.get_data(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    // Alice, by add_auth: reads and writes.
    let alice = Z::connect(&ClientBuilder::new(&server.connect_string())).unwrap();
    alice.add_auth("digest", "alice:alice-pw").unwrap();
    assert_eq!(&alice.get_data(&path).unwrap().0[..], &b"secret data"[..]);
    // The server stored exactly the id the helper made.
    assert_eq!(alice.get_acl(&path).unwrap().0, acl);
    alice.set_data(&path, "changed", None).unwrap();
    // Alice from the builder (sent at every connect).
    let alice2 =
        Z::connect(&ClientBuilder::new(&server.connect_string()).auth("digest", "alice:alice-pw"))
            .unwrap();
    assert_eq!(&alice2.get_data(&path).unwrap().0[..], &b"changed"[..]);
    // A wrong password is NoAuth too.
    let mallory =
        Z::connect(&ClientBuilder::new(&server.connect_string()).auth("digest", "alice:wrong"))
            .unwrap();
    assert_eq!(
        mallory.get_data(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    alice.delete(&path, None).unwrap();
    for c in [owner, alice, alice2, mallory] {
        c.close().unwrap();
    }
}

// =============================================================================================
// Secrets

/// Every field of every event, as text.
struct Capture(Mutex<String>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        span.record(&mut Fields(&mut s));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        values.record(&mut Fields(&mut s));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = write!(s, "\n{}", event.metadata().target());
        event.record(&mut Fields(&mut s));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(String::new()))));
        struct Fwd(&'static Capture);
        impl tracing::Subscriber for Fwd {
            fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
                self.0.enabled(m)
            }
            fn new_span(&self, s: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                self.0.new_span(s)
            }
            fn record(&self, i: &tracing::span::Id, v: &tracing::span::Record<'_>) {
                self.0.record(i, v)
            }
            fn record_follows_from(&self, a: &tracing::span::Id, b: &tracing::span::Id) {
                self.0.record_follows_from(a, b)
            }
            fn event(&self, e: &tracing::Event<'_>) {
                self.0.event(e)
            }
            fn enter(&self, i: &tracing::span::Id) {
                self.0.enter(i)
            }
            fn exit(&self, i: &tracing::span::Id) {
                self.0.exit(i)
            }
        }
        tracing::subscriber::set_global_default(Fwd(c)).expect("the only global subscriber");
        c
    })
}

/// A known secret in every place one can go (credentials, a TLS key, a resumed session's
/// password): absent from Debug and Display output and from every log field.
#[test]
fn no_secret_in_debug_output_or_logs() {
    run("no_secret_in_debug_output_or_logs", || {
        let logs = capture();
        const SECRET: &str = "Sup3r-s3cret-Pa55";
        let mut texts: BTreeMap<&str, String> = BTreeMap::new();
        // A TLS key with the secret in it (the option's Debug must not print key bytes).
        let key = format!("{}\n# {SECRET}\n", pki().client.key.trim_end());
        let opts = trust_ca().client_cert_pem(&pki().client.cert, key.clone());
        texts.insert("TlsOptions", format!("{opts:?}"));
        texts.insert(
            "TlsConnector",
            format!("{:?}", zk_tokio::tls::TlsConnector::new(&opts).unwrap()),
        );
        // Credentials on the builder, used against a real server.
        let b = ClientBuilder::new(&good().secure_connect_string())
            .auth("digest", format!("bob:{SECRET}"));
        texts.insert("ClientBuilder", format!("{b:?}"));
        let with_sasl = b.clone().sasl_digest_md5("bob", SECRET);
        texts.insert("ClientBuilder(sasl)", format!("{with_sasl:?}"));
        texts.insert("Config(sasl)", format!("{:?}", with_sasl.config().unwrap()));
        texts.insert("Config", format!("{:?}", b.config().unwrap()));
        let zk = zk_blocking::connect_tls(&b, opts.clone()).unwrap();
        zk.add_auth("digest", format!("carol:{SECRET}")).unwrap();
        let info = zk.session().unwrap();
        let password = info.password.clone();
        texts.insert("SessionInfo", format!("{info:?}"));
        texts.insert("Client", format!("{zk:?}"));
        // Resuming that session: its password goes through the builder.
        let resumed =
            ClientBuilder::new(&good().secure_connect_string()).resume(info.id, password.clone());
        texts.insert("ClientBuilder(resume)", format!("{resumed:?}"));
        let z2 = zk_blocking::connect_tls(&resumed, opts.clone()).unwrap();
        texts.insert(
            "SessionInfo(resumed)",
            format!("{:?}", z2.session().unwrap()),
        );
        // A failed connect's error.
        let e = zk_tokio_connect_fail(&opts);
        texts.insert("ConnectFailed", format!("{e} / {e:?}"));
        z2.close().unwrap();
        zk.close().unwrap();
        let logs = logs.0.lock().unwrap().clone();
        // The capture did see the client's events, the failed attempt's cause among them.
        assert!(logs.contains("connection attempt failed"), "{logs}");
        assert!(logs.contains("session state"), "{logs}");
        texts.insert("logs", logs);
        // The session password as Debug would print it (bytes) and as text.
        let pw_bytes = format!("{:?}", &password[..]);
        let pw_inner = &pw_bytes[1..pw_bytes.len() - 1];
        for (what, text) in &texts {
            assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
            assert!(
                !text.contains(pw_inner),
                "{what} shows the session password: {text}"
            );
            assert!(
                !text.contains("PRIVATE KEY"),
                "{what} shows the private key: {text}"
            );
        }
        assert!(
            texts["TlsOptions"].contains("redacted"),
            "{}",
            texts["TlsOptions"]
        );
        assert!(
            texts["SessionInfo"].contains("redacted"),
            "{}",
            texts["SessionInfo"]
        );
        assert!(
            texts["ClientBuilder"].contains("redacted"),
            "{}",
            texts["ClientBuilder"]
        );
    });
}

fn zk_tokio_connect_fail(opts: &TlsOptions) -> Error {
    let b = ClientBuilder::new(&good().connect_string())
        .connect_timeout(ATTEMPT)
        .connect_deadline(Duration::from_secs(3));
    match Tokio::block_on(zk_tokio::connect_tls(&b, opts.clone())) {
        Ok(_) => panic!("a TLS connect to the plain port succeeded"),
        Err(e) => e,
    }
}

/// The system's roots load (ca-certificates comes with the JVM the servers need), and do not
/// vouch for a private CA's server: the connect fails naming the unknown issuer.
#[test]
fn system_roots_are_opt_in_and_do_not_trust_a_private_ca() {
    run("system_roots", || {
        let e = failing_connect::<BlockingZk>(
            &good().secure_connect_string(),
            Some(TlsOptions::new().system_roots()),
        );
        assert_names(&e, &["not signed by a trusted CA"]);
        // Together with the private CA it connects.
        let zk: BlockingZk = tls_connect(
            &good().secure_connect_string(),
            TlsOptions::new().system_roots().ca_pem(&pki().ca),
        );
        zk.close().unwrap();
    });
}

/// Bad TLS options fail before any connection, naming the cause.
#[test]
fn bad_options_name_their_cause() {
    let b = ClientBuilder::new("127.0.0.1:1");
    let e = Tokio::block_on(zk_tokio::connect_tls(&b, TlsOptions::new())).unwrap_err();
    assert!(e.to_string().contains("no root certificate"), "{e}");
    let e =
        zk_blocking::connect_tls(&b, TlsOptions::new().ca_file("/nonexistent/ca.pem")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    let e = Smol::block_on(zk_smol::connect_tls(
        &b,
        trust_ca().client_cert_pem(&pki().client.cert, "no key here"),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("no private key"), "{e}");
}
