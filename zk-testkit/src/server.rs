//! Real ZooKeeper 3.8 servers for tests: one standalone server ([`ZkServer`]) or an ensemble of
//! quorum members ([`Ensemble`]), all on loopback, each in its own temporary directory.
//!
//! Std only and blocking. Every JVM is started directly (`java -cp zookeeper.jar:...
//! QuorumPeerMain zoo.cfg`) with its stdout and stderr in `server.log` next to its `zoo.cfg`;
//! `slf4j-simple.jar` is put on the class path when installed, so the log has ZooKeeper's INFO
//! lines. A start waits until `srvr` answers with a `Mode:` line (not just `ruok`) and panics
//! after [`START_TIMEOUT`] with the tail of that log.
//!
//! Cleanup: dropping a [`ZkServer`] or [`Ensemble`] kills its JVMs and deletes its directory,
//! also while a test panics. Each JVM additionally gets a watchdog (`sh -c`) that holds the read
//! end of a pipe whose write end only this test process holds: when the process ends, however it
//! ends, the pipe reports EOF and the watchdog kills the JVM and removes its directory. That is
//! what cleans up after [`shared_server`], which lives in a static and is never dropped.
//!
//! ZooKeeper missing is a loud panic naming the fix, never a skip.
//!
//! [`Ensemble::start_reconfigurable`] starts an ensemble for dynamic reconfiguration
//! (`reconfigEnabled`, members in the dynamic `server.N=...;client` form, a super user or
//! `skipACL` for `reconfig`); [`Ensemble::add_member`] starts a joiner for a client to add.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one start (or restart) may take before the harness panics with the server's log.
/// Generous: the CI machine has two cores and test binaries may start servers concurrently.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The command that installs what the harness needs (the machines run as root).
pub const INSTALL_FIX: &str = "apt-get update && apt-get install -y zookeeper";

/// How long [`ZkServer::stop`] waits after SIGTERM before it sends SIGKILL.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll interval while waiting for a server.
pub(crate) const POLL: Duration = Duration::from_millis(25);
/// Timeout of one `srvr` probe.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Starts that failed because a port was taken meanwhile are retried this many times in all.
pub(crate) const START_ATTEMPTS: usize = 4;
/// How many lines of a server's log a panic message shows.
pub(crate) const LOG_TAIL_LINES: usize = 80;

pub(crate) const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// JVM flags of every server. On the 2-core machine they cut the CPU time a start costs by about
/// a fifth (0.32 s instead of 0.40 s) and the wall time to serving a little. They come first, so
/// [`ServerOptions::extra_jvm_flags`] can override them (e.g. `-XX:TieredStopAtLevel=4` for a
/// benchmark; HotSpot takes the last occurrence).
pub(crate) const BASE_JVM_FLAGS: &[&str] = &[
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
];

/// Jars added to the class path after `zookeeper.jar` when present: logging, and the Netty codec
/// and resolver that the Netty connection factory (TLS) needs. `zookeeper.jar`'s manifest names
/// the rest of its dependencies.
pub(crate) const OPTIONAL_JARS: &[&str] =
    &["slf4j-simple.jar", "netty-codec.jar", "netty-resolver.jar"];

/// The watchdog, run as `sh -c WATCHDOG zk-tests-watchdog <java pid> <dir> [<parent dir>]` with
/// its stdin a pipe from this process. The line `dismiss` ends it quietly (the harness stopped the
/// JVM itself); EOF means this process is gone: kill the JVM, wait (at most 2 s) until it is dead
/// or a zombie (init may reap orphans slowly), remove its directory and, if given, the parent
/// directory once it is empty.
pub(crate) const WATCHDOG: &str = r#"while read -r line; do
  [ "$line" = dismiss ] && exit 0
