//! TLS and SASL DIGEST-MD5 against a secured server (GSSAPI: `gssapi.rs`).

use std::path::PathBuf;
use std::time::Duration;

use zk_tests::ZkServer;

use super::support::{run, Env, Run};

/// A server with a TLS port (certificates made now) and a SASL DIGEST-MD5 user,
/// and the CA's PEM in a file.
fn secure_server() -> &'static (ZkServer, PathBuf) {
    static S: std::sync::OnceLock<(ZkServer, PathBuf)> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let ca = zk_tests::certs::TestCa::new("zkcli tests CA");
        let leaf = ca.leaf(&["127.0.0.1", "localhost"], "zk-server");
        let server = ZkServer::start_with(zk_tests::server::ServerOptions {
            tls: Some(zk_tests::server::TlsServerOptions::new(
                &leaf.cert,
                &leaf.key,
                ca.pem(),
                zk_tests::server::ClientAuth::Want,
            )),
            sasl_users: vec![("bob".into(), "bobsecret".into())],
            ..Default::default()
        });
        let dir = std::env::temp_dir().join(format!("zkcli-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, ca.pem()).unwrap();
        (server, file)
    })
}

#[test]
fn tls_commands_and_four_letter_words() {
    let (server, ca) = secure_server();
    let env = Env::on(&server.connect_string(), "tls");
    let secure = format!("{}/zkcli-tls", server.secure_connect_string());
    let ca = ca.to_str().unwrap();
    let tls = |args: &[&str]| {
        let mut all = vec!["-z", secure.as_str(), "--ca", ca];
        all.extend_from_slice(args);
        env.run(&all)
    };
    tls(&["create", "/x", "over tls"]).ok();
    assert_eq!(tls(&["get", "/x"]).ok().stdout.trim_end(), "over tls");
    assert_eq!(tls(&["4lw", "ruok"]).ok().stdout, "imok\n");
    // The node is there for a plain client too: the same server.
    assert_eq!(env.run(&["get", "/x"]).ok().stdout.trim_end(), "over tls");

    // A plain client on the TLS port, and a CA that did not sign the server: exit 3,
    // within the connect timeout, naming the cause.
    let r = env.run(&["-z", &secure, "--connect-timeout", "3s", "ls", "/"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    let other = zk_tests::certs::TestCa::new("not the server's CA");
    let other_file = env.dir.join("other-ca.pem");
    std::fs::write(&other_file, other.pem()).unwrap();
    let r = env.run(&[
        "-z",
        &secure,
        "--ca",
        other_file.to_str().unwrap(),
        "--connect-timeout",
        "3s",
        "ls",
        "/",
    ]);
    assert_refused(&r, "not signed by a trusted CA");
    // A name the certificate lacks fails; not checking the name passes.
    let r = tls(&[
        "--tls-server-name",
        "zk.example.invalid",
        "--connect-timeout",
        "3s",
        "ls",
        "/",
    ]);
    assert_refused(&r, "wrong host name");
    tls(&[
        "--tls-server-name",
        "zk.example.invalid",
        "--no-hostname-check",
        "ls",
        "/",
    ])
    .ok();
}

/// The TLS connection was refused for `cause`: exit 3 (no connection), naming the cause.
fn assert_refused(r: &Run, cause: &str) {
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(cause), "{r:?}");
}

#[test]
fn sasl_digest_md5_login() {
    let (server, _) = secure_server();
    let env = Env::on(&server.connect_string(), "sasl");
    let mut c = env.command(&["--json", "--sasl-user", "bob", "whoami"]);
    c.env("ZK_SASL_PASSWORD", "bobsecret");
    let r = run(c, None).ok();
    let j = r.json();
    let ids = j["identities"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i["scheme"] == "sasl" && i["user"] == "bob"),
        "{j}"
    );
    assert!(!r.stdout.contains("bobsecret") && !r.stderr.contains("bobsecret"));
    // A wrong password: exit 1 (the server's refusal), the reason named.
    let mut c = env.command(&["--sasl-user", "bob", "ls", "/"]);
    c.env("ZK_SASL_PASSWORD", "not-it");
    let r = run(c, None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("SASL"), "{r:?}");
    assert!(!r.stderr.contains("not-it"), "{r:?}");
}
