//! zk-recipes' Curator `PersistentNode` and `GroupMember` on a real ZooKeeper
//! 3.8 server beside Apache Curator 5.4 in a JVM, for every adapter: a
//! persistent node (ephemeral, and protected ephemeral-sequential) is made
//! again after a delete and after its session expires; a Rust group member
//! and a Java `GroupMember` list each other with their payloads, through a
//! payload change, the Rust member's node deleted and its session expired
//! (it comes back), and each side leaving; a `PersistentTtlNode` has Java's
//! layout (a container, a `touch` child with the TTL), lives while touched and
//! goes on its own a TTL after it is closed, as Java's does.

mod recipes_common;

use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use recipes_common::{eventually, run, unique, Adapter, WAIT};
use zk_client::CreateMode;
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tests::{ServerOptions, ZkServer};
use zk_tokio::recipes::curator::{
    self, GroupMember, NodeOptions, PersistentNode, PersistentTtlNode,
};

fn owner<Z: Zk>(zk: &Z, path: &str) -> Option<i64> {
    zk.exists(path).ok().flatten().map(|s| s.ephemeral_owner)
}

fn persistent_node<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("curator-pnode", Z::NAME);
    let admin = Z::connect_to(&cs);
    let zk = Z::connect_to(&cs);
    let path = format!("{base}/alive");
    let n = PersistentNode::new(zk.as_async(), &path, CreateMode::Ephemeral, b"up".to_vec());
    n.start();
    let created = if Z::NAME == "blocking" {
        n.wait_for_initial_create_blocking(WAIT)
    } else {
        Z::exec(n.wait_for_initial_create(WAIT))
    };
    assert!(created, "not created");
    assert_eq!(n.actual_path().as_deref(), Some(path.as_str()));
    assert_eq!(admin.get_data(&path).unwrap().0.as_ref(), b"up");
    assert_eq!(owner(&admin, &path), Some(zk.session().unwrap().id));
    let mut java = Curator::start(&cs);
    assert_eq!(java.ok(&format!("getHex c {path}")), "7570");

    // Deleted by someone else: made again.
    admin.delete(&path, None).unwrap();
    eventually(WAIT, "made again after a delete", || {
        admin.exists(&path).ok().flatten().is_some()
    });
    // New data, kept across re-creations.
    if Z::NAME == "blocking" {
        n.set_data_blocking(b"up2".to_vec()).unwrap()
    } else {
        Z::exec(n.set_data(b"up2".to_vec())).unwrap()
    }
    assert_eq!(java.ok(&format!("getHex c {path}")), "757032");
    // Its session expires: made again under the new one.
    let old = zk.session().unwrap();
    kill_session(&cs, &old, WAIT).unwrap();
    eventually(WAIT, "made again under the new session", || {
        let now = zk.session().map(|s| s.id);
        now.is_some_and(|s| s != old.id) && owner(&admin, &path) == now
    });
    assert_eq!(admin.get_data(&path).unwrap().0.as_ref(), b"up2");

    // Protected ephemeral-sequential: a new `_c_<uuid>-` name each time.
    let seq = PersistentNode::with_options(
        zk.as_async(),
        &format!("{base}/seq-"),
        CreateMode::EphemeralSequential,
        b"s".to_vec(),
        NodeOptions {
            protected: true,
            ..NodeOptions::default()
        },
    );
    seq.start();
    assert!(seq.wait_for_initial_create_blocking(WAIT));
    let first = seq.actual_path().unwrap();
    let name = first.rsplit('/').next().unwrap();
    assert!(
        name.starts_with("_c_") && name[39..].starts_with("-seq-"),
        "{name}"
    );
    admin.delete(&first, None).unwrap();
    eventually(WAIT, "the sequential node made again", || {
        seq.actual_path()
            .is_some_and(|p| p != first && admin.exists(&p).ok().flatten().is_some())
    });

    Z::exec(n.close());
    Z::exec(seq.close());
    assert!(
        admin.exists(&path).unwrap().is_none(),
        "close left the node"
    );
    let kids = admin.get_children(&base).unwrap_or_default();
    assert!(kids.is_empty(), "close left {kids:?}");
    zk.close().unwrap();
    admin.close().unwrap();
}

