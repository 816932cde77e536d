//! API-level integration tests of the newer client features against a real ZooKeeper 3.8
//! server (and, for `add_watch` on an old server, a fake one): null vs empty data,
//! pipelining in call order, the blocking adapter's `*_async` calls and transactions, the
//! chroot getter, four-letter words on the current server, expiry with a new session, and
//! the retry helpers.
//!
//! Every test that applies to every adapter is written once, generic over the facade, and
//! instantiated for tokio, smol and blocking by `api!`. Each test works under its own
//! unique path and runs under a watchdog, and every wait in it is bounded.
//!
//! `support.rs` holds the harness; one module per family of tests (`data`, `pipelining`,
//! `transaction`, `chroot`, `fourlw`, `sessions`, `old_server`, `retry`). The tests keep
//! their names: `<adapter>::<test>`.

mod chroot;
mod data;
mod fourlw;
mod old_server;
mod pipelining;
mod retry;
mod sessions;
mod support;
mod transaction;

use support::run;
use zk_tests::facade::{BlockingZk, Smol, SmolZk, Tokio, TokioZk};

/// The tests for every adapter (`$z`, with `$other` reading its writes back), plus
/// the adapter's own (`$own`: `runner in module { tests }` or `runner { test => body }`).
macro_rules! api {
    ($m:ident, $z:ty, $other:ty, { $($own:tt)* }) => {
        zk_tests::tests_for!($m: $z => {
            run {
                null_and_empty_data => super::data::null_and_empty_data::<$z, $other>,
                set_hosts_moves_with_the_session => {
                    let ensemble = zk_tests::Ensemble::start(3, zk_tests::ServerOptions::default());
                    move || super::sessions::set_hosts_moves_with_the_session::<$z>(&ensemble)
                },
            }
            run in sessions { connection_max_tries_gives_up, expiry_makes_a_new_session }
            run in old_server { add_watch_on_old_server_is_unsupported }
            $($own)*
        });
    };
}

/// An async adapter (`$z`, on runner `$r`): its own tests are the async ones.
macro_rules! async_api {
    ($m:ident, $z:ty, $r:ty, $other:ty) => {
        api!($m, $z, $other, {
            run in chroot { chroot_getter }
            run {
                pipelined_in_call_order => super::pipelining::pipelined_in_call_order::<$r>,
                command_on_current_server => super::fourlw::command_async::<$r>,
                retry_method => super::retry::retry_async::<$r>,
            }
        });
    };
}

async_api!(tokio, TokioZk, Tokio, SmolZk);
async_api!(smol, SmolZk, Smol, BlockingZk);
api!(blocking, BlockingZk, TokioZk, {
    run {
        blocking_async_pipelining => super::pipelining::blocking_async_pipelining,
        blocking_transaction => super::transaction::blocking_transaction,
        chroot_getter => super::chroot::blocking_chroot_getter,
        command_on_current_server => super::fourlw::command_blocking,
        retry_method => super::retry::retry_blocking,
    }
});
