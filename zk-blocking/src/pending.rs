//! kazoo's `*_async` calls: the request goes out at once and the call returns a
//! [`Pending`] handle, so one thread can keep a thousand requests in flight and
//! collect the answers afterwards, in any order.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use zk_client::blocking::block_on;
use zk_client::{
    Acl, CreateMode, CreateOptions, Data, Error, IntoData, Op, OpResult, Result, Stat,
};

use crate::Client;

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// A request already sent, whose result is collected with [`wait`](Pending::wait)
/// (kazoo's `IAsyncResult.get()`). Dropping it discards the result; the request
/// still completes on the server, and a watch it would have set is removed.
///
/// ```no_run
/// # fn demo(zk: &zk_blocking::Client) -> zk_blocking::Result<()> {
/// use zk_blocking::CreateMode;
/// // Both requests are on the wire before either answer is awaited.
/// let created = zk.create_async("/jobs/job-", "payload", CreateMode::PersistentSequential);
/// let listed = zk.get_children_async("/jobs");
/// let path = created.wait()?;
/// let children = listed.wait()?; // sent after the create, so it lists the new job
/// assert!(children.iter().any(|c| path.ends_with(c.as_str())));
/// # Ok(()) }
/// ```
#[must_use = "the request is sent; wait() gives its result"]
pub struct Pending<T> {
    fut: Boxed<T>,
    timeout: Option<Duration>,
    done: bool,
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("done", &self.done).finish()
    }
}

impl<T> Pending<T> {
    pub(crate) fn new(
        fut: impl Future<Output = Result<T>> + Send + 'static,
        timeout: Option<Duration>,
    ) -> Pending<T> {
        Pending {
            fut: Box::pin(fut),
            timeout,
            done: false,
        }
    }

    /// Blocks for the result, within the client's call timeout.
    pub fn wait(self) -> Result<T> {
        let t = self.timeout;
        self.wait_timeout(t)
    }

    /// Blocks for the result, at most `timeout` (`None`: no limit). On timeout the
    /// result is lost (`Err(Timeout)`); the request may still complete on the server.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_blocking::Client) {
    /// use std::time::Duration;
    /// let p = zk.get_async("/config");
    /// match p.wait_timeout(Some(Duration::from_millis(200))) {
    ///     Ok((data, _)) => println!("{data:?}"),
    ///     Err(zk_blocking::Error::Timeout) => println!("slow server; the read was not repeated"),
    ///     Err(e) => println!("{e}"),
    /// }
    /// # }
    /// ```
    pub fn wait_timeout(self, timeout: Option<Duration>) -> Result<T> {
        block_on(self.fut, timeout).unwrap_or(Err(Error::Timeout))
    }

    /// The result if it is already there (kazoo's `ready()` plus `get()`), without
    /// blocking; `None` while the request is in flight. Returns it only once.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_blocking::Client) {
    /// let mut p = zk.exists_async("/ready");
    /// loop {
    ///     if let Some(result) = p.try_get() {
    ///         println!("exists: {:?}", result.map(|s| s.is_some()));
    ///         break;
    ///     }
    ///     // ... other work ...
    /// }
    /// # }
    /// ```
    pub fn try_get(&mut self) -> Option<Result<T>> {
        if self.done {
            return None;
        }
        // Nobody waits on this poll; a waker that unparks this thread is harmless.
        let waker = zk_client::blocking::thread_waker(std::thread::current());
        let mut cx = Context::from_waker(&waker);
        match self.fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => {
                self.done = true;
                Some(r)
            }
            Poll::Pending => None,
        }
    }
}

