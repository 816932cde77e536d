//! Reliability regressions, written once and run against every adapter (tokio, smol,
//! blocking). Each test documents one defect; until it is fixed the test fails, for
//! that reason, and loudly: every wait is bounded (a watchdog around each test, a bound
//! around each call that may hang), nothing is skipped.
//!
//! | test | defect it covers |
//! | --- | --- |
//! | `idle_soak` | an idle session sends no pings: after the handshake the driver sleeps until the old connect deadline, so an idle client drops (read timeout) or the server sees too few pings |
//! | `stalled_reader` | a socket write that blocks (the server stopped reading) stops the driver's clock: no read timeout, calls never complete, `close()` hangs |
//! | `listener_calls_client` | state listeners run on the I/O reader/driver: a listener that calls the client blocks the very thread that must read the reply (the blocking adapter livelocks) |
//! | `ensure_path_under_missing_chroot` | `ensure_path` stops at the chroot's root and never creates the chroot's own missing nodes (kazoo does) |
//! | `ensure_path_existing_without_create_perm` | `ensure_path` creates before it checks: an existing path under a parent without CREATE permission fails with NoAuth (kazoo checks `exists` first) |
//! | `duration_max_is_forever` | `Duration::MAX` as connect deadline, request timeout, connect timeout or call timeout overflows `Instant + Duration` (panic or hang) instead of meaning "no limit" |
//! | `chroot_config_node` | under a chroot, `get_data("/zookeeper/config")` bypasses the chroot (only `get_config` should) |
//! | `big_reply` | the default max frame (0xfffff) is smaller than the reply to the largest node the server accepts; and an oversized reply drops the whole connection (ConnectionLoss for every call in flight) instead of failing that one call with a typed error |
//! | `state_stream_ends_after_close` | a state stream never ends after `close()`: it only times out |
//! | `remove_watches_oneshot_reports_removed` | a one-shot watch removed by `remove_watches` resolves to `SessionClosed` though the session is alive |
//! | `dropped_watch_future_removes_server_watch` | dropping a `get_data_watch` future while its request is in flight leaks the watch on the server (the local registration is never removed) |
//!
//! Tests run in parallel. Each works under its own unique path, or on its own fake server
//! or proxy; the ZooKeeper servers are shared per binary: `shared_server` (tickTime 2 s)
//! and `fast_server` (tickTime 500 ms, for short session timeouts). `listener_calls_client`
//! runs alone (it blocks executor threads on purpose, which would disturb timing in the
//! others).
//!
//! `support.rs` holds the harness and `adapter.rs` what differs per adapter; one module per
//! family of tests (`connection`, `listeners`, `paths`, `watches`). The tests keep their
//! names: `<adapter>::<test>`.

mod adapter;
mod connection;
mod listeners;
mod paths;
mod support;
mod watches;

use support::{run_alone, run_shared};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};

/// Every test for adapter `$z`, in a module `$m`.
macro_rules! reliability {
    ($m:ident, $z:ty) => {
        zk_tests::tests_for!($m: $z => {
            run_shared in connection { idle_soak, stalled_reader, duration_max_is_forever, big_reply }
            run_shared in listeners {
                state_stream_ends_after_close, weak_client_in_a_listener_lets_the_session_end
            }
            run_shared in paths {
                ensure_path_under_missing_chroot, ensure_path_existing_without_create_perm,
                chroot_config_node
            }
            run_shared in watches {
                remove_watches_oneshot_reports_removed, dropped_watch_future_removes_server_watch,
                unread_persistent_watch_is_bounded
            }
            run_alone in listeners { listener_calls_client }
        });
    };
}

reliability!(tokio, TokioZk);
reliability!(smol, SmolZk);
reliability!(blocking, BlockingZk);
