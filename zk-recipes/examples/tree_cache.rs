//! Mirrors a subtree and prints its events; every 10 s, the mirror's size.
//!
//! `cargo run -p zk-recipes --example tree_cache -- 127.0.0.1:2181 /some/subtree`
//! (or set ZK_CONNECT; the path defaults to /zk-recipes-example).

use std::time::Duration;

use zk_recipes::{TreeCache, TreeEvent};

mod support;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (zk, root) = support::connect("tree_cache")?;
    let started = std::time::Instant::now();
    let mut cache = TreeCache::new(zk.as_async(), &root)?;
    cache.wait_initialized(Some(Duration::from_secs(60)))?;
    println!(
        "{} nodes under {root} in {:?} (persistent watch: {:?})",
        cache.len(),
        started.elapsed(),
        cache.uses_persistent_watch()
    );
    loop {
        match cache.recv_event_timeout(Some(Duration::from_secs(10))) {
            Ok(Some(TreeEvent::NodeAdded { path, data, .. })) => println!("+ {path} {data:?}"),
            Ok(Some(TreeEvent::NodeUpdated { path, data, stat })) => {
                println!("~ {path} {data:?} (version {})", stat.version)
            }
            Ok(Some(TreeEvent::NodeRemoved { path, .. })) => println!("- {path}"),
            Ok(Some(TreeEvent::Overflow { dropped })) => {
                println!("(fell behind: {dropped} events dropped; the mirror is complete)")
            }
            Ok(Some(other)) => println!("{other:?}"),
            Ok(None) => {
                println!("the cache stopped: {:?}", cache.error());
                return Ok(());
            }
            Err(_) => println!("{} nodes", cache.len()),
        }
    }
}
