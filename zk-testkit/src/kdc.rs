//! A real MIT Kerberos KDC for tests (Debian's `krb5-kdc` package): a realm of its own in a
//! temporary directory, on a free loopback port, made with `kdb5_util` and `kadmin.local` and
//! served by `krb5kdc -n`. [`Kdc::add_keytab`] creates principals with random keys and exports
//! them to keytabs (a ZooKeeper server's and a client's), [`Kdc::kerberos_server`] gives the
//! [`ServerOptions::kerberos`](crate::ServerOptions::kerberos) of a server whose principal is
//! `zookeeper/<host>`.
//!
//! The realm's `krb5.conf` ([`Kdc::krb5_conf`]) turns off everything that would leave the
//! machine or depend on its DNS: no DNS lookups of realms or KDCs, `dns_canonicalize_hostname =
//! false` and `rdns = false` (so `zookeeper@localhost` is `zookeeper/localhost@REALM`), and
//! `udp_preference_limit = 1`, so both MIT's library and Java talk to the KDC over TCP only.
//! Programs use it through `KRB5_CONFIG` (MIT) and `-Djava.security.krb5.conf` (Java).
//!
//! Cleanup is the servers': dropping the [`Kdc`] kills `krb5kdc` and removes the directory, and
//! a watchdog does the same when the test process dies. A missing tool is a loud panic that
//! names the packages to install, never a skip.

use std::fs;
use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{
    free_port, lock, loopback, make_temp_dir, spawn_watchdog, KerberosServerOptions, Running,
    START_ATTEMPTS,
};

/// The command that installs what [`Kdc`] and the GSSAPI client tests need.
pub const KRB5_FIX: &str =
    "apt-get update && apt-get install -y krb5-kdc krb5-admin-server krb5-user libkrb5-dev";

/// How long `krb5kdc` may take to accept connections.
const KDC_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running KDC serving one realm. Dropping it kills `krb5kdc` and deletes its directory
/// (database, stash, configuration, keytabs, log).
pub struct Kdc {
    dir: PathBuf,
    realm: String,
    port: u16,
    proc: Mutex<Option<Running>>,
}

impl std::fmt::Debug for Kdc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kdc")
            .field("realm", &self.realm)
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The admin tools live in `/usr/sbin`, which a non-login `PATH` may lack.
fn tool_path(tool: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// The loud panic for a krb5 program that is not installed.
fn missing_tool(tool: &str, e: &io::Error) -> ! {
    panic!(
        "\n\n========== zk-tests: MIT KERBEROS IS NOT INSTALLED ==========\n\
         The Kerberos tests run a real KDC and never skip: `{tool}` is missing ({e}).\n\
         Fix: `{KRB5_FIX}` (or run `scripts/test.sh`, which installs it)\n\
         ==============================================================\n"
    )
}

/// Runs a krb5 admin tool with the realm's configuration; panics with its output on failure and
/// loudly, naming [`KRB5_FIX`], when the tool is not installed.
fn krb5_tool(dir: &Path, tool: &str, args: &[&str]) -> Output {
    let out = Command::new(tool_path(tool))
        .args(args)
        .env("KRB5_CONFIG", dir.join("krb5.conf"))
        .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) if e.kind() == io::ErrorKind::NotFound => missing_tool(tool, &e),
        Err(e) => panic!("zk-tests: cannot run `{tool}`: {e}"),
        Ok(o) if !o.status.success() => panic!(
            "zk-tests: `{tool} {}` failed ({}):\n{}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(o) => o,
    }
}

