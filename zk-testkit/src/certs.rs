//! Certificates made at test time (rcgen), for TLS servers and clients in tests:
//! a CA, and leaves it signs for the names a test dials.
//!
//! ```no_run
//! use zk_testkit::certs::TestCa;
//! use zk_testkit::{ClientAuth, ServerOptions, TlsServerOptions, ZkServer};
//!
//! let ca = TestCa::new("my tests' CA");
//! let server_cert = ca.leaf(&["127.0.0.1", "localhost"], "zk-server");
//! let server = ZkServer::start_with(ServerOptions {
//!     tls: Some(TlsServerOptions::new(&server_cert.cert, &server_cert.key, ca.pem(), ClientAuth::Want)),
//!     ..ServerOptions::default()
//! });
//! // Clients trust `ca.pem()` and dial server.secure_connect_string().
//! # let _ = server;
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate (PEM, with the CA's certificate after it: the chain a server
/// presents) and its private key (PEM).
#[derive(Clone)]
pub struct CertPair {
    /// The certificate chain, leaf first.
    pub cert: String,
    /// The private key.
    pub key: String,
}

impl std::fmt::Debug for CertPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertPair")
            .field("cert", &format_args!("{} bytes of PEM", self.cert.len()))
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

/// A certificate authority for one test run.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("self-sign the CA").pem();
        TestCa { params, key, pem }
    }

    /// The CA's certificate (what clients and servers trust).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for `names` (DNS names and IP addresses, as SANs) with common
    /// name `cn`, valid now, for both server and client authentication.
    pub fn leaf(&self, names: &[&str], cn: &str) -> CertPair {
        self.make_leaf(names, cn, false)
    }

    /// The same, valid only in 2000 (expired).
    pub fn expired_leaf(&self, names: &[&str], cn: &str) -> CertPair {
        self.make_leaf(names, cn, true)
    }

    fn make_leaf(&self, names: &[&str], cn: &str, expired: bool) -> CertPair {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("leaf parameters");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "zk-testkit");
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = p.signed_by(&key, &issuer).expect("sign the leaf");
        CertPair {
            cert: format!("{}{}", cert.pem(), self.pem),
            key: key.serialize_pem(),
        }
    }
}