/// Generates `name_async` beside each call: same arguments, returns at once.
macro_rules! async_calls {
    ($( $(#[$m:meta])* fn $async_name:ident => $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Client {
            $(
                $(#[$m])*
                pub fn $async_name(&self $(, $arg: $ty)*) -> Pending<$ret> {
                    Pending::new(self.as_async().$name($($arg),*), self.call_timeout())
                }
            )*
        }
    };
}

async_calls! {
    /// [`create`](Client::create), sent now (kazoo's `create_async`).
    fn create_async => create(&self, path: &str, data: impl IntoData, mode: CreateMode) -> String;
    /// [`create_with`](Client::create_with), sent now.
    fn create_with_async => create_with(&self, path: &str, data: impl IntoData, opts: &CreateOptions) -> (String, Stat);
    /// [`ensure_path`](Client::ensure_path), started now (kazoo's `ensure_path_async`).
    fn ensure_path_async => ensure_path(&self, path: &str) -> ();
    /// [`get_data`](Client::get_data), sent now (kazoo's `get_async`).
    fn get_async => get_data(&self, path: &str) -> (Data, Stat);
    /// [`set_data`](Client::set_data), sent now (kazoo's `set_async`).
    fn set_async => set_data(&self, path: &str, data: impl IntoData, version: Option<i32>) -> Stat;
    /// [`delete`](Client::delete), sent now (kazoo's `delete_async`).
    fn delete_async => delete(&self, path: &str, version: Option<i32>) -> ();
    /// [`exists`](Client::exists), sent now (kazoo's `exists_async`).
    fn exists_async => exists(&self, path: &str) -> Option<Stat>;
    /// [`get_children`](Client::get_children), sent now (kazoo's `get_children_async`).
    fn get_children_async => get_children(&self, path: &str) -> Vec<String>;
    /// [`get_children_stat`](Client::get_children_stat), sent now.
    fn get_children_stat_async => get_children_stat(&self, path: &str) -> (Vec<String>, Stat);
    /// [`get_acl`](Client::get_acl), sent now (kazoo's `get_acls_async`).
    fn get_acl_async => get_acl(&self, path: &str) -> (Vec<Acl>, Stat);
    /// [`set_acl`](Client::set_acl), sent now (kazoo's `set_acls_async`).
    fn set_acl_async => set_acl(&self, path: &str, acl: Vec<Acl>, version: Option<i32>) -> Stat;
    /// [`sync`](Client::sync), sent now (kazoo's `sync_async`).
    fn sync_async => sync(&self, path: &str) -> String;
    /// [`multi`](Client::multi), sent now.
    fn multi_async => multi(&self, ops: Vec<Op>) -> Vec<OpResult>;
}

/// Collects ops and commits them atomically (kazoo's `transaction()`).
///
/// ```no_run
/// # fn demo(zk: &zk_blocking::Client) -> zk_blocking::Result<()> {
/// use zk_blocking::{CreateMode, Error, ErrorCode, OpResult};
/// let tx = zk
///     .transaction()
///     .create("/app/a", "", CreateMode::Persistent)
///     .create("/app/b", "", CreateMode::Persistent);
/// match tx.commit() {
///     Ok(results) => assert!(matches!(results[0], OpResult::Create { .. })),
///     // Neither node was created:
///     Err(Error::MultiFailed { index, code: ErrorCode::NodeExists, .. }) => {
///         println!("op {index} exists already")
///     }
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
pub struct Transaction {
    inner: zk_client::Transaction,
    timeout: Option<Duration>,
}

impl Transaction {
    pub(crate) fn new(inner: zk_client::Transaction, timeout: Option<Duration>) -> Transaction {
        Transaction { inner, timeout }
    }
    /// Adds a create (default ACL).
    pub fn create(self, path: &str, data: impl IntoData, mode: CreateMode) -> Self {
        Transaction {
            inner: self.inner.create(path, data, mode),
            ..self
        }
    }
    /// Adds a create with its own ACL.
    pub fn create_with_acl(
        self,
        path: &str,
        data: impl IntoData,
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Self {
        Transaction {
            inner: self.inner.create_with_acl(path, data, acl, mode),
            ..self
        }
    }
    /// Adds a delete.
    pub fn delete(self, path: &str, version: Option<i32>) -> Self {
        Transaction {
            inner: self.inner.delete(path, version),
            ..self
        }
    }
    /// Adds a set-data.
    pub fn set_data(self, path: &str, data: impl IntoData, version: Option<i32>) -> Self {
        Transaction {
            inner: self.inner.set_data(path, data, version),
            ..self
        }
    }
    /// Adds a version check.
    pub fn check(self, path: &str, version: i32) -> Self {
        Transaction {
            inner: self.inner.check(path, version),
            ..self
        }
    }
    /// The ops so far.
    pub fn ops(&self) -> &[Op] {
        self.inner.ops()
    }
    /// Commits atomically and waits. On failure nothing is applied and
    /// [`Error::MultiFailed`] carries the failing op's index and every op's result.
    pub fn commit(self) -> Result<Vec<OpResult>> {
        self.commit_async().wait()
    }
    /// Sends the commit now; the handle gives its result.
    pub fn commit_async(self) -> Pending<Vec<OpResult>> {
        Pending::new(self.inner.commit(), self.timeout)
    }
}