impl Kdc {
    /// Creates realm `realm` (e.g. `EXAMPLE.COM`) and starts its KDC on a free loopback port;
    /// returns once it accepts connections. Panics loudly when the krb5 tools are missing, and
    /// with the KDC's log when it does not start.
    pub fn start(realm: &str) -> Kdc {
        let dir = make_temp_dir("kdc");
        let mut kdc = Kdc {
            dir,
            realm: realm.to_owned(),
            port: 0,
            proc: Mutex::new(None),
        };
        for attempt in 1..=START_ATTEMPTS {
            kdc.port = free_port();
            kdc.write_config();
            if attempt == 1 {
                // The database and its stash (the master key is test material only).
                krb5_tool(
                    &kdc.dir,
                    "kdb5_util",
                    &["create", "-s", "-r", realm, "-P", "zk-tests-master-key"],
                );
            }
            kdc.spawn();
            if kdc.wait_serving() {
                return kdc;
            }
            kdc.shutdown();
            if attempt == START_ATTEMPTS || !kdc.log_tail().contains("in use") {
                panic!(
                    "zk-tests: krb5kdc for {realm} on 127.0.0.1:{} did not start within {:?}\n{}",
                    kdc.port,
                    KDC_START_TIMEOUT,
                    kdc.log_tail()
                );
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn write_config(&self) {
        let d = self.dir.display();
        let (realm, port) = (&self.realm, self.port);
        let krb5 = format!(
            "[libdefaults]\n\
             \x20default_realm = {realm}\n\
             \x20dns_lookup_realm = false\n\
             \x20dns_lookup_kdc = false\n\
             \x20dns_canonicalize_hostname = false\n\
             \x20rdns = false\n\
             \x20udp_preference_limit = 1\n\
             \x20ticket_lifetime = 1h\n\
             \x20forwardable = false\n\
             [realms]\n\
             \x20{realm} = {{\n\
             \x20 kdc = 127.0.0.1:{port}\n\
             \x20}}\n\
             [domain_realm]\n\
             \x20localhost = {realm}\n"
        );
        let kdc = format!(
            "[kdcdefaults]\n\
             \x20kdc_listen = 127.0.0.1:{port}\n\
             \x20kdc_tcp_listen = 127.0.0.1:{port}\n\
             [realms]\n\
             \x20{realm} = {{\n\
             \x20 database_name = {d}/principal\n\
             \x20 key_stash_file = {d}/stash\n\
             \x20 acl_file = {d}/kadm5.acl\n\
             \x20 max_life = 1d\n\
             \x20 supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n\
             \x20}}\n\
             [logging]\n\
             \x20kdc = FILE:{d}/kdc.log\n\
             \x20admin_server = FILE:{d}/kadmin.log\n"
        );
        for (name, text) in [
            ("krb5.conf", krb5),
            ("kdc.conf", kdc),
            ("kadm5.acl", String::new()),
        ] {
            let path = self.dir.join(name);
            fs::write(&path, text)
                .unwrap_or_else(|e| panic!("zk-tests: cannot write {}: {e}", path.display()));
        }
    }

    fn spawn(&self) {
        let log = self.dir.join("krb5kdc.out");
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("zk-tests: cannot open {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("zk-tests: cannot clone a file handle: {e}"));
        let child = Command::new(tool_path("krb5kdc"))
            .args(["-n", "-r", &self.realm])
            .env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing_tool("krb5kdc", &e),
            Err(e) => panic!("zk-tests: cannot run krb5kdc: {e}"),
        };
        let watchdog = match spawn_watchdog(child.id(), &self.dir, None) {
            Ok(w) => w,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("zk-tests: cannot start the watchdog shell `sh`: {e}");
            }
        };
        *lock(&self.proc) = Some(Running {
            java: child,
            watchdog: Some(watchdog),
            reaped: false,
        });
    }

    fn wait_serving(&self) -> bool {
        let deadline = Instant::now() + KDC_START_TIMEOUT;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&loopback(self.port), Duration::from_millis(200)).is_ok()
            {
                return true;
            }
            let exited = lock(&self.proc)
                .as_mut()
                .is_none_or(|running| running.has_exited());
            if exited {
                return false;
            }
            thread::sleep(Duration::from_millis(25));
        }
        false
    }

    fn shutdown(&self) {
        let running = lock(&self.proc).take();
        if let Some(mut running) = running {
            running.shutdown(false);
        }
    }

    /// The realm, e.g. `EXAMPLE.COM`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The KDC's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The realm's client configuration: give it to MIT programs as `KRB5_CONFIG` and to
    /// Java as `-Djava.security.krb5.conf`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// The KDC's directory (deleted on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `name@REALM` for a principal name without a realm.
    pub fn principal(&self, name: &str) -> String {
        format!("{name}@{}", self.realm)
    }

    /// Creates principal `name` (in this realm) with a random key and exports the key to a
    /// new keytab file in the KDC's directory; returns the keytab's path.
    pub fn add_keytab(&self, name: &str) -> PathBuf {
        let file: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let keytab = self.dir.join(format!("{file}.keytab"));
        self.add_to_keytab(name, &keytab);
        keytab
    }

    /// Creates principal `name` with a random key and adds the key to `keytab` (created if
    /// missing): one client keytab can hold several users.
    pub fn add_to_keytab(&self, name: &str, keytab: &Path) {
        let principal = self.principal(name);
        self.kadmin(&format!("addprinc -randkey {principal}"));
        self.kadmin(&format!(
            "ktadd -k {} -norandkey {principal}",
            keytab.display()
        ));
    }

    /// Creates principal `name` with a password (for `kinit` tests).
    pub fn add_password(&self, name: &str, password: &str) {
        let principal = self.principal(name);
        self.kadmin(&format!("addprinc -pw {password} {principal}"));
    }

    /// `kinit` as principal `name` from its `keytab` into credential cache `ccache` (e.g.
    /// `DIR::/path/tkt-carol`, one cache of a DIR collection), as a user's ticket cache.
    pub fn kinit(&self, name: &str, keytab: &Path, ccache: &str) {
        let principal = self.principal(name);
        let keytab = keytab.display().to_string();
        krb5_tool(
            &self.dir,
            "kinit",
            &["-k", "-t", &keytab, "-c", ccache, &principal],
        );
    }

    /// `kdestroy` of credential cache `ccache`.
    pub fn kdestroy(&self, ccache: &str) {
        krb5_tool(&self.dir, "kdestroy", &["-q", "-c", ccache]);
    }

    /// One `kadmin.local` query against the realm's database.
    pub fn kadmin(&self, query: &str) -> String {
        let out = krb5_tool(&self.dir, "kadmin.local", &["-r", &self.realm, "-q", query]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A ZooKeeper server principal `zookeeper/<host>` with its keytab, as
    /// [`ServerOptions::kerberos`](crate::ServerOptions::kerberos).
    pub fn kerberos_server(&self, host: &str) -> KerberosServerOptions {
        let name = format!("zookeeper/{host}");
        let keytab = self.add_keytab(&name);
        KerberosServerOptions {
            principal: self.principal(&name),
            keytab,
            krb5_conf: self.krb5_conf(),
        }
    }

    /// The last lines of the KDC's log and its output, for panic messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["krb5kdc.out", "kdc.log"] {
            let path = self.dir.join(name);
            let body = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = body.lines().collect();
            let from = lines.len().saturating_sub(40);
            text.push_str(&format!(
                "---- {} ----\n{}\n",
                path.display(),
                lines[from..].join("\n")
            ));
        }
        text
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.shutdown();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
