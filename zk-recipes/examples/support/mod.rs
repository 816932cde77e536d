//! What every example does first, written once so that each example shows only its recipe:
//! connect (with the blocking adapter, so no async runtime is needed) to the ensemble named
//! on the command line or in `ZK_CONNECT`, and pick the node to work on.

/// Connects to the first argument (or `ZK_CONNECT`); the second argument, or
/// `/zk-recipes-example`, is the path the example works on. `example` names the
/// example in the usage message.
pub fn connect(example: &str) -> Result<(zk_blocking::Client, String), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let connect = args
        .next()
        .or_else(|| std::env::var("ZK_CONNECT").ok())
        .ok_or_else(|| format!("usage: {example} CONNECT_STRING [PATH] (or set ZK_CONNECT)"))?;
    let path = args.next().unwrap_or_else(|| "/zk-recipes-example".into());
    let zk = zk_blocking::connect(&zk_blocking::ClientBuilder::new(&connect))?;
    Ok((zk, path))
}
