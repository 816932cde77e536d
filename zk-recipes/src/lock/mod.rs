//! [`Lock`]: kazoo's exclusive lock, node for node, with fencing tokens,
//! explicit loss and cancellation-safe acquisition.
//!
//! Every lock recipe (this module's, the semaphore's, Curator's mutexes,
//! latch and semaphore) runs on one lock core. The files, each using only
//! files listed before it: `order.rs` (the contender order: kazoo's and
//! Curator's), `cleanup.rs` (removing a node nobody will use), `core.rs` (the
//! core: names, options, rules, contenders), `guard.rs` ([`LockGuard`]: a held
//! lock, its status and release), `attempt.rs` (one acquisition, and the guard
//! that cleans up after it), `exclusive.rs` ([`Lock`]), `rw.rs` ([`ReadLock`],
//! [`WriteLock`]).

mod attempt;
mod cleanup;
mod core;
mod exclusive;
mod guard;
mod order;
mod rw;

pub(crate) use self::cleanup::Leftover;
pub use self::core::LockOptions;
pub(crate) use self::core::{Flavor, LockCore, Wait, LOCK_NAME};
pub use self::exclusive::Lock;
pub use self::guard::{Holding, LockGuard};
pub(crate) use self::order::{curator_sorted, java_cmp};
pub use self::rw::{ReadLock, WriteLock};
