//! [`SharedValue`] and [`SharedCount`]: Curator's shared value on one
//! persistent node, changed by compare-and-set on the node's version, and
//! [`ValueChanges`], the stream of its new versions (Curator's
//! `SharedValueListener` / `SharedCountListener`).

use std::future::Future;
use std::time::{Duration, Instant};

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::parent_of;
use crate::common::{now, retryable, retrying, settle};
use crate::curator::protected::ensure_containers;
use crate::data_watch::DataWatch;
use crate::runtime::Spawner;

/// A value with the node version it was read at (Curator's `VersionedValue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionedValue<T> {
    /// The node's data version.
    pub version: i32,
    /// The value.
    pub value: T,
}

/// Curator's `SharedValue`: any bytes on one persistent node, changed by
/// compare-and-set on the node's version. A Java `SharedValue` on the same
/// path reads and sets the same bytes, and each side's compare-and-set fails
/// when the other wrote in between.
///
/// # Layout (Curator 5)
///
/// `<path>`, persistent, created by [`start`](SharedValue::start) with the
/// seed if absent (missing parents as containers); the data is the value as
/// it is, any length (empty included).
///
/// # Reads and changes
///
/// Java keeps a copy, watched, and answers `getValue` from it (so it lags a
/// write made elsewhere until the watch fires); here every read asks the
/// server. [`changes`](SharedValue::changes) is the listener: a stream of the
/// node's new versions.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::SharedValue;
/// let config = SharedValue::new(&zk, "/app/config", b"v1".to_vec())?;
/// config.start().await?;
/// let v = config.versioned_value().await?;
/// if !config.try_set_value(&v, b"v2".to_vec()).await? {
///     println!("someone else wrote first");
/// }
/// let mut changes = config.changes()?;
/// while let Some(v) = changes.next().await {
///     println!("version {}: {:?}", v.version, v.value);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SharedValue {
    client: Client,
    path: String,
    seed: Vec<u8>,
}

impl SharedValue {
    /// A value on `path`; `seed` is written if [`start`](Self::start) creates the node.
    pub fn new(client: &Client, path: &str, seed: impl Into<Vec<u8>>) -> Result<SharedValue> {
        zk_proto::path::validate_path(path, false)?;
        Ok(SharedValue {
            client: client.clone(),
            path: path.to_owned(),
            seed: seed.into(),
        })
    }

