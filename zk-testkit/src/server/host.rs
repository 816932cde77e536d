//! What tests take from this machine: loopback ports no other test holds, temporary
//! directories, and a lock that survives a panicking holder.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A loopback port that was free a moment ago and that this process has not handed out before
/// (the set is process-wide and never shrinks, so concurrent tests never share a port and a
/// restarted server finds its port unclaimed by another test).
pub(crate) fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut handed_out = lock(HANDED_OUT.get_or_init(Default::default));
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("zk-tests: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("zk-tests: local_addr of a listener: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("zk-tests: no unused loopback port after 1000 tries");
}

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A new empty directory under [`std::env::temp_dir`] with a name no other test uses.
pub(crate) fn make_temp_dir(kind: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "zk-tests-{kind}-{}-{n}-{nanos:09}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("zk-tests: cannot create {}: {e}", dir.display()),
        }
    }
}
