//! A limit on a test body: a body still running after its limit fails the test as
//! hung (naming it), instead of the suite waiting forever on a client that never
//! answers. A panic in the body fails the test as the panic.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `body` on a thread named `name`, for at most `limit`.
pub fn run(name: &str, limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(body)));
        })
        .expect("spawn the test body");
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(p)) => resume_unwind(p),
        Err(_) => panic!("{name}: WATCHDOG: the test did not finish within {limit:?}"),
    }
}
