//! The read buffers of callers that read their connection's socket themselves
//! while they wait for a reply (`io_thread`'s leading reads): a few, shared by
//! the process, not one per thread.
//!
//! Why: a buffer per caller thread, kept for the thread's life, cost 16 KiB per
//! thread that ever read its own reply. With a thread per session (the usual
//! shape of blocking code: a thousand idle sessions each making a call now and
//! then), that was 16 KiB more per idle session, twice what a connected session
//! costs otherwise. A caller holds a buffer only while it reads what the socket
//! holds (not while it waits for the socket), so a handful serves any number of
//! threads; one taken when none is free is allocated and let go after the read.

use std::sync::{Mutex, MutexGuard};

/// The size of each buffer: a reply this size or smaller is read in one call.
const SIZE: usize = 16 * 1024;
/// Buffers kept between reads: more than the leading reads that run at once on
/// a machine of a few cores (each holds one only while it reads, not while it
/// waits for the socket).
const KEPT: usize = 8;

static FREE: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

fn free() -> MutexGuard<'static, Vec<Box<[u8]>>> {
    FREE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on a read buffer of 16 KiB, taken from the shared ones (or
/// allocated, when every one is in use) and given back after.
pub(crate) fn with_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let taken = free().pop();
    let mut buf = taken.unwrap_or_else(|| vec![0; SIZE].into_boxed_slice());
    let r = f(&mut buf);
    let mut kept = free();
    if kept.len() < KEPT {
        kept.push(buf);
    }
    r
}

/// Buffers kept now, for tests.
#[cfg(test)]
pub(crate) fn kept() -> usize {
    free().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_share_a_few_buffers() {
        // Many threads, each reading once: at most KEPT buffers stay.
        let threads: Vec<_> = (0..4 * KEPT)
            .map(|_| std::thread::spawn(|| with_buf(|b| b.len())))
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), SIZE);
        }
        assert!(kept() <= KEPT, "{} kept", kept());
        // A nested use (a wake-up run inside a read that reads again) gets its own.
        with_buf(|a| with_buf(|b| assert_ne!(a.as_ptr(), b.as_ptr())));
    }
}
