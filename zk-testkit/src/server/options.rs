//! [`ServerOptions`]: what a test may ask of a server (TTL nodes, read-only mode, SASL and
//! Kerberos, extra `zoo.cfg` lines and JVM flags), and how they become JVM flags and
//! `zoo.cfg` lines.

use std::fs;
use std::path::{Path, PathBuf};

use super::tls::TlsServerOptions;

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
    /// Standalone servers ([`ZkServer`](super::ZkServer)) only; an [`Ensemble`](crate::Ensemble) ignores it. Default none.
    pub tls: Option<TlsServerOptions>,
    /// SASL DIGEST-MD5 users (name, password): a JAAS file with ZooKeeper's `DigestLoginModule`
    /// (`-Djava.security.auth.login.config`) and the SASL auth provider in zoo.cfg. Clients
    /// that authenticate as `bob` are `sasl:bob` in ACLs. Every member of an [`Ensemble`](crate::Ensemble)
    /// gets the same. Default none.
    pub sasl_users: Vec<(String, String)>,
    /// SASL GSSAPI (Kerberos): a JAAS `Server` section with Java's `Krb5LoginModule` reading
    /// the service principal's key from a keytab, `-Djava.security.krb5.conf`, and the SASL
    /// auth provider in zoo.cfg (see [`Kdc::kerberos_server`](crate::Kdc::kerberos_server)).
    /// Exclusive with [`sasl_users`](ServerOptions::sasl_users): one JAAS `Server` section
    /// serves one mechanism here (a start with both panics). Every member of an
    /// [`Ensemble`](crate::Ensemble) gets the same principal and keytab: they all listen on 127.0.0.1, which
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