fn group_members<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let group = format!("{}/group", unique("curator-group", Z::NAME));
    let admin = Z::connect_to(&cs);
    let zk = Z::connect_to(&cs);
    let mut java = Curator::start(&cs);
    java.ok(&format!("member jm c {group} java-1 jp"));
    let me = GroupMember::new(zk.as_async(), &group, "rust-1", b"rp".to_vec()).unwrap();
    me.start();
    let members = || {
        let m = if Z::NAME == "blocking" {
            me.current_members_blocking()
        } else {
            Z::exec(me.current_members())
        }
        .unwrap();
        m.into_iter()
            .map(|(k, v)| format!("{k}={}", String::from_utf8(v).unwrap()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let both = |java: &mut Curator, want: &str| {
        eventually(WAIT, &format!("Java lists {want}"), || {
            java.ok("members jm") == want
        });
        eventually(WAIT, &format!("Rust lists {want}"), || members() == want);
    };
    both(&mut java, "java-1=jp,rust-1=rp");
    let path = format!("{group}/rust-1");
    assert_eq!(
        owner(&admin, &path),
        Some(zk.session().unwrap().id),
        "not ephemeral"
    );

    Z::exec(me.set_payload(b"rp2".to_vec())).unwrap();
    both(&mut java, "java-1=jp,rust-1=rp2");

    admin.delete(&path, None).unwrap();
    both(&mut java, "java-1=jp,rust-1=rp2");
    let old = zk.session().unwrap();
    kill_session(&cs, &old, WAIT).unwrap();
    eventually(WAIT, "back under the new session", || {
        let now = zk.session().map(|s| s.id);
        now.is_some_and(|s| s != old.id) && owner(&admin, &path) == now
    });
    both(&mut java, "java-1=jp,rust-1=rp2");

    java.ok("memberClose jm");
    eventually(WAIT, "Java left", || members() == "rust-1=rp2");
    java.ok(&format!("member jm2 c {group} java-2 -"));
    both_after_close(&mut java, &me);
    zk.close().unwrap();
    admin.close().unwrap();

    fn both_after_close(java: &mut Curator, me: &GroupMember) {
        eventually(WAIT, "Java's second member sees Rust", || {
            java.ok("members jm2") == "java-2=,rust-1=rp2"
        });
        zk_client::blocking::block_on(me.close(), Some(Duration::from_secs(30)));
        eventually(WAIT, "Java sees Rust leave", || {
            java.ok("members jm2") == "java-2="
        });
    }
}

/// A server with TTL nodes, sweeping containers and TTLs every 100 ms.
fn ttl_server() -> &'static ZkServer {
    static S: OnceLock<ZkServer> = OnceLock::new();
    S.get_or_init(|| {
        ZkServer::start_with(ServerOptions {
            extra_jvm_flags: vec![
                "-Dzookeeper.extendedTypesEnabled=true".into(),
                "-Dznode.container.checkIntervalMs=100".into(),
            ],
            ..ServerOptions::default()
        })
    })
}

fn ttl_node<Z: Adapter>() {
    let cs = ttl_server().connect_string();
    let base = unique("curator-ttl", Z::NAME);
    let (rp, jp) = (format!("{base}/rust"), format!("{base}/java"));
    let (rt, jt) = (format!("{rp}/touch"), format!("{jp}/touch"));
    let admin = Z::connect_to(&cs);
    let zk = Z::connect_to(&cs);
    let ttl = Duration::from_millis(1000);
    let n = PersistentTtlNode::new(zk.as_async(), &rp, ttl, b"r".to_vec()).unwrap();
    n.start();
    assert!(Z::exec(n.wait_for_initial_create(WAIT)), "not created");
    let mut java = Curator::start(&cs);
    java.ok(&format!("ttlnode jt c {jp} 1000 j"));
    eventually(WAIT, "both touch nodes made", || {
        admin.exists(&rt).ok().flatten().is_some() && admin.exists(&jt).ok().flatten().is_some()
    });
    // (The server reports 0 as the owner of containers and TTL nodes alike, so
    // their modes show in how they live: below.)
    assert_eq!(admin.get_data(&rp).unwrap().0.as_ref(), b"r");
    assert_eq!(
        admin.get_data(&rt).unwrap().0.as_ref(),
        curator::local_address().as_bytes()
    );
    // Touched: alive three TTLs later.
    thread::sleep(ttl * 3);
    assert!(
        admin.exists(&rt).unwrap().is_some(),
        "Rust's touch node expired while touched"
    );
    assert!(
        admin.exists(&jt).unwrap().is_some(),
        "Java's touch node expired while touched"
    );
    // Closed: both go on their own once the TTL passed.
    n.close();
    java.ok("ttlClose jt");
    assert!(
        admin.exists(&rp).unwrap().is_some(),
        "close deleted the node"
    );
    eventually(WAIT, "expired after close", || {
        admin.exists(&rp).ok().flatten().is_none() && admin.exists(&jp).ok().flatten().is_none()
    });
    zk.close().unwrap();
    admin.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [persistent_node, ttl_node, group_members]);