done
kill -KILL "$1" 2>/dev/null
n=0
while [ $n -lt 40 ] && [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$1/status" 2>/dev/null; do
  sleep 0.05; n=$((n + 1))
done
rm -rf "$2"
[ -n "$3" ] && rmdir "$3" 2>/dev/null
exit 0"#;

/// Options of a server or of every member of an ensemble. `Debug` prints no password.
#[derive(Clone)]
pub struct ServerOptions {
    /// `-Dzookeeper.extendedTypesEnabled=true` (TTL nodes). Default true.
    pub extended_types: bool,
    /// `-Dreadonlymode.enabled=true`, plus `localSessionsEnabled=true` and
    /// `localSessionsUpgradingEnabled=true` in zoo.cfg (without local sessions no client can open
    /// a session on a read-only server). Only a quorum member that lost its quorum becomes
    /// read-only; a standalone server never does. Default false.
    pub read_only_mode: bool,
    /// `tickTime` in ms; the session timeout is clamped to 2..20 ticks. Default 2000.
    pub tick_time_ms: u32,
    /// Extra zoo.cfg lines, written last (for a repeated key the last line wins).
    pub extra_cfg: Vec<String>,
    /// Extra JVM arguments, after the harness's own (so they win where HotSpot takes the last).
    pub extra_jvm_flags: Vec<String>,
    /// TLS on a second, secure client port (`secureClientPort`, the Netty connection factory).
    /// Standalone servers ([`ZkServer`]) only; an [`Ensemble`] ignores it. Default none.
    pub tls: Option<TlsServerOptions>,
    /// SASL DIGEST-MD5 users (name, password): a JAAS file with ZooKeeper's `DigestLoginModule`
    /// (`-Djava.security.auth.login.config`) and the SASL auth provider in zoo.cfg. Clients
    /// that authenticate as `bob` are `sasl:bob` in ACLs. Every member of an [`Ensemble`]
    /// gets the same. Default none.
    pub sasl_users: Vec<(String, String)>,
    /// SASL GSSAPI (Kerberos): a JAAS `Server` section with Java's `Krb5LoginModule` reading
    /// the service principal's key from a keytab, `-Djava.security.krb5.conf`, and the SASL
    /// auth provider in zoo.cfg (see [`Kdc::kerberos_server`](crate::Kdc::kerberos_server)).
    /// Exclusive with [`sasl_users`](ServerOptions::sasl_users): one JAAS `Server` section
    /// serves one mechanism here (a start with both panics). Every member of an
    /// [`Ensemble`] gets the same principal and keytab: they all listen on 127.0.0.1, which
    /// clients dial as one host name. Default none.
    pub kerberos: Option<KerberosServerOptions>,
}

/// A ZooKeeper server's Kerberos identity (nothing secret: the key stays in the keytab file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KerberosServerOptions {
    /// The service principal, `zookeeper/<host>@REALM`: clients name it by the host they dial.
    pub principal: String,
    /// The keytab holding the principal's key.
    pub keytab: PathBuf,
    /// The realm's `krb5.conf` (`-Djava.security.krb5.conf`).
    pub krb5_conf: PathBuf,
}

impl KerberosServerOptions {
    /// The JAAS file's text: the server logs in from the keytab only, never prompts, and
    /// keeps the key to accept clients' tickets.
    pub(crate) fn jaas(&self) -> String {
        format!(
            "Server {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
             useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
             doNotPrompt=true\n  isInitiator=false\n  principal=\"{}\";\n}};\n",
            self.keytab.display(),
            self.principal
        )
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<&str> = self.sasl_users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("ServerOptions")
            .field("extended_types", &self.extended_types)
            .field("read_only_mode", &self.read_only_mode)
            .field("tick_time_ms", &self.tick_time_ms)
            .field("extra_cfg", &self.extra_cfg)
            .field("extra_jvm_flags", &self.extra_jvm_flags)
            .field("tls", &self.tls)
            .field("sasl_users", &users)
            .field("kerberos", &self.kerberos)
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            extended_types: true,
            read_only_mode: false,
            tick_time_ms: 2000,
            extra_cfg: Vec::new(),
            extra_jvm_flags: Vec::new(),
            tls: None,
            sasl_users: Vec::new(),
            kerberos: None,
        }
    }
}

/// Whether the TLS port asks clients for a certificate (`ssl.clientAuth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a trusted certificate is refused (ZooKeeper's default).
    Need,
    /// A certificate is asked for; a client without one is let in.
    Want,
    /// No certificate is asked for.
    None,
}

impl ClientAuth {
    fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Need => "need",
            ClientAuth::Want => "want",
            ClientAuth::None => "none",
        }
    }
}

/// The command that installs `openssl`, which packs the server's PKCS12 key store.
pub const OPENSSL_FIX: &str = "apt-get update && apt-get install -y openssl";

