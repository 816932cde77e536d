//! Watching: `watch`, recursive watches, `get -w`.

use std::time::Duration;

use serde_json::Value;

use super::support::{Env, Running};

#[test]
fn watch_count_sees_another_clients_change() {
    let env = Env::new("watch");
    env.run(&["create", "/w", "0"]).ok();
    let zk = env.client();
    let watching = Running::start(env.command(&["watch", "--count", "1", "/w"]));
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.set_data("/w", format!("v{i}"), None).unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, ["NodeDataChanged /w"]);
}

#[test]
fn recursive_watch_streams_json_events() {
    let env = Env::new("watch-r");
    env.run(&["create", "/tree"]).ok();
    let zk = env.client();
    let watching = Running::start(env.command(&["--json", "watch", "-r", "-n", "2", "/tree"]));
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.create(
            &format!("/tree/c{i}"),
            "",
            zk_blocking::CreateMode::Persistent,
        )
        .unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out.len(), 2, "{out:?}");
    for line in &out {
        let e: Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["type"], "NodeCreated", "{e}");
        assert!(e["path"].as_str().unwrap().starts_with("/tree/c"), "{e}");
    }
}

#[test]
fn get_w_prints_the_data_then_the_change() {
    let env = Env::new("get-w");
    env.run(&["create", "/g", "old"]).ok();
    let zk = env.client();
    let watching = Running::start(env.command(&["get", "-w", "/g"]));
    // The data first; only then change it, so "old" is what was read.
    assert_eq!(watching.line(Duration::from_secs(20)), "old");
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.set_data("/g", format!("new{i}"), None).unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out[0], "NodeDataChanged /g", "{out:?}");
    assert!(out[1].starts_with("new"), "{out:?}");
    // A delete: the event, and no data after it.
    let watching = Running::start(env.command(&["get", "-w", "/g"]));
    assert!(watching.line(Duration::from_secs(20)).starts_with("new"));
    zk.delete("/g", None).unwrap();
    let (code, out, _) = watching.drive_until_exit(|_| {});
    assert_eq!((code, out), (0, vec!["NodeDeleted /g".to_string()]));
    // --json: one document, the change in it. (Nothing is printed before the
    // change, so the test cannot wait for the read: it changes the data until
    // zkcli ends, and a change before the read only makes the read newer.)
    env.run(&["create", "/g", "old"]).ok();
    let watching = Running::start(env.command(&["--json", "get", "-w", "/g"]));
    let (code, out, err) = watching.drive_until_exit(|i| {
        zk.set_data("/g", format!("json{i}"), None).unwrap();
    });
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out.len(), 1, "{out:?}");
    let j: Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(j["path"], "/g");
    assert!(
        j["data"].is_string() && j["stat"]["version"].is_i64(),
        "{j}"
    );
    assert_eq!(j["change"]["type"], "NodeDataChanged");
    assert_eq!(j["change"]["path"], "/g");
    assert!(
        j["change"]["data"].as_str().unwrap().starts_with("json"),
        "{j}"
    );
    assert_eq!(j["change"]["encoding"], "utf8");
    assert!(
        j["change"]["stat"]["version"].as_i64() > j["stat"]["version"].as_i64(),
        "{j}"
    );
}
