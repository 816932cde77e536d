//! Session scenarios against the simulated ensemble: one test per behaviour of the
//! session state machine, each on a fake clock (milliseconds of real time, no sleeps).

#![cfg(feature = "testing")]

// Shared helpers are in `helpers.rs`; one module per concern of the session.

mod auth;
mod close;
mod connection_loss;
mod expiry;
mod handshake;
mod helpers;
mod hosts;
mod limits;
mod read_only;
mod reconnect;
mod replies;
mod retry;
mod states;
mod timers;
mod update_hosts;
mod watches;
