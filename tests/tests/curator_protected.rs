//! zk-recipes' Curator protected creates against a real ZooKeeper 3.8 server
//! behind the kit's fault proxy, for every adapter: a create whose answer is
//! lost (the proxy cuts the connection before the reply) adopts the node the
//! server made, found by its `_c_<uuid>-` prefix, and leaves no second node;
//! missing parents are made as containers, as Curator's are (the server's
//! container sweep removes them once empty).

mod recipes_common;

use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use recipes_common::{eventually, run, unique, Adapter, WAIT};
use zk_client::{CreateMode, SessionState};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};
use zk_tests::proxy::Proxy;
use zk_tests::{ServerOptions, Suspensions, ZkServer};
use zk_tokio::recipes::curator::ProtectedCreate;

fn create<Z: Adapter>(zk: &Z, pc: &ProtectedCreate) -> String {
    if Z::NAME == "blocking" {
        pc.run_blocking(zk.as_async()).unwrap().0
    } else {
        Z::exec(pc.run(zk.as_async())).unwrap().0
    }
}

fn lost_reply_adopted<Z: Adapter>() {
    let server = server();
    let proxy = Proxy::start(server.addr());
    let admin = Z::connect_to(&server.connect_string());
    let zk = Z::connect_to(&proxy.connect_string());
    let cuts = Suspensions::count(&zk);
    let base = unique("curator-protected", Z::NAME);
    let session = zk.session().unwrap().id;
    for (i, mode) in [
        CreateMode::EphemeralSequential,
        CreateMode::PersistentSequential,
        CreateMode::Ephemeral,
    ]
    .into_iter()
    .enumerate()
    {
        let parent = format!("{base}/m{i}");
        // The parents are made first (as containers), so that the create
        // is the request whose answer is lost.
        let first = create(&zk, &ProtectedCreate::new(&format!("{parent}/warm-"), mode));
        zk.delete(&first, None).unwrap();
        eventually(WAIT, "connected", || zk.state() == SessionState::Connected);
        let before = cuts.get();
        proxy.cut_after(0);
        let path = create(
            &zk,
            &ProtectedCreate::new(&format!("{parent}/node-"), mode).data("v"),
        );
        assert_eq!(cuts.get(), before + 1, "{mode:?}: the answer was not cut");
        thread::sleep(Duration::from_millis(300));
        let kids = admin.get_children(&parent).unwrap();
        assert_eq!(
            kids.len(),
            1,
            "{mode:?}: created twice after the lost answer: {kids:?}"
        );
        assert_eq!(
            format!("{parent}/{}", kids[0]),
            path,
            "{mode:?}: not the adopted node"
        );
        let name = &kids[0];
        assert!(
            name.starts_with("_c_") && name[39..].starts_with("-node-"),
            "{name}"
        );
        assert_eq!(admin.get_data(&path).unwrap().0, "v");
        assert_eq!(zk.session().unwrap().id, session, "the session changed");
        zk.delete(&path, None).unwrap();
    }
    cuts.remove(&zk);
    zk.close().unwrap();
    // The parents are containers, as Curator makes them: once empty, the
    // server's container sweep (every 100 ms here) removes them. (A client
    // cannot see it otherwise: ZooKeeper reports a container's owner as 0.)
    eventually(WAIT, "the container parents removed once empty", || {
        admin.exists(&base).unwrap().is_none()
    });
    admin.close().unwrap();
}

/// A server whose container sweep runs every 100 ms (ZooKeeper's default is a
/// minute).
fn server() -> &'static ZkServer {
    static S: OnceLock<ZkServer> = OnceLock::new();
    S.get_or_init(|| {
        ZkServer::start_with(ServerOptions {
            extra_jvm_flags: vec!["-Dznode.container.checkIntervalMs=100".into()],
            ..ServerOptions::default()
        })
    })
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [lost_reply_adopted]);