    /// The value's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Creates the node with the seed if it is absent (Java's `start()`).
    pub fn start(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let (c, path, seed) = (self.client.clone(), self.path.clone(), self.seed.clone());
        async move {
            retrying(&c, || async {
                if let Some(p) = parent_of(&path) {
                    ensure_containers(&c, p).await?;
                }
                match c.create(&path, seed.clone(), CreateMode::Persistent).await {
                    Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
        }
    }

    /// The value and its version, read now (Java's `getVersionedValue`).
    pub fn versioned_value(
        &self,
    ) -> impl Future<Output = Result<VersionedValue<Vec<u8>>>> + Send + 'static {
        let (c, path) = (self.client.clone(), self.path.clone());
        async move {
            retrying(&c, || async {
                let (d, s) = c.get_data(&path).await?;
                Ok(VersionedValue {
                    version: s.version,
                    value: d.to_vec(),
                })
            })
            .await
        }
    }

    /// The value now (Java's `getValue`).
    pub fn value(&self) -> impl Future<Output = Result<Vec<u8>>> + Send + 'static {
        let f = self.versioned_value();
        async move { Ok(f.await?.value) }
    }

    /// Sets `new` only if the node is still at `previous`'s version (Java's
    /// `trySetValue(previous, new)`): false when someone wrote in between.
    /// The server's version decides; Java also refuses when `previous` is not
    /// its watched copy.
    pub fn try_set_value(
        &self,
        previous: &VersionedValue<Vec<u8>>,
        new: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        self.try_set_at(previous.version, new.into())
    }

    /// One write at `version`. A lost answer is settled by reading again: at
    /// the same version the write did not go in and is made again; at a later
    /// one it cannot be told from another writer's, so it fails with the
    /// connection error.
    pub(crate) fn try_set_at(
        &self,
        version: i32,
        new: Vec<u8>,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        let (c, path) = (self.client.clone(), self.path.clone());
        async move {
            loop {
                match c.set_data(&path, new.clone(), Some(version)).await {
                    Ok(_) => return Ok(true),
                    Err(Error::Server(ErrorCode::BadVersion)) => return Ok(false),
                    Err(e) if e.outcome_unknown() => {
                        settle(&c, &e).await?;
                        let (_, s) = retrying(&c, || c.get_data(&path)).await?;
                        if s.version != version {
                            return Err(e);
                        }
                    }
                    Err(e) if retryable(&e) => settle(&c, &e).await?,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Sets the value whatever it was (Java's `setValue`); returns the node's
    /// new version.
    pub fn set_value(
        &self,
        new: impl Into<Vec<u8>>,
    ) -> impl Future<Output = Result<i32>> + Send + 'static {
        let (c, path, new) = (self.client.clone(), self.path.clone(), new.into());
        async move {
            retrying(&c, || async {
                c.set_data(&path, new.clone(), None)
                    .await
                    .map(|s| s.version)
            })
            .await
        }
    }

    /// The listener (Java's `getListenable().addListener`): a stream of the
    /// value at every new version, starting with the value now. A watch thread
    /// of its own; see [`changes_with_spawner`](Self::changes_with_spawner).
    pub fn changes(&self) -> Result<ValueChanges<Vec<u8>>> {
        self.changes_with_spawner(&Spawner::thread())
    }

    /// [`changes`](Self::changes), its watch loop run by `spawner`.
    pub fn changes_with_spawner(&self, spawner: &Spawner) -> Result<ValueChanges<Vec<u8>>> {
        ValueChanges::start(&self.client, &self.path, spawner, raw)
    }

    /// [`start`](Self::start) from a thread.
    pub fn start_blocking(&self) -> Result<()> {
        block(self.start())
    }

    /// [`value`](Self::value) from a thread.
    pub fn value_blocking(&self) -> Result<Vec<u8>> {
        block(self.value())
    }

    /// [`versioned_value`](Self::versioned_value) from a thread.
    pub fn versioned_value_blocking(&self) -> Result<VersionedValue<Vec<u8>>> {
        block(self.versioned_value())
    }

    /// [`set_value`](Self::set_value) from a thread.
    pub fn set_value_blocking(&self, new: impl Into<Vec<u8>>) -> Result<i32> {
        block(self.set_value(new))
    }

    /// [`try_set_value`](Self::try_set_value) from a thread.
    pub fn try_set_value_blocking(
        &self,
        previous: &VersionedValue<Vec<u8>>,
        new: impl Into<Vec<u8>>,
    ) -> Result<bool> {
        block(self.try_set_value(previous, new))
    }
}

/// A [`SharedValue`]'s value: the bytes as they are.
fn raw(_: &str, d: &[u8]) -> Result<Vec<u8>> {
    Ok(d.to_vec())
}

fn block<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    zk_client::blocking::block_on(f, None).unwrap_or(Err(Error::Timeout))
}

/// The new versions of a [`SharedValue`] or [`SharedCount`] (Curator's
/// `SharedValueListener.valueHasChanged`, `SharedCountListener.countHasChanged`),
/// read by a [`DataWatch`] on the node.
///
/// The first item is the value when the stream began (Java's listener hears
/// only of later changes); then one item per new version seen. A reader
/// slower than the writers skips to the latest version, never past it (Java's
/// listener is handed its copy at the time too). While the node does not
/// exist nothing is reported; data a [`SharedCount`] cannot read (not 4
/// bytes) is skipped with a warning. Dropping the stream removes its watch.
#[must_use = "dropping the stream stops its watch"]
pub struct ValueChanges<T> {
    watch: DataWatch,
    decode: fn(&str, &[u8]) -> Result<T>,
}

impl<T> std::fmt::Debug for ValueChanges<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueChanges")
            .field("path", &self.watch.path())
            .finish()
    }
}

impl<T> ValueChanges<T> {
    fn start(
        client: &Client,
        path: &str,
        spawner: &Spawner,
        decode: fn(&str, &[u8]) -> Result<T>,
    ) -> Result<ValueChanges<T>> {
        Ok(ValueChanges {
            watch: DataWatch::with_spawner(client, path, spawner)?,
            decode,
        })
    }

    /// The value of a report, if the node existed and its data decodes.
    fn item(&self, u: crate::DataUpdate) -> Option<VersionedValue<T>> {
        let (d, s) = (u.data?, u.stat?);
        match (self.decode)(self.watch.path(), &d) {
            Ok(value) => Some(VersionedValue {
                version: s.version,
                value,
            }),
            Err(e) => {
                tracing::warn!(path = %self.watch.path(), error = %e, "skipping a value that does not decode");
                None
            }
        }
    }

    /// The next version; `None` once the watch has ended (the session can
    /// never come back, see [`DataWatch`]).
    pub async fn next(&mut self) -> Option<VersionedValue<T>> {
        loop {
            let u = self.watch.next().await?;
            if let Some(v) = self.item(u) {
                return Some(v);
            }
        }
    }

    /// Blocks for the next version (no runtime needed): `Ok(None)` once the
    /// watch has ended, `Err(Timeout)` if none came within `timeout` (`None`:
    /// for ever).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<VersionedValue<T>>> {
        let deadline: Option<Instant> = timeout.map(|t| now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(now()));
            let Some(u) = self.watch.recv_timeout(left)? else {
                return Ok(None);
            };
            if let Some(v) = self.item(u) {
                return Ok(Some(v));
            }
        }
    }

    /// Why the watch ended on its own (`None` while it runs).
    pub fn end_reason(&self) -> Option<Error> {
        self.watch.end_reason()
    }
}

