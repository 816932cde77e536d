//! SASL DIGEST-MD5 against a real ZooKeeper 3.8 server (JAAS `DigestLoginModule`), for every
//! adapter: a user authenticates on connect and is `sasl:<user>` in ACLs, an anonymous client
//! gets NoAuth on that user's node, a wrong password ends in AuthFailed (`connect()` says SaslFailed with the cause), the exchange is
//! replayed after a cut (the ACL still lets the user in), SASL over TLS works too, and in a
//! three-member ensemble with the same users on every member a session whose server stops
//! authenticates again on the next member and keeps its session and its access.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zk_client::{
    make_acl, ClientBuilder, CreateMode, CreateOptions, Error, ErrorCode, Perms, Result,
    SessionState,
};
use zk_tests::facade::{AsyncZk, BlockingZk, Runner, Smol, SmolZk, Tokio, TokioZk, Zk};
use zk_tests::proxy::Proxy;
use zk_tests::server::{ClientAuth, ServerOptions, TlsServerOptions, ZkServer};
use zk_tls::TlsOptions;

const TEST_LIMIT: Duration = Duration::from_secs(150);
const WAIT: Duration = Duration::from_secs(10);

fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    zk_tests::watchdog::run(name, TEST_LIMIT, body)
}

fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("sasl-", tag, Z::NAME)
}

trait SaslZk: Zk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self>;
}

impl SaslZk for TokioZk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self> {
        Tokio::block_on(zk_tokio::connect_tls(b, tls)).map(AsyncZk::new)
    }
}

impl SaslZk for SmolZk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self> {
        Smol::block_on(zk_smol::connect_tls(b, tls)).map(AsyncZk::new)
    }
}

impl SaslZk for BlockingZk {
    fn connect_tls(b: &ClientBuilder, tls: TlsOptions) -> Result<Self> {
        zk_blocking::connect_tls(b, tls)
    }
}

/// A CA's PEM, and a server certificate (chain) and key for 127.0.0.1 from it.
fn certs() -> &'static (String, String, String) {
    static CERTS: OnceLock<(String, String, String)> = OnceLock::new();
    CERTS.get_or_init(|| {
        let ca = zk_tests::certs::TestCa::new("sasl test CA");
        let leaf = ca.leaf(&["127.0.0.1"], "zk-sasl-server");
        (ca.pem().to_owned(), leaf.cert, leaf.key)
    })
}

/// One server with two SASL users, on a plain and a TLS port.
fn server() -> &'static ZkServer {
    static S: OnceLock<ZkServer> = OnceLock::new();
    S.get_or_init(|| {
        let (ca, cert, key) = certs();
        ZkServer::start_with(ServerOptions {
            sasl_users: vec![
                ("bob".into(), "bobsecret".into()),
                ("carol".into(), "carolsecret".into()),
            ],
            tls: Some(TlsServerOptions::new(cert, key, ca, ClientAuth::None)),
            ..ServerOptions::default()
        })
    })
}

fn as_user(user: &str, password: &str) -> ClientBuilder {
    ClientBuilder::new(&server().connect_string()).sasl_digest_md5(user, password)
}

