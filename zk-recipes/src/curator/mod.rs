//! Apache Curator's recipes on Curator's own node layouts and data, so that
//! Rust services take part in the locks, elections, semaphores and counters
//! of Java services that use Curator 5 on the same paths.
//!
//! | recipe | Curator 5 class | layout under the recipe's path `P` |
//! |---|---|---|
//! | [`ProtectedCreate`] | `create().withProtection()` | `_c_<uuid>-<name>`, adopted after a lost answer |
//! | [`InterProcessMutex`] | `InterProcessMutex` | `P/_c_<uuid>-lock-<seq>` (ephemeral sequential), data = local address |
//! | [`InterProcessReadWriteLock`] | `InterProcessReadWriteLock` | `P/_c_<uuid>-__READ__<seq>`, `P/_c_<uuid>-__WRIT__<seq>` |
//! | [`InterProcessSemaphoreV2`] | `InterProcessSemaphoreV2` | `P/locks/_c_<uuid>-lock-<seq>`, `P/leases/_c_<uuid>-lease-<seq>` |
//! | [`InterProcessSemaphoreMutex`] | `InterProcessSemaphoreMutex` | a semaphore with one lease |
//! | [`InterProcessMultiLock`] | `InterProcessMultiLock` | an [`InterProcessMutex`] per path, taken in order, released in reverse |
//! | [`LeaderLatch`] | `LeaderLatch` | `P/_c_<uuid>-latch-<seq>`, data = the id |
//! | [`LeaderSelector`] | `LeaderSelector` | an `InterProcessMutex` on `P`, data = the id |
//! | [`PersistentNode`] | `PersistentNode` | `P` in the mode given, re-created after a delete or a new session |
//! | [`PersistentTtlNode`] | `PersistentTtlNode` | `P` container + `P/touch` (`PERSISTENT_WITH_TTL`, written every ttl/2) |
//! | [`GroupMember`] | `GroupMember` | `P/<id>`, ephemeral, data = the payload |
//! | [`DistributedBarrier`] | `DistributedBarrier` | `P`, persistent, while the barrier stands |
//! | [`DistributedDoubleBarrier`] | `DistributedDoubleBarrier` | `P/<uuid>` per member (ephemeral), `P/ready` (persistent) |
//! | [`SharedValue`] | `SharedValue` | `P`, persistent, any bytes, versioned compare-and-set; [`ValueChanges`] = `SharedValueListener` |
//! | [`SharedCount`] | `SharedCount` | a `SharedValue` of 4-byte big-endian `i32` |
//! | [`DistributedAtomicLong`] | `DistributedAtomicLong` | `P`, 8-byte big-endian `i64`; promotion to an `InterProcessMutex` |
//! | [`ServiceDiscovery`], [`ServiceCache`], [`ServiceProvider`] | curator-x-discovery | `<base>/<name>/<id>`, Curator's JSON ([`ServiceInstance`]) |
//!
//! Rules shared by all of them (read from Curator's source, checked against a
//! real Curator process in `tests/tests/curator_*.rs`):
//!
//! * Contender nodes are **protected** (`_c_` + a Java-style random UUID +
//!   `-`), so a create whose answer was lost is found by its prefix, not made
//!   twice.
//! * Missing parents are made as **containers**.
//! * Contenders are ordered by the text after the last lock name in the
//!   node's name (Curator's `standardFixForSorting`), as Java compares
//!   strings; every child of the lock path counts.
//! * Default node data is the local address (Curator's `LOCAL_ADDRESS`).
//! * Claims (a held lock, a lease, leadership) follow
//!   [Curator's connection-state rules](ConnectionRules): with the default
//!   [`ErrorPolicy::Standard`] a SUSPENDED connection ends them, as it ends a
//!   Java holder's; SUSPENDED counts as LOST once it lasted the negotiated
//!   session timeout.
//! * What the kazoo-layout recipes add is here too: a **fencing token** (the
//!   holder node's czxid, larger for every new holder, Java's too), the
//!   claim's status and a future that resolves when it ends.
//!
//! `docs/from-curator.md` maps Curator's classes and methods to these.

/// The read side that every handle on a claim has ([`LatchLeadership`],
/// [`Lease`], [`MutexGuard`]): the node, its fencing token, the status under
/// [the rules](ConnectionRules) and the future of its end, each asked of the
/// `Claim` at `self.<path>`. Written once so the three cannot drift apart.
macro_rules! claim_accessors {
    ($($claim:ident).+) => {
        /// The claim's node's czxid (its fencing token): larger for every
        /// later holder, Java ones too.
        pub fn fencing_token(&self) -> i64 {
            self.$($claim).+.guard.fencing_token()
        }

        /// The claim's node.
        pub fn node_path(&self) -> String {
            self.$($claim).+.guard.node_path()
        }

        /// Where the claim stands, with the rules' simulated expiry applied.
        pub fn status(&self) -> crate::lock::Holding {
            self.$($claim).+.status()
        }

        /// Whether the claim still stands under the rules' error policy.
        pub fn is_held(&self) -> bool {
            self.$($claim).+.is_held()
        }

        /// Resolves once the rules end the claim (with the status that did).
        pub fn ended(
            &self,
        ) -> impl std::future::Future<Output = crate::lock::Holding> + Send + 'static {
            self.$($claim).+.ended()
        }
    };
}

mod atomic;
mod barrier;
mod discovery;
mod latch;
mod multi;
mod mutex;
mod nodes;
mod protected;
mod selector;
mod semaphore;
mod shared;
mod state;

pub use atomic::{AtomicOptions, AtomicValue, DistributedAtomicLong};
pub use barrier::{DistributedBarrier, DistributedDoubleBarrier, READY_NODE};
pub use discovery::{
    DiscoveryOptions, DownInstancePolicy, ProviderStrategy, ServiceCache, ServiceDiscovery,
    ServiceInstance, ServiceProvider, ServiceType, UriPart, UriSpec, MAP_PAYLOAD_CLASS,
};
pub use latch::{LatchLeadership, LatchOptions, LeaderLatch, Participant};
pub use multi::{InterProcessMultiLock, MultiLockGuard};
pub use mutex::{
    revoke, InterProcessMutex, InterProcessReadWriteLock, MutexGuard, MutexOptions, REVOKE_MESSAGE,
};
pub use nodes::{GroupMember, NodeOptions, PersistentNode, PersistentTtlNode, TTL_TOUCH_NODE};
pub use protected::{local_address, ProtectedCreate};
pub use selector::{LeaderSelector, SelectorLeadership, SelectorOptions};
pub use semaphore::{InterProcessSemaphoreMutex, InterProcessSemaphoreV2, Lease, SemaphoreOptions};
pub use shared::{SharedCount, SharedValue, ValueChanges, VersionedValue};
pub use state::{ConnectionRules, ErrorPolicy};

pub(crate) use protected::{ensure_containers, protected_prefix};

/// The lock name of a read lock's nodes.
pub(crate) const READ_LOCK_NAME: &str = "__READ__";
/// The lock name of a write lock's nodes.
pub(crate) const WRITE_LOCK_NAME: &str = "__WRIT__";