/// The server's TLS material, as PEM: the harness packs the certificate and key into a PKCS12
/// key store with the `openssl` command (a loud panic naming [`OPENSSL_FIX`] when it is
/// missing) and gives ZooKeeper the CAs as a PEM trust store (`ssl.trustStore.type=PEM`: a
/// certificate-only PKCS12 store from OpenSSL 3.0 carries no Java trust attribute, and Java
/// then trusts nothing in it). Both files live in the server's directory.
#[derive(Clone)]
pub struct TlsServerOptions {
    /// The server's certificate chain (leaf first), PEM.
    pub cert_chain_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The CAs whose client certificates the server accepts, PEM.
    pub trusted_ca_pem: String,
    /// Whether clients must show a certificate.
    pub client_auth: ClientAuth,
    /// `ssl.hostnameVerification` (on the server: whether a client's certificate must name the
    /// client's address). Default false here; ZooKeeper's own default is true.
    pub hostname_verification: bool,
}

impl std::fmt::Debug for TlsServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServerOptions")
            .field(
                "cert_chain_pem",
                &format_args!("{} bytes", self.cert_chain_pem.len()),
            )
            .field("key_pem", &format_args!("<redacted>"))
            .field(
                "trusted_ca_pem",
                &format_args!("{} bytes", self.trusted_ca_pem.len()),
            )
            .field("client_auth", &self.client_auth)
            .field("hostname_verification", &self.hostname_verification)
            .finish()
    }
}

impl TlsServerOptions {
    /// TLS with this certificate and key, trusting client certificates from `trusted_ca_pem`.
    pub fn new(
        cert_chain_pem: &str,
        key_pem: &str,
        trusted_ca_pem: &str,
        client_auth: ClientAuth,
    ) -> TlsServerOptions {
        TlsServerOptions {
            cert_chain_pem: cert_chain_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            trusted_ca_pem: trusted_ca_pem.to_owned(),
            client_auth,
            hostname_verification: false,
        }
    }

    /// The key store's password (test material only).
    const PASSWORD: &'static str = "zk-tests-keystore";

    /// Writes `server.p12` (via openssl) and `trust.pem` into `dir`; the zoo.cfg lines.
    pub(crate) fn write_stores(&self, dir: &Path) -> Vec<String> {
        let cert = dir.join("server-cert.pem");
        let key = dir.join("server-key.pem");
        let keystore = dir.join("server.p12");
        let trust = dir.join("trust.pem");
        for (path, text) in [
            (&cert, &self.cert_chain_pem),
            (&key, &self.key_pem),
            (&trust, &self.trusted_ca_pem),
        ] {
            fs::write(path, text)
                .unwrap_or_else(|e| panic!("zk-tests: cannot write {}: {e}", path.display()));
        }
        pkcs12_keystore(&cert, &key, &keystore, Self::PASSWORD);
        vec![
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory".to_string(),
            format!("ssl.keyStore.location={}", keystore.display()),
            format!("ssl.keyStore.password={}", Self::PASSWORD),
            "ssl.keyStore.type=PKCS12".to_string(),
            format!("ssl.trustStore.location={}", trust.display()),
            "ssl.trustStore.type=PEM".to_string(),
            format!("ssl.clientAuth={}", self.client_auth.as_str()),
            format!("ssl.hostnameVerification={}", self.hostname_verification),
        ]
    }
}

