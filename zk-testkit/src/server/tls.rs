//! The TLS port's options ([`TlsServerOptions`], [`ClientAuth`]) and the PKCS12 key stores
//! they are made of.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

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
