//! Prints a node's children now and after every change (async, on any
//! executor: here the current thread, through `zk_client::blocking::block_on`).
//!
//! `cargo run -p zk-recipes --example children_watch -- 127.0.0.1:2181 /some/node`
//! (or set ZK_CONNECT; the path defaults to /zk-recipes-example).

use zk_recipes::{ChildrenWatch, ChildrenWatchOptions};

mod support;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (zk, path) = support::connect("children_watch")?;
    zk.ensure_path(&path)?;
    let client = zk.as_async().clone();
    let opts = ChildrenWatchOptions {
        // Keep watching across a delete and re-create of the node.
        wait_for_creation: true,
        ..ChildrenWatchOptions::default()
    };
    let mut watch = ChildrenWatch::with_options(&client, &path, opts)?;
    println!("watching the children of {path}; Ctrl-C to stop");
    zk_client::blocking::block_on(
        async move {
            while let Some(u) = watch.next().await {
                match u.children {
                    Some(c) => println!("{} children: {c:?} ({:?})", c.len(), u.event),
                    None => println!("{path} does not exist (waiting for it)"),
                }
            }
            println!("ended: {:?}", watch.end_reason());
        },
        None,
    );
    Ok(())
}
