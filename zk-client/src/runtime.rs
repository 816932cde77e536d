//! What the client needs of the runtime that runs it, beyond its sockets: a
//! timer (retries sleep between attempts) and a four-letter word over the
//! client's own transport (TLS when the client uses TLS).
//!
//! Each adapter registers its own when it connects, so [`Client::retry`],
//! [`Client::command`] and [`Client::server_version`] run on the client's
//! runtime whichever adapters a program links: tokio's timer (virtual under a
//! paused clock) for a zk-tokio client, async-io's for zk-smol, a thread for
//! zk-blocking. A client built without an adapter (`ClientBuilder::build_on`)
//! falls back to a timer thread and has no four-letter words.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use zk_proto::HostAddr;

use crate::fourlw::{self, ServerVersion};
use crate::retry::Idempotence;
use crate::slot::Slot;
use crate::{Client, Error, Result};

/// A boxed future the runtime hooks return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The runtime hooks an adapter registers
/// ([`Shared::set_runtime`](crate::Shared::set_runtime)).
pub trait Runtime: Send + Sync + 'static {
    /// Completes after `d` on the runtime's clock.
    fn sleep(&self, d: Duration) -> BoxFuture<()>;
    /// Runs the four-letter word `cmd` against `host` over the client's transport
    /// and returns its text, within `timeout`.
    fn four_letter_word(
        &self,
        host: HostAddr,
        cmd: String,
        timeout: Duration,
    ) -> BoxFuture<Result<String>>;
}

/// Runs `f` on a thread of its own and completes with its result (`None` if no
/// thread could be started): how a runtime without a reactor (zk-blocking) turns
/// blocking work into the futures these hooks return.
pub fn on_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> BoxFuture<Option<T>> {
    let slot: Arc<Slot<T>> = Slot::new();
    let s = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(w) = s.fill(f()) {
                w.wake();
            }
        });
    Box::pin(async move {
        match spawned {
            Ok(_) => Some(std::future::poll_fn(|cx| slot.poll_take(cx)).await),
            Err(_) => None,
        }
    })
}

/// A sleep on a thread of its own, for clients without a runtime's timer.
pub fn thread_sleep(d: Duration) -> BoxFuture<()> {
    let done = on_thread("zk-retry-sleep", move || {
        // The fallback timer of a client without a runtime's.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(d);
    });
    Box::pin(async move {
        done.await;
    })
}

impl Client {
    fn runtime(&self) -> Option<Arc<dyn Runtime>> {
        self.shared().runtime()
    }

    /// A four-letter word (`ruok`, `srvr`, `mntr`, `cons`, ...) on the server the
    /// session is on (kazoo's `command()`), over the client's own transport (TLS
    /// when the client uses TLS); its text.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let mntr = zk.command("mntr").await?;
    /// assert!(mntr.contains("zk_version"));
    /// # Ok(()) }
    /// ```
    pub fn command(&self, cmd: &str) -> impl Future<Output = Result<String>> + Send + 'static {
        let host = self.current_host();
        let rt = self.runtime();
        let cmd = cmd.to_owned();
        async move {
            let host = host.ok_or(Error::NotConnected)?;
            let rt = rt.ok_or(Error::Unsupported(
                "four-letter words need an adapter's transport (connect with zk-tokio, zk-smol or zk-blocking)",
            ))?;
            rt.four_letter_word(host, cmd, Duration::from_secs(5)).await
        }
    }

    /// The version of the server the session is on (numbers and full string),
    /// from its `srvr` answer.
    pub fn server_version(&self) -> impl Future<Output = Result<ServerVersion>> + Send + 'static {
        let srvr = self.command("srvr");
        async move { fourlw::version_of_srvr(srvr.await?) }
    }

    /// Runs `op` under the builder's command retry policy (kazoo's
    /// `client.retry(...)`): reads and safe writes are repeated after connection
    /// errors, plain writes only after errors proving nothing was applied. The
    /// sleeps between attempts run on the client's runtime.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::retry::Idempotence;
    /// let data = zk.retry(Idempotence::Safe, || zk.get_data("/app/config")).await?;
    /// # let _ = data; Ok(()) }
    /// ```
    pub fn retry<T, F, Fut>(&self, kind: Idempotence, op: F) -> impl Future<Output = Result<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let policy = self.command_retry().clone();
        let rt = self.runtime();
        async move {
            let sleep = |d| match &rt {
                Some(rt) => rt.sleep(d),
                None => thread_sleep(d),
            };
            policy.run(kind, sleep, op).await
        }
    }
}

/// The calls that need the runtime, as a trait: kept for code written before they
/// became the client's own methods ([`Client::command`], [`Client::server_version`],
/// [`Client::retry`], which run on the runtime the client was connected with, and
/// which a method call finds first). New code needs no import. zk-tokio and
/// zk-smol re-export it, so `use zk_tokio::ClientExt` goes on compiling.
pub trait ClientExt {
    /// A four-letter word (`ruok`, `srvr`, `mntr`, `cons`, ...) on the server the
    /// session is on (kazoo's `command()`), over the client's own connector (TLS
    /// when the client uses TLS); its text.
    fn command(&self, cmd: &str) -> impl Future<Output = Result<String>> + Send;
    /// The version of the server the session is on (numbers and full string).
    fn server_version(&self) -> impl Future<Output = Result<ServerVersion>> + Send;
    /// Runs `op` under the builder's command retry policy (kazoo's
    /// `client.retry(...)`): reads and safe writes are repeated after connection
    /// errors, plain writes only after errors proving nothing was applied.
    fn retry<T, F, Fut>(&self, kind: Idempotence, op: F) -> impl Future<Output = Result<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>;
}

/// Delegates to the client's own methods.
impl ClientExt for Client {
    fn command(&self, cmd: &str) -> impl Future<Output = Result<String>> + Send {
        Client::command(self, cmd)
    }

    fn server_version(&self) -> impl Future<Output = Result<ServerVersion>> + Send {
        Client::server_version(self)
    }

    fn retry<T, F, Fut>(&self, kind: Idempotence, op: F) -> impl Future<Output = Result<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        Client::retry(self, kind, op)
    }
}