/// Packs a PEM certificate chain and key into a PKCS12 key store with
/// `openssl pkcs12 -export`. Panics loudly when `openssl` is missing or fails.
pub fn pkcs12_keystore(cert_chain_pem: &Path, key_pem: &Path, out: &Path, password: &str) {
    let run = Command::new("openssl")
        .arg("pkcs12")
        .arg("-export")
        .arg("-in")
        .arg(cert_chain_pem)
        .arg("-inkey")
        .arg(key_pem)
        .arg("-out")
        .arg(out)
        .arg("-name")
        .arg("server")
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .stdin(Stdio::null())
        .output();
    match run {
        Err(e) => panic!(
            "\n\n========== zk-tests: OPENSSL IS NOT INSTALLED ==========\n\
             The TLS tests pack the server's key store with the `openssl` command and never \
             skip: {e}.\nFix: `{OPENSSL_FIX}`\n\
             =========================================================\n"
        ),
        Ok(o) if !o.status.success() => panic!(
            "zk-tests: `openssl pkcs12 -export` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => {}
    }
}

impl ServerOptions {
    pub(crate) fn jvm_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.extended_types {
            flags.push("-Dzookeeper.extendedTypesEnabled=true".to_string());
        }
        if self.read_only_mode {
            flags.push("-Dreadonlymode.enabled=true".to_string());
        }
        flags.extend(self.extra_jvm_flags.iter().cloned());
        flags
    }

    /// The JVM flags of SASL (DIGEST-MD5 users or Kerberos), with the JAAS file they
    /// name written into `dir`; none without SASL. A server and every ensemble member
    /// get them.
    pub(crate) fn auth_jvm_flags(&self, dir: &Path) -> Vec<String> {
        assert!(
            self.sasl_users.is_empty() || self.kerberos.is_none(),
            "zk-tests: ServerOptions::sasl_users and ::kerberos are exclusive"
        );
        let jaas = dir.join("server_jaas.conf");
        let write = |text: String| {
            fs::write(&jaas, text)
                .unwrap_or_else(|e| panic!("zk-tests: cannot write {}: {e}", jaas.display()));
        };
        if let Some(krb) = &self.kerberos {
            write(krb.jaas());
            return vec![
                format!("-Djava.security.auth.login.config={}", jaas.display()),
                format!("-Djava.security.krb5.conf={}", krb.krb5_conf.display()),
            ];
        }
        if !self.sasl_users.is_empty() {
            let users: Vec<String> = self
                .sasl_users
                .iter()
                .map(|(user, password)| format!("  user_{user}=\"{password}\""))
                .collect();
            write(format!(
                "Server {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n{};\n}};\n",
                users.join("\n")
            ));
            return vec![format!(
                "-Djava.security.auth.login.config={}",
                jaas.display()
            )];
        }
        Vec::new()
    }

    /// The zoo.cfg lines of SASL: the SASL auth provider, when users or Kerberos are set.
    pub(crate) fn auth_cfg(&self) -> Vec<String> {
        if self.sasl_users.is_empty() && self.kerberos.is_none() {
            return Vec::new();
        }
        vec!["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into()]
    }

    /// The zoo.cfg lines every server gets, before the ensemble's and the caller's own.
    pub(crate) fn base_cfg(&self, data_dir: &Path, client_port: u16) -> Vec<String> {
        let mut cfg = vec![
            format!("tickTime={}", self.tick_time_ms),
            format!("dataDir={}", data_dir.display()),
            format!("clientPort={client_port}"),
            "clientPortAddress=127.0.0.1".to_string(),
            "maxClientCnxns=0".to_string(),
            "4lw.commands.whitelist=*".to_string(),
            "admin.enableServer=false".to_string(),
        ];
        if self.read_only_mode {
            cfg.push("localSessionsEnabled=true".to_string());
            cfg.push("localSessionsUpgradingEnabled=true".to_string());
        }
        cfg
    }
}

// ---------------------------------------------------------------------------------------------
// Installation

/// Where the JVM and ZooKeeper's jars are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    /// The `java` binary.
    pub java: PathBuf,
    /// `zookeeper.jar` first, then whichever of the optional jars are installed.
    pub class_path: Vec<PathBuf>,
}

impl Install {
    pub(crate) fn class_path_arg(&self) -> String {
        let parts: Vec<String> = self
            .class_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        parts.join(":")
    }
}

/// Finds the Debian ZooKeeper package on this machine (`/usr/share/java/zookeeper.jar`, java from
/// `$JAVA_HOME` or `/usr/bin/java`). The error says what is missing and how to install it.
pub fn zookeeper_install() -> Result<Install, String> {
    let java_home = std::env::var_os("JAVA_HOME").map(PathBuf::from);
    find_install(Path::new("/"), java_home.as_deref())
}

/// [`zookeeper_install`] under a different file-system root (for testing the detection itself):
/// looks for `<root>/usr/share/java/zookeeper.jar` and for `<java_home>/bin/java`, else
/// `<root>/usr/bin/java`.
pub fn find_install(root: &Path, java_home: Option<&Path>) -> Result<Install, String> {
    let jars = root.join("usr/share/java");
    let jar = jars.join("zookeeper.jar");
    let script = root.join("usr/share/zookeeper/bin/zkServer.sh");
    let fix = format!(
        "The zk-tests harness runs a real ZooKeeper 3.8 server and never skips. \
         Fix: `{INSTALL_FIX}` (or run `scripts/test.sh`, which installs it)."
    );
    if !jar.is_file() {
        let what = if script.is_file() {
            format!(
                "{} exists but {} is missing",
                script.display(),
                jar.display()
            )
        } else {
            format!("neither {} nor {} exists", script.display(), jar.display())
        };
        return Err(format!("ZooKeeper is not installed: {what}. {fix}"));
    }
    let java = java_home
        .map(|home| home.join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| root.join("usr/bin/java"));
    if !java.is_file() {
        return Err(format!(
            "ZooKeeper is installed but there is no Java runtime at {} (nor in $JAVA_HOME). {fix}",
            java.display()
        ));
    }
    let mut class_path = vec![jar];
    class_path.extend(
        OPTIONAL_JARS
            .iter()
            .map(|name| jars.join(name))
            .filter(|path| path.is_file()),
    );
    Ok(Install { java, class_path })
}

