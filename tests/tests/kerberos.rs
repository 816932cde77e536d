//! SASL GSSAPI (Kerberos) against a real MIT KDC (Debian's `krb5-kdc`, started here on a free
//! loopback port with a realm of its own) and a real ZooKeeper 3.8 server whose JAAS `Server`
//! section logs in with Java's `Krb5LoginModule` from a keytab, for every adapter:
//!
//! * a user authenticates on connect, `whoami` shows its `sasl` id, a node with ACL
//!   `sasl:<id>` is the user's to read, and an anonymous client and another user get NoAuth;
//! * the Java client's naming options work: `zookeeper/<host>` by default (host-based, as the
//!   library canonicalizes it), without canonicalization, a whole server principal, a service
//!   name, a fixed server host name;
//! * credentials from a ticket cache (`kinit`) work as well as from the client keytab;
//! * a cut connection reconnects and runs the exchange again (the ACL still lets the user in);
//! * in a three-member ensemble with Kerberos on every member, a session whose server stops
//!   moves to another member, authenticates there and keeps its session and its access;
//! * an unknown client principal or a destroyed ticket (no credentials), an unknown server principal, a server
//!   without the principal's key and a wrong service name all fail `connect()` with
//!   `Error::SaslFailed` naming the cause, well within the connect deadline.
//!
//! The Kerberos library takes its configuration and the client keytab from the process
//! environment (`KRB5_CONFIG`, `KRB5_CLIENT_KTNAME`, `KRB5CCNAME`), which must not change
//! while other threads run, so this binary has its own `main` (`harness = false`): it starts
//! the KDC, sets the variables, starts the server, then runs the tests one after another. One
//! KDC and one server serve all of them; every test uses its own nodes.
//!
//! Run by hand: `cargo test -p zk-tests --features gssapi --test kerberos` (an argument filters
//! the tests by name). A missing `krb5kdc`, `kadmin.local` or ZooKeeper fails loudly with the
//! command that installs it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zk_client::gssapi::GssapiOptions;
use zk_client::{
    make_acl, ClientBuilder, CreateMode, CreateOptions, Error, ErrorCode, Perms, SessionState,
};
use zk_proto::sasl::ServerHost;
use zk_testkit::{Kdc, ServerOptions, ZkServer};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::proxy::Proxy;

const REALM: &str = "EXAMPLE.COM";
const TEST_LIMIT: Duration = Duration::from_secs(120);
/// The connect deadline of the failing connects: each must fail well before it.
const WAIT: Duration = Duration::from_secs(10);

/// The KDC, the server and the users, made once in `main` before any other thread.
struct World {
    kdc: Kdc,
    server: ZkServer,
    /// The DIR credential cache collection (`KRB5CCNAME`).
    ccache: PathBuf,
    /// Carol's keytab, for `kinit` only (not the client keytab).
    carol_keytab: PathBuf,
}

static WORLD: OnceLock<World> = OnceLock::new();

fn world() -> &'static World {
    WORLD.get().expect("main sets the world up first")
}

fn alice() -> String {
    world().kdc.principal("alice")
}

fn bob() -> String {
    world().kdc.principal("bob")
}

/// `localhost:<port>`: the default server principal is named by this host.
fn localhost(port: u16) -> String {
    format!("localhost:{port}")
}

fn as_user(principal: &str, opts: GssapiOptions) -> ClientBuilder {
    ClientBuilder::new(&localhost(world().server.port()))
        .sasl_gssapi(opts.client_principal(principal))
        .connect_deadline(WAIT)
}

fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("krb-", tag, Z::NAME)
}

/// The `sasl` id the server gave this client.
fn sasl_id<Z: Zk>(zk: &Z) -> String {
    let ids = zk.whoami().unwrap();
    ids.iter()
        .find(|i| i.auth_scheme == "sasl")
        .map(|i| i.user.clone())
        .unwrap_or_else(|| panic!("{}: no sasl id in {ids:?}", Z::NAME))
}

