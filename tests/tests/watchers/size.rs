//! A TreeCache at size: 10,000 nodes under concurrent writes, and its node limit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zk_client::{CreateMode, Error, ErrorCode};
use zk_tests::facade::Zk;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{TreeCache, TreeCacheError, TreeCacheOptions, TreeEvent};

use super::support::{
    assert_same_tree, cache_tree, connect, create_many, eventually, opts, server_tree, unique, WAIT,
};

pub(crate) fn big_tree<Z: Zk>(persistent: bool) {
    let cs = shared_server().connect_string();
    let zk = connect::<Z>(&cs);
    let w = connect::<Z>(&cs);
    let root = unique::<Z>(if persistent { "big" } else { "big1" });
    let mut paths = vec![root.clone()];
    for d in 0..100 {
        paths.push(format!("{root}/d{d:02}"));
    }
    for d in 0..100 {
        for k in 0..99 {
            paths.push(format!("{root}/d{d:02}/k{k:02}"));
        }
    }
    assert_eq!(paths.len(), 10_001);
    create_many(&w, &paths);

    // A build on a quiet tree, timed.
    let t = Instant::now();
    let quiet = TreeCache::with_options(zk.as_async(), &root, opts(persistent)).unwrap();
    quiet
        .wait_initialized(Some(Duration::from_secs(120)))
        .unwrap();
    let build = t.elapsed();
    assert_eq!(quiet.len(), 10_001);
    drop(quiet);

    // A build while another client writes: sets, creates and deletes.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (wr, r2) = (writing.clone(), root.clone());
    let writer = {
        let w2 = connect::<Z>(&cs);
        thread::spawn(move || {
            let c = w2.as_async().clone();
            let mut i = 0u64;
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            while wr.load(Ordering::SeqCst) || i < 3000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let (d, k) = (rng % 100, (rng >> 8) % 120);
                let p = format!("{r2}/d{d:02}/k{k:02}");
                let f = match (rng >> 20) % 4 {
                    0 | 1 => zk_client::blocking::block_on(
                        c.set_data(&p, format!("s{i}"), None),
                        Some(WAIT),
                    )
                    .map(|r| r.map(|_| ())),
                    2 => zk_client::blocking::block_on(
                        c.create(&p, format!("c{i}"), CreateMode::Persistent),
                        Some(WAIT),
                    )
                    .map(|r| r.map(|_| ())),
                    _ => zk_client::blocking::block_on(c.delete(&p, None), Some(WAIT)),
                };
                match f {
                    Some(Ok(()))
                    | Some(Err(Error::Server(ErrorCode::NoNode | ErrorCode::NodeExists))) => {}
                    other => panic!("writer: {p}: {other:?}"),
                }
                i += 1;
            }
            w2.close().unwrap();
            i
        })
    };
    let t = Instant::now();
    let mut cache = TreeCache::with_options(
        zk.as_async(),
        &root,
        TreeCacheOptions {
            event_capacity: 1_000,
            ..opts(persistent)
        },
    )
    .unwrap();
    cache
        .wait_initialized(Some(Duration::from_secs(120)))
        .unwrap();
    let busy_build = t.elapsed();
    thread::sleep(Duration::from_millis(500));
    writing.store(false, Ordering::SeqCst);
    let writes = writer.join().expect("writer panicked");
    // A marker written last: once the cache has it, it has applied everything before.
    let marker = format!("{root}/marker");
    w.create(&marker, "end", CreateMode::Persistent).unwrap();
    eventually(WAIT, "the marker reaches the cache", || {
        cache.get(&marker).is_some()
    });
    let t = Instant::now();
    let server = server_tree(&w, &root);
    let walk = t.elapsed();
    assert_same_tree(
        &format!("[{}] big tree (persistent watch: {persistent})", Z::NAME),
        &server,
        &cache_tree(&cache),
    );
    // Children lists agree too.
    for d in 0..100 {
        let p = format!("{root}/d{d:02}");
        let mut kids = w.get_children(&p).unwrap();
        kids.sort();
        assert_eq!(cache.children(&p).unwrap(), kids, "children of {p}");
    }
    // Events came through the bounded queue, with an explicit overflow marker.
    let mut overflow = 0;
    let mut events = 0;
    while let Some(e) = cache.try_next_event() {
        events += 1;
        if let TreeEvent::Overflow { dropped } = e {
            overflow += dropped;
        }
    }
    println!(
        "[{}] TreeCache (persistent watch: {persistent}): 10,001 nodes built in {build:?} quiet, \
         {busy_build:?} under writes; {writes} concurrent writes; {} nodes equal the server's \
         (server walk {walk:?}); {events} events queued, {overflow} dropped past the queue bound",
        Z::NAME,
        server.len()
    );
    drop(cache);
    zk.close().unwrap();
    w.close().unwrap();
}

pub(crate) fn tree_limit<Z: Zk>() {
    let cs = shared_server().connect_string();
    let zk = connect::<Z>(&cs);
    let root = unique::<Z>("limit");
    let paths: Vec<String> = std::iter::once(root.clone())
        .chain((0..10).map(|i| format!("{root}/n{i}")))
        .collect();
    create_many(&zk, &paths);
    let mut cache = TreeCache::with_options(
        zk.as_async(),
        &root,
        TreeCacheOptions {
            max_nodes: 5,
            ..TreeCacheOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        cache.wait_initialized(Some(WAIT)),
        Err(TreeCacheError::TooManyNodes { limit: 5 })
    );
    assert_eq!(cache.len(), 0, "a cache over its limit empties itself");
    // The event stream ends.
    let t = Instant::now();
    while cache.recv_event_timeout(Some(WAIT)).unwrap().is_some() {
        assert!(t.elapsed() < WAIT);
    }
    zk.close().unwrap();
}
