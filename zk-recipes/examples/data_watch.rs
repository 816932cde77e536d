//! Prints a node's data now and after every change, through the stream form and
//! the callback form, with the blocking adapter (no async runtime).
//!
//! `cargo run -p zk-recipes --example data_watch -- 127.0.0.1:2181 /some/node`
//! (or set ZK_CONNECT; the path defaults to /zk-recipes-example).

use std::time::Duration;

use zk_recipes::DataWatch;

mod support;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (zk, path) = support::connect("data_watch")?;

    // The callback form (kazoo's): runs on a thread of its own; false stops it.
    let printer = DataWatch::callback(zk.as_async(), &path, |u| {
        println!("callback: {:?} (exists: {})", u.data, u.exists());
        true
    })?;

    // The stream form: the first report is the current state.
    let mut watch = DataWatch::new(zk.as_async(), &path)?;
    println!("watching {path} for 60 s; change it from another client");
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        match watch.recv_timeout(Some(left)) {
            Ok(Some(u)) => println!(
                "stream: data {:?}, version {:?}, after {:?}",
                u.data,
                u.stat.map(|s| s.version),
                u.event.map(|e| e.event_type)
            ),
            Ok(None) => {
                println!("the watch ended: {:?}", watch.end_reason());
                break;
            }
            Err(_) => break, // timed out
        }
    }
    printer.stop();
    drop(watch); // stops it and removes its server watch
    zk.close()?;
    Ok(())
}