/// The installation, looked up once per process; panics loudly when ZooKeeper is missing.
pub(crate) fn install() -> &'static Install {
    static INSTALL: OnceLock<Result<Install, String>> = OnceLock::new();
    match INSTALL.get_or_init(zookeeper_install) {
        Ok(install) => install,
        Err(message) => panic!(
            "\n\n========== zk-tests: ZOOKEEPER IS NOT INSTALLED ==========\n{message}\n\
             ==========================================================\n"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Ports, directories, four-letter words

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A loopback port that was free a moment ago and that this process has not handed out before
/// (the set is process-wide and never shrinks, so concurrent tests never share a port and a
/// restarted server finds its port unclaimed by another test).
pub(crate) fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut handed_out = lock(HANDED_OUT.get_or_init(Default::default));
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("zk-tests: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("zk-tests: local_addr of a listener: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("zk-tests: no unused loopback port after 1000 tries");
}

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A new empty directory under [`std::env::temp_dir`] with a name no other test uses.
pub(crate) fn make_temp_dir(kind: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "zk-tests-{kind}-{}-{n}-{nanos:09}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("zk-tests: cannot create {}: {e}", dir.display()),
        }
    }
}

/// Sends a four-letter word (`ruok`, `srvr`, `isro`, `mntr`, ...) and reads the answer to EOF.
/// `timeout` bounds the whole exchange.
pub fn four_letter_word(addr: SocketAddr, cmd: &str, timeout: Duration) -> io::Result<String> {
    if cmd.len() != 4 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a four-letter word has 4 bytes, not {cmd:?}"),
        ));
    }
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(cmd.as_bytes())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no EOF from {addr} after {cmd} within {timeout:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The `Mode:` value of a `srvr` answer (`leader`, `follower`, `standalone`, `read-only`, ...).
pub(crate) fn parse_mode(srvr: &str) -> Option<String> {
    srvr.lines()
        .find_map(|line| line.strip_prefix("Mode:"))
        .map(|mode| mode.trim().to_string())
}

/// The server's mode, or `None` if it does not answer or is not serving.
pub(crate) fn mode_at(addr: SocketAddr) -> Option<String> {
    four_letter_word(addr, "srvr", PROBE_TIMEOUT)
        .ok()
        .and_then(|answer| parse_mode(&answer))
}

// ---------------------------------------------------------------------------------------------
// One JVM and its watchdog

pub(crate) struct Running {
    pub(crate) java: Child,
    /// `None` once dismissed.
    pub(crate) watchdog: Option<Child>,
    pub(crate) reaped: bool,
}

impl Running {
    /// Tells the watchdog to exit without touching anything, and reaps it.
    pub(crate) fn dismiss_watchdog(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let dismissed = watchdog
                .stdin
                .take()
                .is_some_and(|mut stdin| stdin.write_all(b"dismiss\n").is_ok());
            if !dismissed {
                // Without the line it would see EOF and clean up: never let it get that far.
                let _ = watchdog.kill();
            }
            let _ = watchdog.wait();
        }
    }

    /// SIGTERM and a bounded wait (`graceful`), else or then SIGKILL; always reaps the JVM.
    pub(crate) fn shutdown(&mut self, graceful: bool) {
        if self.reaped {
            self.dismiss_watchdog();
            return;
        }
        if graceful && send_sigterm(self.java.id()) {
            self.dismiss_watchdog();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                match self.java.try_wait() {
                    Ok(Some(_)) => {
                        self.reaped = true;
                        return;
                    }
                    Ok(None) => thread::sleep(POLL),
                    Err(_) => break,
                }
            }
        }
        // Signal first and dismiss the watchdog before reaping, so the watchdog can only ever
        // signal our (unreaped) JVM, never a recycled pid.
        let _ = self.java.kill();
        self.dismiss_watchdog();
        let _ = self.java.wait();
        self.reaped = true;
    }

    pub(crate) fn has_exited(&mut self) -> bool {
        if !self.reaped && !matches!(self.java.try_wait(), Ok(None)) {
            self.reaped = true;
        }
        if self.reaped {
            self.dismiss_watchdog();
        }
        self.reaped
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

pub(crate) fn send_sigterm(pid: u32) -> bool {
    send_signal(pid, "TERM")
}

/// `kill -<signal> <pid>`; whether it succeeded.
pub(crate) fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts the [`WATCHDOG`] of process `pid`, which removes `dir` (and `parent` once empty) when
/// this test process ends. Its own process group too, so a Ctrl-C that kills the tests does not
/// kill the watchdog before it has cleaned up.
pub(crate) fn spawn_watchdog(pid: u32, dir: &Path, parent: Option<&Path>) -> io::Result<Child> {
    let parent = parent.map(|p| p.display().to_string()).unwrap_or_default();
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("zk-tests-watchdog")
        .arg(pid.to_string())
        .arg(dir)
        .arg(parent)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// How a wait for servers ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ready,
    /// A server logged "Address already in use": another process took a port after we chose it.
    BindError,
    /// A JVM exited for another reason.
    Exited,
    TimedOut,
}

/// One server process: its directory (`zoo.cfg`, `data/`, `server.log`) and client port.
pub(crate) struct Node {
    pub(crate) dir: PathBuf,
    pub(crate) client_port: u16,
    pub(crate) jvm_flags: Vec<String>,
    /// The watchdog removes `dir` and then this directory if it is empty (ensemble root).
    pub(crate) cleanup_parent: Option<PathBuf>,
    /// Length of `server.log` when the current JVM started: bind errors are looked for after it.
    pub(crate) log_start: Mutex<u64>,
    pub(crate) proc: Mutex<Option<Running>>,
}

impl Node {
    pub(crate) fn new(
        dir: PathBuf,
        jvm_flags: Vec<String>,
        cleanup_parent: Option<PathBuf>,
    ) -> Node {
        let data = dir.join("data");
        fs::create_dir_all(&data)
            .unwrap_or_else(|e| panic!("zk-tests: cannot create {}: {e}", data.display()));
        Node {
            dir,
            client_port: 0,
            jvm_flags,
            cleanup_parent,
            log_start: Mutex::new(0),
            proc: Mutex::new(None),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        loopback(self.client_port)
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub(crate) fn write_cfg(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(self.cfg_path(), text).unwrap_or_else(|e| {
            panic!("zk-tests: cannot write {}: {e}", self.cfg_path().display())
        });
    }

    /// Removes what a failed first start of a dynamic-config member left behind (its
    /// transaction log and the `zoo.cfg.dynamic.<version>` files), so a retry on new ports
    /// starts from the freshly written config alone. Keeps `myid` and the log.
    pub(crate) fn forget_dynamic_state(&self) {
        let _ = fs::remove_dir_all(self.data_dir().join("version-2"));
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("zoo.cfg.dynamic.")
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Starts the JVM (stopping any previous one of this node first) and its watchdog.
    pub(crate) fn spawn(&self) {
        self.shutdown(false);
        let install = install();
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("zk-tests: cannot open {}: {e}", log_path.display()));
        let _ = writeln!(
            log,
            "==== zk-tests: starting {} on client port {} ====",
            self.cfg_path().display(),
            self.client_port
        );
        *lock(&self.log_start) = log.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| panic!("zk-tests: cannot clone a file handle: {e}"));
        let mut java = Command::new(&install.java)
            .args(BASE_JVM_FLAGS)
            .args(&self.jvm_flags)
            .arg("-cp")
            .arg(install.class_path_arg())
            .arg(MAIN_CLASS)
            .arg(self.cfg_path())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("zk-tests: cannot run {}: {e}", install.java.display()));
        let watchdog = spawn_watchdog(java.id(), &self.dir, self.cleanup_parent.as_deref());
        let watchdog = match watchdog {
            Ok(watchdog) => watchdog,
            Err(e) => {
                let _ = java.kill();
                let _ = java.wait();
                panic!("zk-tests: cannot start the watchdog shell `sh`: {e}");
            }
        };
        *lock(&self.proc) = Some(Running {
            java,
            watchdog: Some(watchdog),
            reaped: false,
        });
    }

    pub(crate) fn shutdown(&self, graceful: bool) {
        // Take it out first so the lock is not held during the (up to 10 s) wait.
        let running = lock(&self.proc).take();
        if let Some(mut running) = running {
            running.shutdown(graceful);
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        lock(&self.proc)
            .as_mut()
            .is_some_and(|running| !running.has_exited())
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        let mut proc = lock(&self.proc);
        let running = proc.as_mut()?;
        (!running.has_exited()).then(|| running.java.id())
    }

    pub(crate) fn mode(&self) -> Option<String> {
        mode_at(self.addr())
    }

    /// The current JVM's part of the log.
    pub(crate) fn current_log(&self) -> String {
        let start = *lock(&self.log_start);
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.log_path()) {
            let mut bytes = Vec::new();
            if file.seek(SeekFrom::Start(start)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        text
    }

    pub(crate) fn bind_failed(&self) -> bool {
        self.current_log().contains("Address already in use")
    }

    /// The last lines of the whole log, for panic messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log_path().display()));
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "---- {} (last {} lines) ----\n{}\n---- end of log ----",
            self.log_path().display(),
            lines.len() - from,
            lines[from..].join("\n")
        )
    }
}

/// Waits until `ready()` while watching `nodes` for exits and bind errors.
pub(crate) fn wait_until(nodes: &[&Node], timeout: Duration, ready: impl Fn() -> bool) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut polls = 0u32;
    loop {
        if ready() {
            return Outcome::Ready;
        }
        let exited = nodes.iter().any(|node| !node.is_running());
        // Reading the logs costs a little; look every half second, and at once after an exit.
        if (exited || polls % 20 == 19) && nodes.iter().any(|node| node.bind_failed()) {
            return Outcome::BindError;
        }
        if exited {
            return Outcome::Exited;
        }
        if Instant::now() >= deadline {
            return Outcome::TimedOut;
        }
        polls += 1;
        thread::sleep(POLL);
    }
}

