//! Connects to the ZooKeeper given as the first argument (default 127.0.0.1:2181),
//! creates an ephemeral node, watches it from a spawned task, changes it and closes.
//! On tokio's default (multi-thread) runtime: calls and watches are `Send` futures,
//! so any task can wait on them, and none waits on another.
use std::time::Duration;

use zk_tokio::{ClientBuilder, CreateMode};

#[tokio::main]
async fn main() -> zk_tokio::Result<()> {
    let hosts = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    // kazoo's and Curator's settings are the builder's (here the session timeout
    // the client asks for; the server may grant another).
    let builder = ClientBuilder::new(&hosts).session_timeout(Duration::from_secs(10));
    let zk = zk_tokio::connect(&builder).await?;
    let path = zk
        .create("/example-tokio-", "hello", CreateMode::EphemeralSequential)
        .await?;
    let (data, stat, watch) = zk.get_data_watch(&path).await?;
    let watcher = tokio::spawn(watch);
    println!("{path} = {:?}", String::from_utf8_lossy(&data));
    zk.set_data(&path, "bye", Some(stat.version)).await?;
    let event = watcher.await.expect("the watching task panicked")?;
    println!("watch: {event:?}");
    zk.close().await
}