/// Curator's `SharedCount`: a [`SharedValue`] of 4 bytes, an `i32`
/// **big-endian**, changed by compare-and-set on the node's version. A Java
/// `SharedCount` on the same path reads and sets the same value.
///
/// # Layout (Curator 5)
///
/// `<path>`, persistent, created by [`start`](SharedCount::start) with the
/// seed if absent (missing parents as containers). Data that is not 4 bytes
/// is refused ([`Error::Malformed`]): Java cannot read it either.
///
/// Java keeps a watched copy and `getCount` answers from it; here every read
/// asks the server ([`versioned_value`](SharedCount::versioned_value)), so a
/// compare-and-set fails only when someone really wrote in between.
/// [`changes`](SharedCount::changes) is Java's `SharedCountListener`.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::SharedCount;
/// let count = SharedCount::new(&zk, "/app/count", 0)?;
/// count.start().await?;
/// let v = count.versioned_value().await?;
/// if count.try_set_count(v, v.value + 1).await? {
///     println!("set to {}", v.value + 1);
/// }
/// println!("after adds: {}", count.add(5).await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SharedCount {
    value: SharedValue,
}

fn decode_i32(path: &str, d: &[u8]) -> Result<i32> {
    <[u8; 4]>::try_from(d).map(i32::from_be_bytes).map_err(|_| {
        Error::Malformed(format!(
            "{path}: a SharedCount holds 4 bytes, not {}",
            d.len()
        ))
    })
}

impl SharedCount {
    /// A count on `path`; `seed` is written if [`start`](Self::start) creates the node.
    pub fn new(client: &Client, path: &str, seed: i32) -> Result<SharedCount> {
        Ok(SharedCount {
            value: SharedValue::new(client, path, seed.to_be_bytes())?,
        })
    }

    /// The count's path.
    pub fn path(&self) -> &str {
        self.value.path()
    }

    /// Creates the node with the seed if it is absent (Java's `start()`).
    pub fn start(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.value.start()
    }

    /// The value and its version, read now.
    pub fn versioned_value(
        &self,
    ) -> impl Future<Output = Result<VersionedValue<i32>>> + Send + 'static {
        let (f, path) = (self.value.versioned_value(), self.value.path.clone());
        async move {
            let v = f.await?;
            Ok(VersionedValue {
                version: v.version,
                value: decode_i32(&path, &v.value)?,
            })
        }
    }

    /// The value now (Java's `getCount`).
    pub fn count(&self) -> impl Future<Output = Result<i32>> + Send + 'static {
        let f = self.versioned_value();
        async move { Ok(f.await?.value) }
    }

    /// Sets `new` only if the node is still at `previous.version` (Java's
    /// `trySetCount`): false when someone wrote in between (see
    /// [`SharedValue::try_set_value`] for a lost answer).
    pub fn try_set_count(
        &self,
        previous: VersionedValue<i32>,
        new: i32,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        self.value
            .try_set_at(previous.version, new.to_be_bytes().to_vec())
    }

    /// Sets the value whatever it was (Java's `setCount`).
    pub fn set_count(&self, new: i32) -> impl Future<Output = Result<()>> + Send + 'static {
        let f = self.value.set_value(new.to_be_bytes());
        async move { f.await.map(|_| ()) }
    }

    /// Adds `delta` by compare-and-set until it goes in; returns the new
    /// value (the loop Java users write around `trySetCount`).
    pub fn add(&self, delta: i32) -> impl Future<Output = Result<i32>> + Send + 'static {
        let this = self.clone();
        async move {
            loop {
                let v = this.versioned_value().await?;
                let new = v.value.checked_add(delta).ok_or_else(|| {
                    Error::InvalidArgument(format!("{} + {delta} leaves the 4-byte range", v.value))
                })?;
                if this.try_set_count(v, new).await? {
                    return Ok(new);
                }
            }
        }
    }

    /// The listener (Java's `addListener(SharedCountListener)`): the count at
    /// every new version, starting with the count now.
    pub fn changes(&self) -> Result<ValueChanges<i32>> {
        self.changes_with_spawner(&Spawner::thread())
    }

    /// [`changes`](Self::changes), its watch loop run by `spawner`.
    pub fn changes_with_spawner(&self, spawner: &Spawner) -> Result<ValueChanges<i32>> {
        ValueChanges::start(&self.value.client, &self.value.path, spawner, decode_i32)
    }

    /// [`start`](Self::start) from a thread.
    pub fn start_blocking(&self) -> Result<()> {
        block(self.start())
    }

    /// [`count`](Self::count) from a thread.
    pub fn count_blocking(&self) -> Result<i32> {
        block(self.count())
    }

    /// [`versioned_value`](Self::versioned_value) from a thread.
    pub fn versioned_value_blocking(&self) -> Result<VersionedValue<i32>> {
        block(self.versioned_value())
    }

    /// [`set_count`](Self::set_count) from a thread.
    pub fn set_count_blocking(&self, new: i32) -> Result<()> {
        block(self.set_count(new))
    }

    /// [`add`](Self::add) from a thread.
    pub fn add_blocking(&self, delta: i32) -> Result<i32> {
        block(self.add(delta))
    }

    /// [`try_set_count`](Self::try_set_count) from a thread.
    pub fn try_set_count_blocking(&self, previous: VersionedValue<i32>, new: i32) -> Result<bool> {
        block(self.try_set_count(previous, new))
    }
}