pub(crate) fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ready => "is ready".to_string(),
        Outcome::BindError => format!("could not bind its ports ({START_ATTEMPTS} attempts)"),
        Outcome::Exited => "exited".to_string(),
        Outcome::TimedOut => format!(
            "did not serve within {} s (srvr printed no Mode: line)",
            START_TIMEOUT.as_secs()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Standalone server

/// One standalone ZooKeeper server on `127.0.0.1`. Dropping it kills the JVM and deletes its
/// directory.
///
/// ```no_run
/// use std::time::Duration;
/// use zk_client::{ClientBuilder, CreateMode, SessionState};
/// use zk_testkit::{ServerOptions, ZkServer};
///
/// // TTL nodes are on by default; other zoo.cfg lines go in `extra_cfg`.
/// let mut server = ZkServer::start_with(ServerOptions {
///     extra_cfg: vec!["maxClientCnxns=100".into()],
///     ..Default::default()
/// });
/// // A session long enough to outlast the restart below (a JVM start takes seconds).
/// let builder = ClientBuilder::new(&server.connect_string()).session_timeout(Duration::from_secs(30));
/// let zk = zk_blocking::connect(&builder).unwrap();
/// zk.create("/kept", "", CreateMode::Persistent).unwrap();
///
/// // The server goes away: the client is Suspended, then back on the same session.
/// let mut states = zk.state_stream();
/// server.kill();
/// server.restart(); // same port, same data
/// assert!(std::iter::from_fn(|| states.recv_timeout(Some(Duration::from_secs(10))))
///     .any(|s| s == SessionState::Connected));
/// assert!(zk.exists("/kept").unwrap().is_some());
/// ```
pub struct ZkServer {
    opts: ServerOptions,
    node: Node,
    /// The TLS port, when [`ServerOptions::tls`] is set.
    secure_port: Option<u16>,
    /// The zoo.cfg lines of the TLS setup (written once).
    tls_cfg: Vec<String>,
}

impl ZkServer {
    /// Starts a server with [`ServerOptions::default`] and waits until it serves.
    pub fn start() -> ZkServer {
        ZkServer::start_with(ServerOptions::default())
    }

    /// Starts a server and waits until it serves (panics after [`START_TIMEOUT`] with its log).
    /// A start that lost its port to another process is retried on a new port.
    pub fn start_with(opts: ServerOptions) -> ZkServer {
        install();
        let dir = make_temp_dir("server");
        let mut flags = opts.jvm_flags();
        // Before the caller's flags, which may override them.
        for (i, f) in opts.auth_jvm_flags(&dir).into_iter().enumerate() {
            flags.insert(i, f);
        }
        let node = Node::new(dir, flags, None);
        // From here on a panic drops `server`, which kills the JVM and removes the directory.
        let mut server = ZkServer {
            opts,
            node,
            secure_port: None,
            tls_cfg: Vec::new(),
        };
        if let Some(tls) = &server.opts.tls {
            server.tls_cfg = tls.write_stores(&server.node.dir);
        }
        for attempt in 1..=START_ATTEMPTS {
            server.node.client_port = free_port();
            if server.opts.tls.is_some() {
                server.secure_port = Some(free_port());
            }
            server.write_cfg();
            server.node.spawn();
            match server.wait_serving() {
                Outcome::Ready => return server,
                Outcome::BindError if attempt < START_ATTEMPTS => server.node.shutdown(false),
                outcome => server.fail("start", &outcome),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub(crate) fn write_cfg(&self) {
        let mut cfg = self
            .opts
            .base_cfg(&self.node.data_dir(), self.node.client_port);
        cfg.extend(self.opts.auth_cfg());
        if let Some(port) = self.secure_port {
            cfg.push(format!("secureClientPort={port}"));
            cfg.push("secureClientPortAddress=127.0.0.1".to_string());
            cfg.extend(self.tls_cfg.iter().cloned());
        }
        cfg.extend(self.opts.extra_cfg.iter().cloned());
        self.node.write_cfg(&cfg);
    }

    pub(crate) fn wait_serving(&self) -> Outcome {
        wait_until(&[&self.node], START_TIMEOUT, || self.node.mode().is_some())
    }

    pub(crate) fn fail(&self, what: &str, outcome: &Outcome) -> ! {
        panic!(
            "zk-tests: ZooKeeper server on {} ({what}) {}\n{}",
            self.node.addr(),
            describe(outcome),
            self.node.log_tail()
        )
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.node.client_port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.node.addr()
    }

    /// `"127.0.0.1:port"`, for a client's host list.
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// The TLS port, when started with [`ServerOptions::tls`].
    pub fn secure_port(&self) -> Option<u16> {
        self.secure_port
    }

    /// `127.0.0.1:secure port`; panics when the server has no TLS port.
    pub fn secure_addr(&self) -> SocketAddr {
        loopback(
            self.secure_port
                .expect("zk-tests: this server was started without ServerOptions::tls"),
        )
    }

    /// `"127.0.0.1:secure port"`, for a TLS client's host list; panics without a TLS port.
    pub fn secure_connect_string(&self) -> String {
        self.secure_addr().to_string()
    }

    /// SIGKILL; returns once the process is gone. The data directory stays for [`restart`].
    ///
    /// [`restart`]: ZkServer::restart
    pub fn kill(&mut self) {
        self.node.shutdown(false);
    }

    /// SIGTERM; returns once the process is gone (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        self.node.shutdown(true);
    }

    /// Starts the server again on the same port and data directory and waits until it serves.
    /// A server still running is stopped (SIGTERM) first. Sessions survive (they are in the
    /// transaction log). If the port is taken meanwhile the start is retried, then it panics.
    pub fn restart(&mut self) {
        self.node.shutdown(true);
        for attempt in 1..=START_ATTEMPTS {
            self.node.spawn();
            match self.wait_serving() {
                Outcome::Ready => return,
                Outcome::BindError if attempt < START_ATTEMPTS => {
                    self.node.shutdown(false);
                    thread::sleep(Duration::from_secs(1));
                }
                outcome => self.fail("restart", &outcome),
            }
        }
    }

    /// Whether the JVM is alive (it may not be serving yet or any more).
    pub fn is_running(&self) -> bool {
        self.node.is_running()
    }

    /// The JVM's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.node.pid()
    }

    /// The server's directory: `zoo.cfg`, `data/`, `server.log`. Deleted on drop.
    pub fn dir(&self) -> &Path {
        &self.node.dir
    }

    /// The file with the JVM's stdout and stderr (every start appends to it).
    pub fn log_path(&self) -> PathBuf {
        self.node.log_path()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.node.log_tail()
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.node.shutdown(false);
        let _ = fs::remove_dir_all(&self.node.dir);
    }
}

/// One server per test binary for the tests that can share it, started on first use with
/// [`ServerOptions::default`]. It is never dropped; its watchdog kills it and removes its
/// directory when the test process ends.
///
/// Tests that share it should use paths of their own (they run in parallel):
///
/// ```no_run
/// let zk = zk_blocking::connect(&zk_client::ClientBuilder::new(
///     &format!("{}/my-test", zk_testkit::shared_server().connect_string()), // a chroot per test
/// ))
/// .unwrap();
/// zk.ensure_path("/").unwrap(); // creates the chroot
/// ```
pub fn shared_server() -> &'static ZkServer {
    static SHARED: OnceLock<ZkServer> = OnceLock::new();
    SHARED.get_or_init(ZkServer::start)
}

// ---------------------------------------------------------------------------------------------
// Ensemble

pub use crate::ensemble::{super_digest, Ensemble, ReconfigAccess, Role};
