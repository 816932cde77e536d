//! [`WeakClient`]: a blocking client handle that does not keep the client alive.

use std::time::Duration;

use crate::Client;

/// A handle that does not keep the client alive, for listeners and callbacks
/// the client itself holds (a [`Client`] clone there would keep the session
/// open after your last clone drops). Made by [`Client::downgrade`].
///
/// ```no_run
/// # fn demo(zk: &zk_blocking::Client) {
/// let weak = zk.downgrade();
/// zk.add_listener(move |state| {
///     if let Some(zk) = weak.upgrade() {
///         let _ = (zk.exists("/app"), state); // listeners may make blocking calls
///     }
/// });
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WeakClient {
    inner: zk_client::WeakClient,
    timeout: Option<Duration>,
}

impl WeakClient {
    /// The client, unless every [`Client`] clone was dropped.
    pub fn upgrade(&self) -> Option<Client> {
        Some(Client {
            inner: self.inner.upgrade()?,
            timeout: self.timeout,
        })
    }
}

impl Client {
    /// A handle that does not keep the client alive (see [`WeakClient`]).
    pub fn downgrade(&self) -> WeakClient {
        WeakClient {
            inner: self.inner.downgrade(),
            timeout: self.timeout,
        }
    }
}
