//! ACLs and credentials: setacl/getacl, addauth with a digest ACL.

use super::support::{lines, Env, ALICE_DIGEST};

#[test]
fn setacl_getacl_round_trip() {
    let env = Env::new("acl");
    env.run(&["create", "/a", "x"]).ok();
    assert_eq!(
        env.run(&["getacl", "/a"]).ok().stdout,
        "world:anyone:cdrwa\n"
    );
    let acl = "world:anyone:rw,ip:127.0.0.1:cdrwa";
    env.run(&["setacl", "/a", acl]).ok();
    assert_eq!(
        env.run(&["getacl", "/a"]).ok().stdout,
        "world:anyone:rw\nip:127.0.0.1:cdrwa\n"
    );
    let j = env.run(&["--json", "getacl", "/a"]).ok().json();
    assert_eq!(j["acl"][0]["scheme"], "world");
    assert_eq!(j["acl"][0]["id"], "anyone");
    assert_eq!(j["acl"][0]["perms"], "rw");
    assert_eq!(j["acl"][1]["id"], "127.0.0.1");
    assert_eq!(j["stat"]["aversion"], 1);
    // The ACL version is checked.
    let r = env.run(&["setacl", "-v", "0", "/a", "world:anyone:r"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: BadVersion: /a\n"));
    env.run(&["setacl", "-v", "1", "/a", "world:anyone:r"]).ok();
    // Read-only for everyone now.
    let r = env.run(&["set", "/a", "y"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NoAuth: /a\n"));
    // create --acl sets it at once.
    env.run(&["create", "--acl", "world:anyone:cr", "/b"]).ok();
    assert_eq!(env.run(&["getacl", "/b"]).ok().stdout, "world:anyone:cr\n");
}

#[test]
fn addauth_and_a_digest_acl() {
    let env = Env::new("digest");
    let acl = format!("digest:{ALICE_DIGEST}:cdrwa");
    env.run(&["create", "--acl", &acl, "/secret", "s3cret"])
        .ok();
    // Without credentials: NoAuth.
    let r = env.run(&["get", "/secret"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "zkcli: NoAuth: /secret\n"));
    // Wrong credentials: NoAuth too.
    assert_eq!(
        env.run(&["--auth", "digest:alice:right", "get", "/secret"])
            .code,
        1
    );
    // --auth at connect.
    let r = env
        .run(&["--auth", "digest:alice:wrong", "get", "/secret"])
        .ok();
    assert_eq!(r.stdout, "s3cret");
    // The owner sees the full digest id (others would see it masked).
    let r = env
        .run(&["--auth", "digest:alice:wrong", "getacl", "/secret"])
        .ok();
    assert_eq!(r.stdout, format!("{acl}\n"));
    // addauth in the shell: the same session then reads and writes.
    let r = env.run_input(
        &[],
        "get /secret\naddauth digest alice:wrong\nwhoami\nget /secret\nset /secret new\nget /secret\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("zkcli: NoAuth: /secret"), "{r:?}");
    let out = lines(&r.stdout);
    assert!(out.contains(&"digest: alice"), "{out:?}");
    assert!(out.contains(&"s3cret") && out.contains(&"new"), "{out:?}");
    // One-shot addauth checks the credential and exits 0.
    env.run(&["addauth", "digest", "alice:wrong"]).ok();
}
