//! What zkcli prints besides plain text: JSON documents, null/empty/binary data, `--trace`.

use serde_json::Value;
use zk_blocking::Data;
use zk_tests::shared_server;

use super::support::{lines, Env};

#[test]
fn json_documents_have_the_fields() {
    let env = Env::new("json");
    let j = env.run(&["--json", "create", "/j", "hello"]).ok().json();
    assert_eq!(j["path"], "/j");
    assert_eq!(j["stat"]["version"], 0);
    let r = env.run(&["get", "--json", "/j"]).ok();
    let j = r.json();
    assert_eq!(j["path"], "/j");
    assert_eq!(j["data"], "hello");
    assert_eq!(j["encoding"], "utf8");
    let stat = j["stat"].as_object().unwrap();
    for f in [
        "czxid",
        "mzxid",
        "pzxid",
        "ctime",
        "mtime",
        "version",
        "cversion",
        "aversion",
        "ephemeralOwner",
        "dataLength",
        "numChildren",
    ] {
        assert!(stat[f].is_i64(), "{f} in {stat:?}");
    }
    assert_eq!(stat["dataLength"], 5);
    env.run(&["create", "/j/k1"]).ok();
    env.run(&["create", "/j/k0"]).ok();
    let j = env.run(&["--json", "ls", "/j"]).ok().json();
    assert_eq!(
        j,
        serde_json::json!({"path": "/j", "children": ["k0", "k1"]})
    );
    let j = env.run(&["--json", "ls", "-R", "-s", "/j"]).ok().json();
    assert_eq!(j["paths"], serde_json::json!(["/j", "/j/k0", "/j/k1"]));
    assert_eq!(j["stat"]["numChildren"], 2);
    let j = env.run(&["--json", "stat", "/j"]).ok().json();
    assert_eq!(j["stat"]["numChildren"], 2);
    let j = env.run(&["--json", "delete", "/j/k0"]).ok().json();
    assert_eq!(j["deleted"], true);
    let j = env.run(&["--json", "sync", "/j"]).ok().json();
    assert_eq!(j["path"], "/j");
    let j = env.run(&["--json", "whoami"]).ok().json();
    assert_eq!(j["identities"][0]["scheme"], "ip");
    let j = env.run(&["--json", "config"]).ok().json();
    assert!(j.get("data").is_some() && j["stat"].is_object(), "{j}");
    // Errors are documents too (and the message still goes to stderr).
    let r = env.run(&["--json", "get", "/nope"]);
    assert_eq!(r.code, 1);
    let e = r.json();
    assert_eq!(e["error"]["kind"], "NoNode");
    assert_eq!(e["error"]["code"], -101);
    assert_eq!(e["error"]["path"], "/nope");
    assert_eq!(r.stderr, "zkcli: NoNode: /nope\n");
}

#[test]
fn null_empty_and_binary_data_in_json() {
    let env = Env::new("nulls");
    env.run(&["create", "/null"]).ok();
    env.run(&["create", "/empty", ""]).ok();
    let zk = env.client();
    zk.create(
        "/bin",
        [0xffu8, 0x00, 0x10],
        zk_blocking::CreateMode::Persistent,
    )
    .unwrap();
    // What was written is what the library reads back.
    assert!(zk.get_data("/null").unwrap().0.is_null());
    assert_eq!(zk.get_data("/empty").unwrap().0, Data::new(""));
    let null = env.run(&["--json", "get", "/null"]).ok().json();
    assert_eq!(null["data"], Value::Null);
    assert_eq!(null["encoding"], Value::Null);
    let empty = env.run(&["--json", "get", "/empty"]).ok().json();
    assert_eq!(empty["data"], "");
    assert_eq!(empty["encoding"], "utf8");
    let bin = env.run(&["--json", "get", "/bin"]).ok().json();
    assert_eq!(bin["data"], "/wAQ");
    assert_eq!(bin["encoding"], "base64");
    // Human output of both is nothing at all.
    assert_eq!(env.run(&["get", "/null"]).ok().stdout, "");
    assert_eq!(env.run(&["get", "/empty"]).ok().stdout, "");
}

/// Issue 23: `--trace` prints each request's span on stderr as it ends (the
/// operation and path, the server that answered, the latency, the result);
/// stdout stays the command's.
#[test]
fn trace_prints_each_request_on_stderr() {
    let env = Env::new("trace");
    env.run(&["create", "/t", "x"]).ok();
    let r = env.run(&["--trace", "get", "/t"]).ok();
    assert_eq!(r.stdout, "x");
    let port = shared_server().connect_string();
    // A getData of `path` answered by the shared server, ending in `result`.
    let traced = |stderr: &str, path: &str, result: &str| {
        let start = format!("trace: getData {path} {port} ");
        lines(stderr)
            .iter()
            .any(|l| l.starts_with(&start) && l.ends_with(result))
    };
    assert!(traced(&r.stderr, "/t", "ms ok"), "{r:?}");
    let r = env.run(&["--trace", "get", "/missing"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(traced(&r.stderr, "/missing", "ms NoNode (-101)"), "{r:?}");
    // Without --trace, nothing of it.
    let r = env.run(&["get", "/t"]).ok();
    assert_eq!(r.stderr, "");
}
