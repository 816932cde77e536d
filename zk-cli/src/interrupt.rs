//! Ctrl-C. While a command waits for events (`watch`, `get -w`) it stops the
//! wait and the command ends normally; at any other time it ends the process
//! with 130, as the default action would. (At the shell's prompt the line
//! editor reads Ctrl-C as a key, and the shell just starts a new line.)

use std::sync::atomic::{AtomicBool, Ordering};

static WAITING: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once, at start).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if WAITING.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    });
}

/// Marks a wait that Ctrl-C ends, until the guard is dropped.
pub fn waiting() -> WaitGuard {
    INTERRUPTED.store(false, Ordering::SeqCst);
    WAITING.store(true, Ordering::SeqCst);
    WaitGuard(())
}

/// Whether Ctrl-C was pressed during the current wait.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// See [`waiting`].
pub struct WaitGuard(());

impl Drop for WaitGuard {
    fn drop(&mut self) {
        WAITING.store(false, Ordering::SeqCst);
        INTERRUPTED.store(false, Ordering::SeqCst);
    }
}
