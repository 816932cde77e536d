//! Connects to the ZooKeeper given as the first argument (default 127.0.0.1:2181),
//! creates an ephemeral node, watches it, changes it and closes.
use zk_blocking::{ClientBuilder, CreateMode};

fn main() -> zk_blocking::Result<()> {
    let hosts = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let zk = zk_blocking::connect(&ClientBuilder::new(&hosts))?;
    let path = zk.create(
        "/example-blocking-",
        "hello",
        CreateMode::EphemeralSequential,
    )?;
    let (data, stat, watch) = zk.get_data_watch(&path)?;
    println!("{path} = {:?}", String::from_utf8_lossy(&data));
    zk.set_data(&path, "bye", Some(stat.version))?;
    println!("watch: {:?}", watch.wait_timeout(None)?);
    zk.close()
}
