//! Exit codes: usage errors (2), an unreachable or lost server (3).

use std::thread;
use std::time::{Duration, Instant};

use zk_tests::ZkServer;

use super::support::{bare_command, run, Env, Running};

#[test]
fn usage_errors_are_exit_2() {
    let env = Env::new("usage");
    for args in [
        &["ls", "--bogus", "/"][..],
        &["get"],
        &["frobnicate"],
        &["set", "/x"],
        &["set", "-v", "notanumber", "/x", "d"],
        &["--timeout", "soon", "ls", "/"],
        &["--auth", "nocolon", "ls", "/"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("error:"), "{args:?}: {r:?}");
    }
    // Found bad after parsing: still usage.
    env.run(&["create", "/n"]).ok();
    let r = env.run(&["setacl", "/n", "world:anyone:rz"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown permission 'z'"), "{r:?}");
    let r = env.run(&["get", "no-slash"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.starts_with("zkcli: InvalidPath: no-slash"),
        "{r:?}"
    );
    assert_eq!(env.run(&["4lw", "toolong"]).code, 2);
    // --help is not an error.
    let r = env.run(&["--help"]).ok();
    assert!(r.stdout.contains("Exit codes"), "{r:?}");
}

#[test]
fn unreachable_server_is_exit_3_within_seconds() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let history = std::env::temp_dir().join("zkcli-test-unreachable-history");
    let hosts = format!("127.0.0.1:{port}");
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--timeout", "2s", "ls", "/"]);
    let r = run(c, None);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(8), "{r:?}");
    // The message names the host and the last attempt's cause.
    assert!(
        r.stderr
            .starts_with(&format!("zkcli: cannot connect to {hosts}: "))
            && r.stderr.contains("refused"),
        "{r:?}"
    );
    // --connect-timeout bounds the wait by itself; --json says it as a document.
    let mut c = bare_command(&history);
    c.args([
        "-z",
        &hosts,
        "--connect-timeout",
        "1s",
        "--json",
        "get",
        "/x",
    ]);
    let r = run(c, None);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(6), "{r:?}");
    assert_eq!(r.json()["error"]["kind"], "ConnectionFailed");
    assert_eq!(r.json()["error"]["exit_code"], 3);
    // So does the shell, and a four-letter word (no session needed, no server there).
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--timeout", "1s"]);
    assert_eq!(run(c, Some("ls /\n")).code, 3);
    let mut c = bare_command(&history);
    c.args(["-z", &hosts, "--timeout", "1s", "4lw", "ruok"]);
    let r = run(c, None);
    assert_eq!(r.code, 3, "{r:?}");
}

#[test]
fn losing_the_server_mid_watch_is_exit_3() {
    let mut server = ZkServer::start();
    let env = Env::on(&server.connect_string(), "lost");
    env.run(&["create", "/w"]).ok();
    let watching = Running::start(env.command(&["--timeout", "4s", "watch", "/w"]));
    // Let it register, then take the server away.
    thread::sleep(Duration::from_millis(500));
    server.kill();
    let started = Instant::now();
    let (code, out, err) = watching.drive_until_exit(|_| {});
    assert_eq!(code, 3, "stdout {out:?} stderr {err:?}");
    assert!(err.starts_with("zkcli: SessionExpired: /w"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}
