//! zk-recipes' watchers (DataWatch, ChildrenWatch, TreeCache) against real
//! ZooKeeper 3.8 servers, for every adapter (tokio, smol, blocking): each sees
//! every change a second client makes, in order; survives a cut connection, a
//! server restart and a session expiry; stops when told (and removes its server
//! watches). A TreeCache of 10,000 nodes under concurrent writes equals the
//! server's tree, node by node, once the writes stop.
//!
//! The watchers run on their default threads (the recipes need no runtime); the
//! adapters only drive the client. The simulated, virtual-time fault schedules
//! are in `watchers_sim.rs`. The kazoo interop test (module `kazoo`) needs
//! `ZK_KAZOO_PYTHON` (see there) and fails without it.
//!
//! `support.rs` holds the harness; one module per family of tests (`data_watch`,
//! `children_watch`, `faults`, `size`, `kazoo`). The tests keep their names:
//! `<adapter>::<test>`, `big_tree_oneshot_watches`, `kazoo::<test>`.

mod children_watch;
mod data_watch;
mod faults;
mod kazoo;
mod size;
mod support;

use faults::{cut_during_walk, WalkCut};
use size::big_tree;
use support::run;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};

/// Every test for adapter `$z`, in a module `$m`.
macro_rules! watchers {
    ($m:ident, $z:ty) => {
        zk_tests::tests_for!($m: $z => {
            run in data_watch { data_watch_sequence, data_watch_rate }
            run in children_watch { children_watch_sequence }
            run in faults { survives_restart, stops_when_told }
            run in size { tree_limit }
            run {
                survives_cut => || super::faults::survives_cut::<$z>(true),
                survives_cut_oneshot_watches => || super::faults::survives_cut::<$z>(false),
                cut_during_first_read => || cut_during_walk::<$z>(true, WalkCut::First),
                cut_during_first_read_oneshot_watches =>
                    || cut_during_walk::<$z>(false, WalkCut::First),
                cut_during_resync => || cut_during_walk::<$z>(true, WalkCut::Resync),
                cut_during_resync_oneshot_watches =>
                    || cut_during_walk::<$z>(false, WalkCut::Resync),
                cut_during_resync_new_session =>
                    || cut_during_walk::<$z>(true, WalkCut::ResyncNewSession),
                cut_during_resync_new_session_oneshot_watches =>
                    || cut_during_walk::<$z>(false, WalkCut::ResyncNewSession),
                survives_expiry => || super::faults::survives_expiry::<$z>(true),
                survives_expiry_oneshot_watches => || super::faults::survives_expiry::<$z>(false),
                big_tree => || super::size::big_tree::<$z>(true),
            }
        });
    };
}

watchers!(tokio, TokioZk);
watchers!(smol, SmolZk);
watchers!(blocking, BlockingZk);

/// The one-shot fallback at size, once (it is adapter-independent above the client).
#[test]
fn big_tree_oneshot_watches() {
    run("big_tree_oneshot_watches", || big_tree::<TokioZk>(false))
}
