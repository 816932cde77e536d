//! Connects to the ZooKeeper given as the first argument (default 127.0.0.1:2181),
//! creates an ephemeral node, watches it, changes it and closes.
use zk_tokio::{ClientBuilder, CreateMode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> zk_tokio::Result<()> {
    let hosts = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let zk = zk_tokio::connect(&ClientBuilder::new(&hosts)).await?;
    let path = zk
        .create("/example-tokio-", "hello", CreateMode::EphemeralSequential)
        .await?;
    let (data, stat, watch) = zk.get_data_watch(&path).await?;
    println!("{path} = {:?}", String::from_utf8_lossy(&data));
    zk.set_data(&path, "bye", Some(stat.version)).await?;
    println!("watch: {:?}", watch.await?);
    zk.close().await
}