macro_rules! sasl_tests {
    ($($name:ident),* $(,)?) => {
        mod tokio_sasl { $( #[test] fn $name() { super::run(stringify!($name), super::$name::<super::TokioZk>) } )* }
        mod smol_sasl { $( #[test] fn $name() { super::run(stringify!($name), super::$name::<super::SmolZk>) } )* }
        mod blocking_sasl { $( #[test] fn $name() { super::run(stringify!($name), super::$name::<super::BlockingZk>) } )* }
    };
}

sasl_tests!(
    user_is_known_by_its_sasl_id,
    wrong_password_is_auth_failed,
    replayed_after_a_cut,
    sasl_over_tls,
    failover_in_a_sasl_ensemble,
);

fn user_is_known_by_its_sasl_id<Z: SaslZk>() {
    let bob = Z::connect(&as_user("bob", "bobsecret")).unwrap();
    assert_eq!(bob.state(), SessionState::Connected);
    let ids = bob.whoami().unwrap();
    assert!(
        ids.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "bob"),
        "{ids:?}"
    );
    let path = unique::<Z>("acl");
    bob.create_with(
        &path,
        "bob's",
        &CreateOptions {
            acl: Some(vec![make_acl("sasl", "bob", Perms::ALL)]),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    assert_eq!(&bob.get_data(&path).unwrap().0[..], b"bob's");
    // Anonymous, and another SASL user: NoAuth.
    let anon = Z::connect(&ClientBuilder::new(&server().connect_string())).unwrap();
    assert_eq!(
        anon.get_data(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    let carol = Z::connect(&as_user("carol", "carolsecret")).unwrap();
    assert_eq!(
        carol.get_data(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    bob.delete(&path, None).unwrap();
    for c in [bob, anon, carol] {
        c.close().unwrap();
    }
}

fn wrong_password_is_auth_failed<Z: SaslZk>() {
    let t = Instant::now();
    let r = Z::connect(&as_user("bob", "not-bobs-password").connect_deadline(WAIT));
    match r {
        Err(Error::SaslFailed(why)) => {
            // The host it was refused by, the mechanism and the reason.
            assert!(why.contains("127.0.0.1:"), "{}: {why}", Z::NAME);
            assert!(why.contains("DIGEST-MD5"), "{}: {why}", Z::NAME);
            eprintln!("{}: {why}", Z::NAME);
        }
        Err(e) => panic!("{}: expected SaslFailed, got {e:?}", Z::NAME),
        Ok(_) => panic!("{}: a wrong password connected", Z::NAME),
    }
    assert!(
        t.elapsed() < WAIT,
        "AuthFailed at once, not at the deadline"
    );
    // An unknown user too.
    assert!(matches!(
        Z::connect(&as_user("mallory", "x").connect_deadline(WAIT)),
        Err(Error::SaslFailed(_))
    ));
}

fn replayed_after_a_cut<Z: SaslZk>() {
    let proxy = Proxy::start(server().addr());
    let bob = Z::connect(
        &ClientBuilder::new(&proxy.connect_string())
            .sasl_digest_md5("bob", "bobsecret")
            .session_timeout(Duration::from_secs(20)),
    )
    .unwrap();
    let id = bob.session().unwrap().id;
    let path = unique::<Z>("cut");
    bob.create_with(
        &path,
        "x",
        &CreateOptions {
            mode: CreateMode::Persistent,
            acl: Some(vec![make_acl("sasl", "bob", Perms::ALL)]),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    let mut states = bob.state_stream();
    proxy.cut_all();
    zk_tests::wait_reconnected(&mut states, WAIT, Z::NAME);
    assert_eq!(bob.session().unwrap().id, id);
    // The new connection authenticated again: the node is still bob's to read.
    assert_eq!(&bob.get_data(&path).unwrap().0[..], b"x");
    assert!(bob
        .whoami()
        .unwrap()
        .iter()
        .any(|i| i.auth_scheme == "sasl" && i.user == "bob"));
    bob.delete(&path, None).unwrap();
    bob.close().unwrap();
}

fn sasl_over_tls<Z: SaslZk>() {
    let bob = Z::connect_tls(
        &ClientBuilder::new(&server().secure_connect_string()).sasl_digest_md5("bob", "bobsecret"),
        TlsOptions::new().ca_pem(&certs().0),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", Z::NAME));
    assert!(bob
        .whoami()
        .unwrap()
        .iter()
        .any(|i| i.auth_scheme == "sasl" && i.user == "bob"));
    bob.close().unwrap();
}

/// A three-member ensemble with the two users on every member, shared by the adapters'
/// runs of [`failover_in_a_sasl_ensemble`]; the guard serializes them (each stops a member).
fn sasl_ensemble() -> std::sync::MutexGuard<'static, zk_tests::Ensemble> {
    static E: OnceLock<std::sync::Mutex<zk_tests::Ensemble>> = OnceLock::new();
    E.get_or_init(|| {
        std::sync::Mutex::new(zk_tests::Ensemble::start(
            3,
            ServerOptions {
                sasl_users: vec![
                    ("bob".into(), "bobsecret".into()),
                    ("carol".into(), "carolsecret".into()),
                ],
                ..ServerOptions::default()
            },
        ))
    })
    .lock()
    .unwrap_or_else(|p| p.into_inner())
}

fn failover_in_a_sasl_ensemble<Z: SaslZk>() {
    let mut ens = sasl_ensemble();
    let bob = Z::connect(
        &ClientBuilder::new(&ens.connect_string())
            .sasl_digest_md5("bob", "bobsecret")
            .session_timeout(Duration::from_secs(20))
            .connect_deadline(WAIT),
    )
    .unwrap();
    let session = bob.session().unwrap().id;
    let path = unique::<Z>("ensemble");
    bob.create_with(
        &path,
        "bob's",
        &CreateOptions {
            mode: CreateMode::Persistent,
            acl: Some(vec![make_acl("sasl", "bob", Perms::ALL)]),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    let on = bob.current_host().expect("connected to a member");
    let member = (0..ens.len())
        .find(|&i| ens.client_addr(i).port() == on.port)
        .unwrap_or_else(|| panic!("{}: {on} is not a member", Z::NAME));
    let mut states = bob.state_stream();
    ens.stop(member);
    zk_tests::wait_reconnected(&mut states, Duration::from_secs(30), Z::NAME);
    assert_ne!(bob.current_host().unwrap().port, on.port);
    assert_eq!(
        bob.session().unwrap().id,
        session,
        "{}: a new session",
        Z::NAME
    );
    assert!(bob
        .whoami()
        .unwrap()
        .iter()
        .any(|i| i.auth_scheme == "sasl" && i.user == "bob"));
    assert_eq!(&bob.get_data(&path).unwrap().0[..], b"bob's");
    // Carol, on a member still running, is not let in.
    let other = (0..ens.len()).find(|&i| i != member).unwrap();
    let carol = Z::connect(
        &ClientBuilder::new(&ens.client_addr(other).to_string())
            .sasl_digest_md5("carol", "carolsecret")
            .connect_deadline(WAIT),
    )
    .unwrap();
    assert_eq!(
        carol.get_data(&path).err(),
        Some(Error::Server(ErrorCode::NoAuth))
    );
    carol.close().unwrap();
    bob.delete(&path, None).unwrap();
    bob.close().unwrap();
    ens.start_member(member);
}
