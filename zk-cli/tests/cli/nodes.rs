//! The node commands: create, get, ls, tree, set, delete.

use zk_blocking::ClientBuilder;
use zk_tests::shared_server;

use super::support::{bare_command, lines, run, Env};

#[test]
fn create_then_get() {
    let env = Env::new("create-get");
    let r = env.run(&["create", "/x", "hi"]).ok();
    assert_eq!(r.stdout, "/x\n");
    // Raw bytes to a pipe: no newline added.
    let r = env.run(&["get", "/x"]).ok();
    assert_eq!(r.stdout, "hi");
    assert_eq!(r.stderr, "");
    let r = env.run(&["get", "-s", "/x"]).ok();
    let l = lines(&r.stdout);
    assert_eq!(l[0], "hi");
    assert_eq!(l.len(), 12, "{l:?}");
    for want in [
        "dataVersion = 0",
        "dataLength = 2",
        "numChildren = 0",
        "aclVersion = 0",
    ] {
        assert!(l.contains(&want), "{want} in {l:?}");
    }
    assert!(l[1].starts_with("cZxid = 0x"), "{l:?}");
    assert!(
        l[2].starts_with("ctime = 20") && l[2].ends_with('Z'),
        "{l:?}"
    );
    // The same node seen by the library.
    let (data, _) = env.client().get_data("/x").unwrap();
    assert_eq!(data, "hi");
    // $ZK_HOSTS stands in for -z.
    let mut c = bare_command(&env.history);
    c.env("ZK_HOSTS", &env.hosts).args(["get", "/x"]);
    assert_eq!(run(c, None).ok().stdout, "hi");
    // A second create is NodeExists.
    let r = env.run(&["create", "/x", "again"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr, "zkcli: NodeExists: /x\n");
}

#[test]
fn get_of_a_missing_node_is_exit_1() {
    let env = Env::new("missing");
    let r = env.run(&["get", "/missing"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "zkcli: NoNode: /missing\n");
    for args in [
        &["stat", "/missing"][..],
        &["ls", "/missing"],
        &["delete", "/missing"],
        &["delete", "-r", "/missing"],
        &["set", "/missing", "x"],
        &["getacl", "/missing"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert_eq!(r.stderr, "zkcli: NoNode: /missing\n", "{args:?}");
    }
}

#[test]
fn ls_sorted_recursive_and_with_stat() {
    let env = Env::new("ls");
    for p in ["/b", "/a", "/c", "/c/z", "/c/y", "/c/y/deep"] {
        env.run(&["create", p, "d"]).ok();
    }
    assert_eq!(env.run(&["ls", "/"]).ok().stdout, "a\nb\nc\n");
    assert_eq!(env.run(&["ls", "/c"]).ok().stdout, "y\nz\n");
    assert_eq!(
        env.run(&["ls", "-R", "/"]).ok().stdout,
        "/\n/a\n/b\n/c\n/c/y\n/c/y/deep\n/c/z\n"
    );
    assert_eq!(
        env.run(&["ls", "-R", "/c"]).ok().stdout,
        "/c\n/c/y\n/c/y/deep\n/c/z\n"
    );
    let r = env.run(&["ls", "-s", "/c"]).ok();
    let l = lines(&r.stdout);
    assert_eq!(&l[..2], ["y", "z"]);
    assert!(l.contains(&"numChildren = 2"), "{l:?}");
    // An empty node lists nothing.
    assert_eq!(env.run(&["ls", "/a"]).ok().stdout, "");
}

#[test]
fn tree_draws_the_subtree() {
    let env = Env::new("tree");
    for p in [
        "/app",
        "/app/config",
        "/app/config/db",
        "/app/locks",
        "/zeta",
    ] {
        env.run(&["create", p]).ok();
    }
    let want = "/\n\
                ├── app\n\
                │   ├── config\n\
                │   │   └── db\n\
                │   └── locks\n\
                └── zeta\n";
    assert_eq!(env.run(&["tree"]).ok().stdout, want);
    assert_eq!(
        env.run(&["tree", "/app"]).ok().stdout,
        "/app\n├── config\n│   └── db\n└── locks\n"
    );
    let j = env.run(&["--json", "tree", "/app"]).ok().json();
    assert_eq!(j["path"], "/app");
    assert_eq!(j["children"][0]["name"], "config");
    assert_eq!(j["children"][0]["children"][0]["path"], "/app/config/db");
    assert_eq!(j["children"][1]["name"], "locks");
    assert_eq!(j["children"][1]["children"], serde_json::json!([]));
    let r = env.run(&["tree", "/nope"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NoNode: /nope\n"));
}

#[test]
fn set_with_versions() {
    let env = Env::new("set");
    env.run(&["create", "/v", "one"]).ok();
    let r = env.run(&["set", "-v", "5", "/v", "two"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr, "zkcli: BadVersion: /v\n");
    assert_eq!(env.run(&["get", "/v"]).ok().stdout, "one");
    env.run(&["set", "-v", "0", "/v", "two"]).ok();
    assert_eq!(env.run(&["get", "/v"]).ok().stdout, "two");
    // Version 0 is gone now.
    assert_eq!(env.run(&["set", "-v", "0", "/v", "three"]).code, 1);
    // No version: any.
    let r = env.run(&["set", "-s", "/v", "three"]).ok();
    assert!(lines(&r.stdout).contains(&"dataVersion = 2"), "{r:?}");
    let j = env.run(&["--json", "set", "/v", "four"]).ok().json();
    assert_eq!(j["path"], "/v");
    assert_eq!(j["stat"]["version"], 3);
    assert_eq!(j["stat"]["dataLength"], 4);
}

#[test]
fn create_modes_and_parents() {
    let env = Env::new("modes");
    let r = env.run(&["create", "/deep/er/node", "x"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "zkcli: NoNode: /deep/er/node\n")
    );
    assert_eq!(
        env.run(&["create", "--parents", "/deep/er/node", "x"])
            .ok()
            .stdout,
        "/deep/er/node\n"
    );
    assert_eq!(env.run(&["get", "/deep/er/node"]).ok().stdout, "x");
    // Sequential: the server's suffix is in the printed path.
    let seq = env.run(&["create", "-s", "/seq-", "s"]).ok().stdout;
    let name = seq.trim_end().strip_prefix("/seq-").expect("printed path");
    assert!(
        name.len() == 10 && name.bytes().all(|b| b.is_ascii_digit()),
        "{seq:?}"
    );
    // Ephemeral: gone once the creating zkcli has ended (it closes its session).
    assert_eq!(env.run(&["create", "-e", "/eph"]).ok().stdout, "/eph\n");
    assert_eq!(env.run(&["stat", "/eph"]).code, 1);
    env.run(&["create", "-c", "/box"]).ok();
    env.run(&["create", "-t", "60000", "/ttl", "t"]).ok();
    env.run(&["create", "-s", "-t", "60000", "/ttlseq-"]).ok();
    assert_eq!(env.run(&["get", "/ttl"]).ok().stdout, "t");
    // Conflicting flags are usage errors.
    for args in [
        &["create", "-c", "-e", "/bad"][..],
        &["create", "-e", "-t", "10", "/bad"],
        &["create", "-c", "-s", "/bad"],
    ] {
        assert_eq!(env.run(args).code, 2, "{args:?}");
    }
    // Under a chroot the nodes are where the chroot says.
    let root =
        zk_blocking::connect(&ClientBuilder::new(&shared_server().connect_string())).unwrap();
    let (d, _) = root.get_data("/zkcli-modes/deep/er/node").unwrap();
    assert_eq!(d, "x");
}

#[test]
fn delete_plain_versioned_and_recursive() {
    let env = Env::new("delete");
    for p in ["/d", "/d/a", "/d/a/b", "/lone"] {
        env.run(&["create", p]).ok();
    }
    let r = env.run(&["delete", "/d"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NotEmpty: /d\n"));
    let r = env.run(&["delete", "-v", "3", "/lone"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "zkcli: BadVersion: /lone\n")
    );
    assert_eq!(env.run(&["delete", "-v", "0", "/lone"]).ok().stdout, "");
    env.run(&["delete", "-r", "/d"]).ok();
    assert_eq!(env.run(&["ls", "/"]).ok().stdout, "");
    // -v and -r together make no sense.
    assert_eq!(env.run(&["delete", "-r", "-v", "1", "/x"]).code, 2);
}
