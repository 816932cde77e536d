//! A short tour of the client on zk-tokio, against a throwaway ZooKeeper that
//! this program starts on a free loopback port and stops at the end.

use std::time::{Duration, Instant};

use zk_tests::server::ZkServer;
use zk_tokio::{AddWatchMode, ClientBuilder, CreateMode, Op};

#[tokio::main(flavor = "current_thread")]
async fn main() -> zk_tokio::Result<()> {
    let t0 = Instant::now();
    let server = ZkServer::start();
    println!(
        "started ZooKeeper on {} in {:?}",
        server.connect_string(),
        t0.elapsed()
    );

    let zk = zk_tokio::connect(&ClientBuilder::new(&format!(
        "{}/demo",
        server.connect_string()
    )))
    .await?;
    let info = zk.session().expect("connected");
    println!(
        "session 0x{:x}, negotiated timeout {:?}, state {:?}",
        info.id,
        info.timeout,
        zk.state()
    );
    println!("server version {:?}", zk_tokio::server_version(&zk).await?);

    // The chroot must exist before paths under it can be used.
    let root = zk_tokio::connect(&ClientBuilder::new(&server.connect_string())).await?;
    root.ensure_path("/demo").await?;

    zk.ensure_path("/app/config").await?;
    let path = zk
        .create("/app/config/a", "hello", CreateMode::Ephemeral)
        .await?;
    let (data, stat, watch) = zk.get_data_watch(&path).await?;
    println!(
        "created {path}: {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );

    let mut all = zk
        .add_watch("/app", AddWatchMode::PersistentRecursive)
        .await?;
    zk.set_data(&path, "world", Some(stat.version)).await?;
    println!("one-shot watch fired: {:?}", watch.await?);
    println!("recursive watch saw: {:?}", all.next().await);

    for i in 0..3 {
        zk.create(
            "/app/q-",
            format!("item {i}"),
            CreateMode::PersistentSequential,
        )
        .await?;
    }
    let mut kids = zk.get_children("/app").await?;
    kids.sort();
    println!("children of /app: {kids:?}");

    let res = zk
        .multi(vec![
            Op::create("/app/t", "x", CreateMode::Persistent),
            Op::check("/app/config", 42),
        ])
        .await;
    println!("multi with a failing check: {res:?}");
    println!(
        "/app/t exists after the failed multi: {}",
        zk.exists("/app/t").await?.is_some()
    );

    println!("whoami: {:?}", zk.whoami().await?);
    zk.delete_recursive("/app").await?;
    zk.close().await?;
    root.close().await?;
    println!(
        "closed; state {:?}; tour took {:?}",
        zk.state(),
        t0.elapsed()
    );
    drop(server);
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
