//! [`DistributedAtomicLong`]: Curator's atomic long on Curator's encoding.

use std::future::Future;
use std::time::Duration;

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::parent_of;
use crate::common::retrying;
use crate::common::{retryable, settle};
use crate::curator::mutex::{InterProcessMutex, MutexOptions};
use crate::curator::protected::ensure_containers;

/// The outcome of a [`DistributedAtomicLong`] operation (Curator's
/// `AtomicValue`): whether it went in, and the values before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtomicValue {
    /// Whether the operation went in (false: every try met a concurrent
    /// change, or the promoted lock was not had in time).
    pub succeeded: bool,
    /// The value before.
    pub pre: i64,
    /// The value written (meaningful when `succeeded`).
    pub post: i64,
}

/// Options of a [`DistributedAtomicLong`].
#[derive(Clone, Debug)]
pub struct AtomicOptions {
    /// Optimistic tries (read, then write at the version read) before giving
    /// up or promoting (Curator's retry policy). Default 10.
    pub tries: u32,
    /// Pause between tries. Default 10 ms.
    pub pause: Duration,
    /// Curator's `PromotedToLock`: after the optimistic tries fail, take an
    /// [`InterProcessMutex`] on this path (waiting at most `lock_timeout`)
    /// and try again under it, as often as `tries`.
    pub promoted_lock: Option<String>,
    /// How long to wait for the promoted lock. Default 10 s.
    pub lock_timeout: Duration,
}

impl Default for AtomicOptions {
    fn default() -> Self {
        AtomicOptions {
            tries: 10,
            pause: Duration::from_millis(10),
            promoted_lock: None,
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// Curator's `DistributedAtomicLong`: an `i64` on one persistent node,
/// **8-byte big-endian**; each change reads the value and its version and
/// writes at that version, trying again after a concurrent change, then
/// (optionally) again under a lock. A Java `DistributedAtomicLong` on the same
/// path (promoted or not, to the same lock path) adds up with this one.
///
/// # Layout (Curator 5)
///
/// `<path>`, persistent, created by the first change (missing parents as
/// containers); absent or empty reads as 0. Data that is not 8 bytes is
/// [`Error::Malformed`] (Java's "Corrupted data"). The promoted lock is an
/// [`InterProcessMutex`] on its own path.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::{AtomicOptions, DistributedAtomicLong};
/// let hits = DistributedAtomicLong::with_options(&zk, "/app/hits", AtomicOptions {
///     promoted_lock: Some("/app/hits-lock".into()),
///     ..AtomicOptions::default()
/// })?;
/// let v = hits.add(3).await?;
/// assert!(v.succeeded);
/// println!("{} -> {}", v.pre, v.post);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DistributedAtomicLong {
    client: Client,
    path: String,
    opts: AtomicOptions,
    mutex: Option<InterProcessMutex>,
}

fn decode_i64(path: &str, d: &[u8]) -> Result<i64> {
    if d.is_empty() {
        return Ok(0);
    }
    <[u8; 8]>::try_from(d).map(i64::from_be_bytes).map_err(|_| {
        Error::Malformed(format!(
            "Corrupted data for key {path}: {} bytes, not 8",
            d.len()
        ))
    })
}

impl DistributedAtomicLong {
    /// An atomic long on `path`, optimistic only.
    pub fn new(client: &Client, path: &str) -> Result<DistributedAtomicLong> {
        DistributedAtomicLong::with_options(client, path, AtomicOptions::default())
    }

    /// An atomic long with options.
    pub fn with_options(
        client: &Client,
        path: &str,
        opts: AtomicOptions,
    ) -> Result<DistributedAtomicLong> {
        zk_proto::path::validate_path(path, false)?;
        let mutex = match &opts.promoted_lock {
            Some(p) => Some(InterProcessMutex::with_options(
                client,
                p,
                MutexOptions::default(),
            )?),
            None => None,
        };
        Ok(DistributedAtomicLong {
            client: client.clone(),
            path: path.to_owned(),
            opts,
            mutex,
        })
    }

    /// The value now (Java's `get()`; 0 when the node is absent or empty).
    pub fn get(&self) -> impl Future<Output = Result<i64>> + Send + 'static {
        let (c, path) = (self.client.clone(), self.path.clone());
        async move {
            retrying(&c, || async {
                match c.get_data(&path).await {
                    Ok((d, _)) => decode_i64(&path, &d),
                    Err(Error::Server(ErrorCode::NoNode)) => Ok(0),
                    Err(e) => Err(e),
                }
            })
            .await
        }
    }

    /// Adds `delta` (Java's `add`; `subtract`, `increment`, `decrement` are
    /// adds too). Overflow wraps, as Java's `long` arithmetic does.
    pub fn add(&self, delta: i64) -> impl Future<Output = Result<AtomicValue>> + Send + 'static {
        self.change(move |v| v.wrapping_add(delta))
    }

