//! The few things the tests do differently per adapter.

use std::time::Duration;

use zk_client::{Error, Stat};
use zk_tests::facade::{AsyncZk, BlockingZk, Runner, Zk};

/// The few things the tests do differently per adapter.
pub(crate) trait Adapter: Zk {
    /// A blocking `exists("/")` on a clone of this client, for a state listener to call;
    /// bounded by `limit` (Err(Timeout) then).
    fn listener_exists(
        &self,
        limit: Duration,
    ) -> Box<dyn Fn() -> zk_client::Result<Option<Stat>> + Send + Sync>;

    /// Starts `get_data_watch(path)` so its request is submitted, then drops it before
    /// its reply is taken. Async adapters: one poll in the adapter's runtime, then
    /// `while_pending` runs with the future still alive, then the drop; returns true.
    /// Blocking: a call with a 1 ns timeout (gives up after one poll); returns false
    /// (`while_pending` is not run).
    fn drop_pending_get_data_watch(&self, path: &str, while_pending: &dyn Fn()) -> bool;

    /// `exists("/")` with a per-call timeout of `Duration::MAX`: the blocking adapter's
    /// `with_timeout(Some(Duration::MAX))`; for the async adapters the same `block_on` it
    /// is built on (`zk_client::blocking::block_on(.., Some(Duration::MAX))`).
    fn exists_with_max_timeout(&self) -> zk_client::Result<Option<Stat>>;

    /// Closes an async client handle (from `as_async`) and waits.
    fn block_on_close(c: &zk_client::Client) {
        zk_client::blocking::block_on(c.close(), Some(Duration::from_secs(10)))
            .expect("close in time")
            .expect("close");
    }
}

impl<R: Runner> Adapter for AsyncZk<R> {
    fn listener_exists(
        &self,
        limit: Duration,
    ) -> Box<dyn Fn() -> zk_client::Result<Option<Stat>> + Send + Sync> {
        // The facade's own blocking call (R::block_on) cannot be bounded and, inside
        // the runtime's threads, either panics (tokio) or blocks the only executor
        // thread for good (smol): block on the client's future with a bound instead.
        let client = self.client.clone();
        Box::new(move || {
            zk_client::blocking::block_on(client.exists("/"), Some(limit))
                .unwrap_or(Err(Error::Timeout))
        })
    }

    fn drop_pending_get_data_watch(&self, path: &str, while_pending: &dyn Fn()) -> bool {
        let mut fut = Box::pin(self.client.get_data_watch(path));
        let first = R::block_on(::smol::future::poll_once(&mut fut));
        assert!(
            first.is_none(),
            "{}: get_data_watch finished on its first poll: {:?}",
            R::NAME,
            first.map(|r| r.map(|(d, s, _)| (d, s)))
        );
        while_pending();
        drop(fut);
        true
    }

    fn exists_with_max_timeout(&self) -> zk_client::Result<Option<Stat>> {
        zk_client::blocking::block_on(self.client.exists("/"), Some(Duration::MAX))
            .unwrap_or(Err(Error::Timeout))
    }
}

impl Adapter for BlockingZk {
    fn listener_exists(
        &self,
        limit: Duration,
    ) -> Box<dyn Fn() -> zk_client::Result<Option<Stat>> + Send + Sync> {
        let zk = self.with_timeout(Some(limit));
        Box::new(move || zk.exists("/"))
    }

    fn drop_pending_get_data_watch(&self, path: &str, _while_pending: &dyn Fn()) -> bool {
        let r = self
            .with_timeout(Some(Duration::from_nanos(1)))
            .get_data_watch(path);
        assert!(
            matches!(r, Err(Error::Timeout)),
            "blocking: get_data_watch with a 1 ns timeout: {:?}",
            r.map(|(d, s, _)| (d, s))
        );
        false
    }

    fn exists_with_max_timeout(&self) -> zk_client::Result<Option<Stat>> {
        self.with_timeout(Some(Duration::MAX)).exists("/")
    }
}
