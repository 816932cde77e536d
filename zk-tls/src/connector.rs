//! The adapters' TLS connector, written once: the per-host table and the ways to
//! build it. What differs between adapters is only the handshake on their own
//! sockets, so each adapter names this type with its own connector trait object
//! (`zk_tokio::tls::TlsConnector` is `TlsConnector<dyn zk_tokio::Connector>`) and
//! implements its `Connector` trait for that one type.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::{TlsConfig, TlsError, TlsHosts, TlsOptions};

/// Dials each host over TCP, then runs the TLS handshake (or stays on plain TCP
/// where the table says so); a failed handshake is an `io::Error` wrapping the
/// [`TlsError`] that names it. `C` is the adapter's connector trait object.
pub struct TlsConnector<C: ?Sized> {
    hosts: TlsHosts,
    /// Which adapter's connector this is: a function pointer, so the type is
    /// `Send + Sync` whatever `C` is.
    adapter: PhantomData<fn() -> Box<C>>,
}

impl<C: ?Sized> TlsConnector<C> {
    /// Builds the rustls configuration from `opts` (reads its PEM files now).
    pub fn new(opts: &TlsOptions) -> Result<Self, TlsError> {
        Ok(Self::per_host(TlsHosts::new(opts)?))
    }

    /// A connector from a configuration built already.
    pub fn from_config(tls: TlsConfig) -> Self {
        Self::per_host(TlsHosts::from_config(tls))
    }

    /// Settings per host: TLS with its own options, or plain TCP, for the hosts
    /// `hosts` names (see [`TlsHosts::parse`] for `tls://` and `tcp://` in a
    /// connect string).
    pub fn per_host(hosts: TlsHosts) -> Self {
        TlsConnector {
            hosts,
            adapter: PhantomData,
        }
    }

    /// For the adapter: the TLS settings for a dialled host, or `None` for plain TCP.
    pub fn for_host(&self, host: &str, port: u16) -> Option<&TlsConfig> {
        self.hosts.for_host(host, port)
    }
}

impl<C: ?Sized> Clone for TlsConnector<C> {
    fn clone(&self) -> Self {
        Self::per_host(self.hosts.clone())
    }
}

impl<C: ?Sized> fmt::Debug for TlsConnector<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// For the adapter: how its connector trait object is made from a
/// [`TlsConnector`], so that `connector.into()` gives the `Arc<dyn Connector>`
/// its `connect_with` takes.
pub trait SharedConnector {
    /// `Arc::new(connector)`, as the adapter's trait object.
    fn share(connector: TlsConnector<Self>) -> Arc<Self>;
}

/// For `Arc<dyn Connector>` call sites.
impl<C: ?Sized + SharedConnector> From<TlsConnector<C>> for Arc<C> {
    fn from(c: TlsConnector<C>) -> Self {
        C::share(c)
    }
}