    /// `add(1)`.
    pub fn increment(&self) -> impl Future<Output = Result<AtomicValue>> + Send + 'static {
        self.add(1)
    }

    /// `add(-1)`.
    pub fn decrement(&self) -> impl Future<Output = Result<AtomicValue>> + Send + 'static {
        self.add(-1)
    }

    /// Sets `value` by the same optimistic rules (Java's `trySet`).
    pub fn try_set(
        &self,
        value: i64,
    ) -> impl Future<Output = Result<AtomicValue>> + Send + 'static {
        self.change(move |_| value)
    }

    /// Sets `new` only if the value is `expected` now (Java's
    /// `compareAndSet`): one read and one versioned write, no retry.
    pub fn compare_and_set(
        &self,
        expected: i64,
        new: i64,
    ) -> impl Future<Output = Result<AtomicValue>> + Send + 'static {
        let this = self.clone();
        async move {
            let (pre, version) = this.read().await?;
            if pre != expected {
                return Ok(AtomicValue {
                    succeeded: false,
                    pre,
                    post: pre,
                });
            }
            let ok = this.write(version, new).await?;
            Ok(AtomicValue {
                succeeded: ok,
                pre,
                post: new,
            })
        }
    }

    /// The value and the version it was read at (`None`: no node).
    async fn read(&self) -> Result<(i64, Option<i32>)> {
        retrying(&self.client, || async {
            match self.client.get_data(&self.path).await {
                Ok((d, s)) => Ok((decode_i64(&self.path, &d)?, Some(s.version))),
                Err(Error::Server(ErrorCode::NoNode)) => Ok((0, None)),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// One write at `version` (a create when there was no node): false when
    /// someone changed it first. A lost answer fails with its error (whether
    /// it went in cannot be told).
    async fn write(&self, version: Option<i32>, v: i64) -> Result<bool> {
        let c = &self.client;
        loop {
            let r = match version {
                Some(ver) => c
                    .set_data(&self.path, v.to_be_bytes(), Some(ver))
                    .await
                    .map(|_| ()),
                None => {
                    if let Some(p) = parent_of(&self.path) {
                        retrying(c, || ensure_containers(c, p)).await?;
                    }
                    c.create(&self.path, v.to_be_bytes(), CreateMode::Persistent)
                        .await
                        .map(|_| ())
                }
            };
            match r {
                Ok(()) => return Ok(true),
                Err(Error::Server(
                    ErrorCode::BadVersion | ErrorCode::NodeExists | ErrorCode::NoNode,
                )) => return Ok(false),
                Err(e) if e.outcome_unknown() => return Err(e),
                Err(e) if retryable(&e) => settle(c, &e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    async fn tries(&self, make: impl Fn(i64) -> i64) -> Result<Option<AtomicValue>> {
        for i in 0..self.opts.tries.max(1) {
            if i > 0 {
                crate::common::Delay::new(self.opts.pause).await;
            }
            let (pre, version) = self.read().await?;
            let post = make(pre);
            if self.write(version, post).await? {
                return Ok(Some(AtomicValue {
                    succeeded: true,
                    pre,
                    post,
                }));
            }
        }
        Ok(None)
    }

    fn change(
        &self,
        make: impl Fn(i64) -> i64 + Send + Sync + 'static,
    ) -> impl Future<Output = Result<AtomicValue>> + Send + 'static {
        let this = self.clone();
        async move {
            if let Some(v) = this.tries(&make).await? {
                return Ok(v);
            }
            let failed = AtomicValue {
                succeeded: false,
                pre: 0,
                post: 0,
            };
            let Some(m) = &this.mutex else {
                return Ok(failed);
            };
            let Some(guard) = m.acquire_timeout(this.opts.lock_timeout).await? else {
                return Ok(failed);
            };
            let r = this.tries(&make).await;
            guard.release().await?;
            Ok(r?.unwrap_or(failed))
        }
    }

    /// [`get`](Self::get) from a thread.
    pub fn get_blocking(&self) -> Result<i64> {
        zk_client::blocking::block_on(self.get(), None).unwrap_or(Err(Error::Timeout))
    }

    /// [`add`](Self::add) from a thread.
    pub fn add_blocking(&self, delta: i64) -> Result<AtomicValue> {
        zk_client::blocking::block_on(self.add(delta), None).unwrap_or(Err(Error::Timeout))
    }

    /// [`compare_and_set`](Self::compare_and_set) from a thread.
    pub fn compare_and_set_blocking(&self, expected: i64, new: i64) -> Result<AtomicValue> {
        zk_client::blocking::block_on(self.compare_and_set(expected, new), None)
            .unwrap_or(Err(Error::Timeout))
    }
}
