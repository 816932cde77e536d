//! Connects to the ZooKeeper given as the first argument (default 127.0.0.1:2181),
//! creates an ephemeral node, watches it, changes it and closes.
use zk_smol::{ClientBuilder, CreateMode};

fn main() -> zk_smol::Result<()> {
    smol::block_on(async {
        let hosts = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "127.0.0.1:2181".into());
        let zk = zk_smol::connect(&ClientBuilder::new(&hosts)).await?;
        let path = zk
            .create("/example-smol-", "hello", CreateMode::EphemeralSequential)
            .await?;
        let (data, stat, watch) = zk.get_data_watch(&path).await?;
        println!("{path} = {:?}", String::from_utf8_lossy(&data));
        zk.set_data(&path, "bye", Some(stat.version)).await?;
        println!("watch: {:?}", watch.await?);
        zk.close().await
    })
}