fn user_is_known_by_its_sasl_id<Z: Zk>() {
    let a = Z::connect(&as_user(&alice(), GssapiOptions::new())).unwrap();
    assert_eq!(a.state(), SessionState::Connected);
    let id = sasl_id(&a);
    // The server's KerberosName rules keep the realm by default.
    assert_eq!(id, alice(), "{}: sasl id", Z::NAME);
    println!("    {} whoami: sasl:{id}", Z::NAME);
    let path = unique::<Z>("acl");
    a.create_with(
        &path,
        "alice's",
        &CreateOptions {
            acl: Some(vec![make_acl("sasl", &id, Perms::ALL)]),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    assert_eq!(&a.get_data(&path).unwrap().0[..], b"alice's");
    // Anonymous, and another Kerberos user: NoAuth.
    let anon = Z::connect(&ClientBuilder::new(&world().server.connect_string())).unwrap();
    assert_eq!(
        anon.get_data(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    let b = Z::connect(&as_user(&bob(), GssapiOptions::new())).unwrap();
    assert!(sasl_id(&b).starts_with("bob"));
    assert_eq!(
        b.get_data(&path).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    a.delete(&path, None).unwrap();
    for c in [a, anon, b] {
        c.close().unwrap();
    }
}

/// The Java client's naming options, each on its own.
fn naming_options<Z: Zk>() {
    let port = world().server.port();
    let service = format!("zookeeper/localhost@{REALM}");
    let cases: [(&str, String, GssapiOptions); 3] = [
        (
            "no canonicalization: zookeeper/localhost as written",
            localhost(port),
            GssapiOptions::new().canonicalize_hostname(false),
        ),
        (
            "the whole server principal, whatever address is dialled",
            world().server.connect_string(),
            GssapiOptions::new().server_principal(&service),
        ),
        (
            "service name zookeeper, spelled out",
            localhost(port),
            GssapiOptions::new().service_name("zookeeper"),
        ),
    ];
    for (what, hosts, opts) in cases {
        let zk = Z::connect(
            &ClientBuilder::new(&hosts)
                .sasl_gssapi(opts.client_principal(&alice()))
                .connect_deadline(WAIT),
        )
        .unwrap_or_else(|e| panic!("{}: {what}: {e}", Z::NAME));
        assert!(sasl_id(&zk).starts_with("alice"), "{}: {what}", Z::NAME);
        zk.close().unwrap();
    }
    // The server's host name fixed in the SASL configuration, whatever address is dialled.
    let mut named = GssapiOptions::new()
        .client_principal(&alice())
        .sasl_config();
    named.server_host = ServerHost::Named("localhost".into());
    let zk = Z::connect(
        &ClientBuilder::new(&world().server.connect_string())
            .sasl(named)
            .connect_deadline(WAIT),
    )
    .unwrap_or_else(|e| panic!("{}: ServerHost::Named: {e}", Z::NAME));
    assert!(sasl_id(&zk).starts_with("alice"));
    zk.close().unwrap();
}

fn replayed_after_a_cut<Z: Zk>() {
    let proxy = Proxy::start(world().server.addr());
    // The proxy's address is not the server's name: the principal says who it is.
    let a = Z::connect(
        &ClientBuilder::new(&proxy.connect_string())
            .sasl_gssapi(
                GssapiOptions::new()
                    .server_principal(&format!("zookeeper/localhost@{REALM}"))
                    .client_principal(&alice()),
            )
            .session_timeout(Duration::from_secs(20)),
    )
    .unwrap();
    let session = a.session().unwrap().id;
    let id = sasl_id(&a);
    let path = unique::<Z>("cut");
    a.create_with(
        &path,
        "x",
        &CreateOptions {
            mode: CreateMode::Persistent,
            acl: Some(vec![make_acl("sasl", &id, Perms::ALL)]),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    let mut states = a.state_stream();
    proxy.cut_all();
    zk_tests::wait_reconnected(&mut states, WAIT, Z::NAME);
    assert_eq!(a.session().unwrap().id, session);
    // The new connection authenticated again: the node is still alice's to read.
    assert_eq!(&a.get_data(&path).unwrap().0[..], b"x");
    assert_eq!(sasl_id(&a), id);
    a.delete(&path, None).unwrap();
    a.close().unwrap();
}

/// `connect()` fails with SaslFailed, at once, naming the cause (every `needle`).
fn fails_naming<Z: Zk>(what: &str, b: &ClientBuilder, needles: &[&str]) {
    let t = Instant::now();
    match Z::connect(b) {
        Err(Error::SaslFailed(why)) => {
            for n in needles {
                assert!(
                    why.contains(n),
                    "{}: {what}: the cause {why:?} does not name {n:?}",
                    Z::NAME
                );
            }
            println!("    {} {what}: {why}", Z::NAME);
        }
        Err(e) => panic!("{}: {what}: expected SaslFailed, got {e:?}", Z::NAME),
        Ok(_) => panic!("{}: {what}: connected", Z::NAME),
    }
    assert!(
        t.elapsed() < WAIT / 2,
        "{}: {what}: failed after {:?}, not at once",
        Z::NAME,
        t.elapsed()
    );
}

/// Carol has no key in the client keytab: only a ticket that `kinit` put in the cache
/// collection. Without it (after `kdestroy`) she has no credentials.
fn ticket_cache_credentials<Z: Zk>() {
    let w = world();
    let carol = w.kdc.principal("carol");
    let cache = format!("DIR::{}/tkt-carol", w.ccache.display());
    w.kdc.kinit("carol", &w.carol_keytab, &cache);
    let c = Z::connect(&as_user(&carol, GssapiOptions::new())).unwrap();
    assert_eq!(sasl_id(&c), carol);
    c.close().unwrap();
    w.kdc.kdestroy(&cache);
    fails_naming::<Z>(
        "a user whose ticket was destroyed",
        &as_user(&carol, GssapiOptions::new()),
        &["no Kerberos credentials", "carol@EXAMPLE.COM"],
    );
}

fn no_credentials_for_the_client<Z: Zk>() {
    // No key for this principal in the client keytab, and no ticket in the cache.
    let nobody = world().kdc.principal("nobody");
    fails_naming::<Z>(
        "unknown client principal",
        &as_user(&nobody, GssapiOptions::new()),
        &["GSSAPI", "no Kerberos credentials", "nobody@EXAMPLE.COM"],
    );
}

fn unknown_server_principal<Z: Zk>() {
    fails_naming::<Z>(
        "a server principal the KDC does not know",
        &as_user(
            &alice(),
            GssapiOptions::new().server_principal(&format!("zookeeper/nowhere@{REALM}")),
        ),
        &[
            "zookeeper/nowhere@EXAMPLE.COM",
            "not found in Kerberos database",
        ],
    );
    fails_naming::<Z>(
        "a service name the KDC does not know",
        &as_user(&alice(), GssapiOptions::new().service_name("zk")),
        &["zk/localhost@EXAMPLE.COM"],
    );
    // Dialled by address, not canonicalized by the krb5.conf here: zookeeper/127.0.0.1.
    fails_naming::<Z>(
        "the server named by its address",
        &ClientBuilder::new(&world().server.connect_string())
            .sasl_gssapi(GssapiOptions::new().client_principal(&alice()))
            .connect_deadline(WAIT),
        &["zookeeper/127.0.0.1@EXAMPLE.COM"],
    );
}

fn server_without_the_key<Z: Zk>() {
    // The KDC knows zookeeper/elsewhere and issues a ticket for it, but the server has no
    // key for it: the server refuses the exchange.
    fails_naming::<Z>(
        "a ticket for a principal the server has no key for",
        &as_user(
            &alice(),
            GssapiOptions::new().server_principal(&format!("zookeeper/elsewhere@{REALM}")),
        ),
        &["GSSAPI"],
    );
}

type Test = (String, fn());

macro_rules! kerberos_tests {
    ($($name:ident),* $(,)?) => {
        fn tests() -> Vec<Test> {
            let mut v: Vec<Test> = Vec::new();
            $( v.push((format!("tokio_krb::{}", stringify!($name)), $name::<TokioZk>)); )*
            $( v.push((format!("smol_krb::{}", stringify!($name)), $name::<SmolZk>)); )*
            $( v.push((format!("blocking_krb::{}", stringify!($name)), $name::<BlockingZk>)); )*
            v
        }
    };
}

/// A three-member ensemble with Kerberos on every member (one principal: they all listen
/// on 127.0.0.1, dialled as `localhost`), started on first use and shared by the adapters'
/// runs of [`failover_in_a_kerberos_ensemble`], one after another.
fn krb_ensemble() -> std::sync::MutexGuard<'static, zk_testkit::Ensemble> {
    static ENSEMBLE: OnceLock<std::sync::Mutex<zk_testkit::Ensemble>> = OnceLock::new();
    ENSEMBLE
        .get_or_init(|| {
            std::sync::Mutex::new(zk_testkit::Ensemble::start(
                3,
                ServerOptions {
                    kerberos: Some(world().kdc.kerberos_server("localhost")),
                    ..ServerOptions::default()
                },
            ))
        })
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The session moves to another member when its server stops, authenticates there with a
/// fresh GSSAPI exchange (the new server names itself `localhost` too), keeps its session,
/// and reads its `sasl`-ACL node; another user still gets NoAuth on every member.
fn failover_in_a_kerberos_ensemble<Z: Zk>() {
    let mut ens = krb_ensemble();
    let hosts: Vec<String> = (0..ens.len())
        .map(|i| localhost(ens.client_addr(i).port()))
        .collect();
    let b = ClientBuilder::new(&hosts.join(","))
        .sasl_gssapi(GssapiOptions::new().client_principal(&alice()))
        .session_timeout(Duration::from_secs(20))
        .connect_deadline(WAIT);
    let a = Z::connect(&b).unwrap();
    let session = a.session().unwrap().id;
    let id = sasl_id(&a);
    let path = unique::<Z>("ensemble");
    a.create_with(
        &path,
        "members",
        &CreateOptions {
            acl: Some(vec![make_acl("sasl", &id, Perms::ALL)]),
            ..CreateOptions::default()
        },
    )
    .unwrap();
    let on = a.current_host().expect("connected to a member");
    let member = (0..ens.len())
        .find(|&i| ens.client_addr(i).port() == on.port)
        .unwrap_or_else(|| panic!("{}: {on} is not a member", Z::NAME));
    let mut states = a.state_stream();
    ens.stop(member);
    zk_tests::wait_reconnected(&mut states, Duration::from_secs(30), Z::NAME);
    let now_on = a.current_host().unwrap();
    assert_ne!(
        now_on.port,
        on.port,
        "{}: still on the stopped member",
        Z::NAME
    );
    assert_eq!(
        a.session().unwrap().id,
        session,
        "{}: a new session",
        Z::NAME
    );
    assert_eq!(sasl_id(&a), id, "{}: sasl id after the failover", Z::NAME);
    assert_eq!(&a.get_data(&path).unwrap().0[..], b"members");
    println!(
        "    {} moved from {on} to {now_on}, session 0x{session:x} kept",
        Z::NAME
    );
    // Bob, on the members that still run, is not let in.
    for i in (0..ens.len()).filter(|&i| i != member) {
        let other = Z::connect(
            &ClientBuilder::new(&localhost(ens.client_addr(i).port()))
                .sasl_gssapi(GssapiOptions::new().client_principal(&bob()))
                .connect_deadline(WAIT),
        )
        .unwrap();
        assert_eq!(
            other.get_data(&path).err(),
            Some(Error::Server(ErrorCode::NoAuth)),
            "{}: bob on member {i}",
            Z::NAME
        );
        other.close().unwrap();
    }
    a.delete(&path, None).unwrap();
    a.close().unwrap();
    ens.start_member(member);
}

kerberos_tests!(
    user_is_known_by_its_sasl_id,
    naming_options,
    replayed_after_a_cut,
    ticket_cache_credentials,
    failover_in_a_kerberos_ensemble,
    no_credentials_for_the_client,
    unknown_server_principal,
    server_without_the_key,
);

/// The KDC with its principals, the client environment, the server.
fn set_up() -> World {
    let kdc = Kdc::start(REALM);
    let kerberos = kdc.kerberos_server("localhost");
    // Known to the KDC, but the server has no key for it.
    kdc.kadmin(&format!("addprinc -randkey zookeeper/elsewhere@{REALM}"));
    let client_keytab = kdc.dir().join("clients.keytab");
    kdc.add_to_keytab("alice", &client_keytab);
    kdc.add_to_keytab("bob", &client_keytab);
    let carol_keytab = kdc.add_keytab("carol");
    let ccache: PathBuf = kdc.dir().join("ccache");
    std::fs::create_dir_all(&ccache).unwrap();
    // The Kerberos library reads these from the environment: set once, before any thread
    // (this binary's main has started none yet; Command spawns are not threads).
    std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
    std::env::set_var("KRB5_CLIENT_KTNAME", &client_keytab);
    std::env::set_var("KRB5CCNAME", format!("DIR:{}", ccache.display()));
    let server = ZkServer::start_with(ServerOptions {
        kerberos: Some(kerberos),
        ..ServerOptions::default()
    });
    World {
        kdc,
        server,
        ccache,
        carol_keytab,
    }
}

fn run_one(name: &str, body: fn()) -> Result<(), String> {
    // The watchdog re-raises the body's panic (or its own, on a hang) here.
    catch_unwind(AssertUnwindSafe(|| {
        zk_tests::watchdog::run(name, TEST_LIMIT, body)
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".to_string())
    })
}

/// What libtest's arguments ask for, as far as this runner understands them: name
/// filters, `--skip NAME`, `--exact`, `--list`, `--ignored` (there are none here); flags
/// that take a value (`--test-threads 2`) have it skipped; other flags are ignored.
#[derive(Default)]
struct Args {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    ignored_only: bool,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args::default();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--skip" => a.skips.extend(it.next()),
                "--exact" => a.exact = true,
                "--list" => a.list = true,
                "--ignored" => a.ignored_only = true,
                "--test-threads" | "--format" | "--color" | "--logfile" | "-Z"
                | "--shuffle-seed" => {
                    it.next();
                }
                f if f.starts_with('-') => {}
                _ => a.filters.push(arg),
            }
        }
        a
    }

    fn matches(&self, name: &str, pattern: &str) -> bool {
        if self.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    }

    fn wants(&self, name: &str) -> bool {
        !self.ignored_only
            && (self.filters.is_empty() || self.filters.iter().any(|f| self.matches(name, f)))
            && !self.skips.iter().any(|s| self.matches(name, s))
    }
}

fn main() {
    let args = Args::parse();
    let all = tests();
    let total = all.len();
    if args.list {
        for (name, _) in all.iter().filter(|(n, _)| args.wants(n)) {
            println!("{name}: test");
        }
        return;
    }
    let chosen: Vec<Test> = all.into_iter().filter(|(n, _)| args.wants(n)).collect();
    let filtered = total - chosen.len();
    println!("\nrunning {} tests", chosen.len());
    if chosen.is_empty() {
        println!("\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; {filtered} filtered out; finished in 0.00s\n");
        return;
    }
    let started = Instant::now();
    if WORLD.set(set_up()).is_err() {
        unreachable!("set up once");
    }
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, body) in chosen {
        match run_one(&name, body) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(why) => {
                println!("test {name} ... FAILED\n    {why}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for f in &failed {
            println!("    {f}");
        }
        println!("\n{}", world().kdc.log_tail());
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    // The statics are never dropped: the watchdogs end the KDC and the server, and remove
    // their directories, when this process exits.
    std::process::exit(if failed.is_empty() { 0 } else { 101 });
}
