//! SASL GSSAPI (Kerberos) against a real MIT KDC (with the `gssapi` feature).

use std::process::Command;
use std::time::Duration;

use zk_tests::ZkServer;

use super::support::{bare_command, run};

/// `--sasl-gssapi` against a real MIT KDC and a Kerberos ZooKeeper server: the
/// Kerberos settings reach zkcli the way they reach any Kerberos program, through
/// its environment (set on the child only).
#[cfg(feature = "gssapi")]
#[test]
fn sasl_gssapi_login() {
    let kdc = zk_testkit::Kdc::start("EXAMPLE.COM");
    let server = ZkServer::start_with(zk_tests::server::ServerOptions {
        kerberos: Some(kdc.kerberos_server("localhost")),
        ..Default::default()
    });
    let alice = kdc.add_keytab("alice");
    let hosts = format!("localhost:{}", server.port());
    let history = std::env::temp_dir().join(format!("zkcli-krb-{}", std::process::id()));
    // Each run gets a ticket cache of its own (the library stores the tickets it
    // gets from the client keytab there).
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let krb = |c: &mut Command, keytab: &std::path::Path| {
        let n = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ccache = kdc.dir().join(format!("zkcli-ccache-{n}"));
        c.env("KRB5_CONFIG", kdc.krb5_conf())
            .env("KRB5_CLIENT_KTNAME", keytab)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    };
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--sasl-gssapi", "--json", "whoami"]);
    krb(&mut c, &alice);
    let r = run(c, None).ok();
    let j = r.json();
    assert!(
        j["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["scheme"] == "sasl" && i["user"] == "alice@EXAMPLE.COM"),
        "{j}"
    );
    // No credentials for the client: exit 1 at once, the cause named.
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--sasl-gssapi", "ls", "/"]);
    krb(&mut c, &kdc.dir().join("no-such.keytab"));
    let r = run(c, None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("SASL"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{r:?}");
    // A service the KDC does not know.
    let mut c = bare_command(&history);
    c.args([
        "-z",
        &hosts,
        "--sasl-gssapi",
        "--sasl-service",
        "zk",
        "ls",
        "/",
    ]);
    krb(&mut c, &alice);
    let r = run(c, None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("zk/localhost"), "{r:?}");
}
