//! [`Counter`]: kazoo's shared counter (ASCII `repr` of an int or a float), and
//! the 4-byte big-endian form kazoo's `support_curator=True` shares with
//! Curator's `SharedCount` and `DistributedAtomicInteger`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::{parent_of, retryable, retrying, settle};

mod sealed {
    pub trait Sealed {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
    impl Sealed for i32 {}
}

/// A value a [`Counter`] can hold, with its encoding on the node. The type
/// picks the encoding:
///
/// * `i64`: ASCII decimal, kazoo's `Counter(path)` (`repr(int)`, e.g. `5`,
///   `-3`). kazoo's ints are unbounded; past the `i64` range an add fails
///   here.
/// * `f64`: ASCII, kazoo's `Counter(path, default=0.0)`, written exactly as
///   Python's `repr(float)` (`3.5`, `1e+16`, `1e-05`, `inf`, `nan`).
/// * `i32`: 4 bytes, big-endian, two's complement: kazoo's
///   `support_curator=True`, Curator's `SharedCount` and
///   `DistributedAtomicInteger`. An add that leaves the `i32` range fails (kazoo
///   raises `struct.error`).
///
/// Empty data (and null) reads as the counter's default, as in kazoo (a kazoo
/// counter creates its node empty).
pub trait CounterValue:
    sealed::Sealed + Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// The node's bytes for this value.
    fn encode(self) -> Vec<u8>;
    /// The value of non-empty node data.
    fn decode(data: &[u8]) -> Result<Self>;
    /// `self + delta`, or an error outside the type's range.
    fn plus(self, delta: Self) -> Result<Self>;
    /// Whether this encoding writes its default into a node it creates (the
    /// Curator form: a Curator `SharedCount` cannot read an empty node).
    const SEED_NEW_NODE: bool = false;
}

fn ascii(data: &[u8]) -> Result<&str> {
    std::str::from_utf8(data)
        .ok()
        .filter(|s| s.is_ascii())
        .map(str::trim)
        .ok_or_else(|| Error::Malformed(format!("counter data {data:?} is not ASCII")))
}

impl CounterValue for i64 {
    fn encode(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
    fn decode(data: &[u8]) -> Result<i64> {
        let s = ascii(data)?;
        // Python's int() also takes '_' between digits.
        let digits: String = s.chars().filter(|c| *c != '_').collect();
        digits
            .parse()
            .map_err(|_| Error::Malformed(format!("counter data {s:?} is not an integer")))
    }
    fn plus(self, delta: i64) -> Result<i64> {
        self.checked_add(delta).ok_or_else(|| {
            Error::InvalidArgument(format!("counter {self} + {delta} overflows an i64"))
        })
    }
}

impl CounterValue for f64 {
    fn encode(self) -> Vec<u8> {
        py_float_repr(self).into_bytes()
    }
    fn decode(data: &[u8]) -> Result<f64> {
        let s = ascii(data)?;
        s.parse()
            .map_err(|_| Error::Malformed(format!("counter data {s:?} is not a float")))
    }
    fn plus(self, delta: f64) -> Result<f64> {
        Ok(self + delta)
    }
}

impl CounterValue for i32 {
    fn encode(self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn decode(data: &[u8]) -> Result<i32> {
        <[u8; 4]>::try_from(data)
            .map(i32::from_be_bytes)
            .map_err(|_| {
                Error::Malformed(format!(
                    "Curator counter data is {} bytes, not 4",
                    data.len()
                ))
            })
    }
    fn plus(self, delta: i32) -> Result<i32> {
        self.checked_add(delta).ok_or_else(|| {
            Error::InvalidArgument(format!("counter {self} + {delta} leaves the 4-byte range"))
        })
    }
    const SEED_NEW_NODE: bool = true;
}

/// Python's `repr(float)`: the shortest digits that read back the same value,
/// in positional notation when the decimal exponent is in -4..16, otherwise
/// as `d.ddde+XX` (at least two exponent digits).
pub(crate) fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits too.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let body = if (-4..16).contains(&exp) {
        let decpt = exp + 1;
        let n = digits.len() as i32;
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            format!("{a}.{b}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    };
    format!("{sign}{body}")
}

/// The outcome of [`Counter::add`] (kazoo's `pre_value` and `post_value`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change<T> {
    /// The value the add started from.
    pub pre: T,
    /// The value it wrote.
    pub post: T,
    /// The node's data version after the write.
    pub version: i32,
}

/// A shared counter on one node, kazoo's `Counter`: each add reads the value
/// and its version and writes `value + delta` only if the version is
/// unchanged, trying again after a concurrent change, so concurrent adds (from
/// kazoo too) all count.
///
/// The node (and its parents) are created persistent on first use: empty, as
/// kazoo does, or, for the Curator form (`Counter<i32>`), holding the default,
/// since Curator's `SharedCount` cannot read an empty node.
///
/// **Lost answers.** If the connection drops before the write's answer comes,
/// the add reads the node again: at the same version, nothing was written and
/// it tries again; at a later version, whether its own write or someone
/// else's went in cannot be told, and the add fails with
/// [`Error::ConnectionLoss`] (kazoo tries again in that case, which can count an
/// add twice).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::Counter;
///
/// let hits = Counter::<i64>::new(&zk, "/app/hits")?;
/// let c = hits.add(2).await?;
/// println!("{} -> {}", c.pre, c.post);
///
/// let ratio = Counter::with_default(&zk, "/app/ratio", 1.0f64)?;
/// ratio.add(0.5).await?;
///
/// // Shared with kazoo's Counter(support_curator=True) and Curator's SharedCount.
/// let shared = Counter::<i32>::new(&zk, "/app/shared")?;
/// println!("shared = {}", shared.value_blocking()?);
/// # Ok(()) }
/// ```
#[must_use = "a Counter does nothing until read or added to"]
pub struct Counter<T: CounterValue = i64> {
    inner: Arc<Inner<T>>,
}

impl<T: CounterValue> Clone for Counter<T> {
    fn clone(&self) -> Self {
        Counter {
            inner: self.inner.clone(),
        }
    }
}

impl<T: CounterValue> std::fmt::Debug for Counter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("path", &self.inner.path)
            .field("default", &self.inner.default)
            .finish()
    }
}

struct Inner<T> {
    client: Client,
    path: String,
    default: T,
    ensured: AtomicBool,
}

impl<T: CounterValue + Default> Counter<T> {
    /// A counter on `path` whose default (the value of an empty node) is zero.
    pub fn new(client: &Client, path: &str) -> Result<Counter<T>> {
        Counter::with_default(client, path, T::default())
    }
}

impl<T: CounterValue> Counter<T> {
    /// A counter on `path` whose empty node reads as `default` (kazoo's
    /// `default`).
    pub fn with_default(client: &Client, path: &str, default: T) -> Result<Counter<T>> {
        zk_proto::path::validate_path(path, false)?;
        Ok(Counter {
            inner: Arc::new(Inner {
                client: client.clone(),
                path: path.to_owned(),
                default,
                ensured: AtomicBool::new(false),
            }),
        })
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The current value (waits through connection losses).
    pub fn value(&self) -> impl Future<Output = Result<T>> + Send + 'static {
        let inner = self.inner.clone();
        async move { Ok(inner.read().await?.0) }
    }

    /// Adds `delta` (negative to subtract); returns the values before and after.
    pub fn add(&self, delta: T) -> impl Future<Output = Result<Change<T>>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.add(delta).await }
    }

    /// [`value`](Counter::value) from a thread.
    pub fn value_blocking(&self) -> Result<T> {
        zk_client::blocking::block_on(self.value(), None).unwrap_or(Err(Error::Timeout))
    }

    /// [`add`](Counter::add) from a thread.
    pub fn add_blocking(&self, delta: T) -> Result<Change<T>> {
        zk_client::blocking::block_on(self.add(delta), None).unwrap_or(Err(Error::Timeout))
    }
}

impl<T: CounterValue> Inner<T> {
    async fn ensure(&self) -> Result<()> {
        if self.ensured.load(Ordering::SeqCst) {
            return Ok(());
        }
        if T::SEED_NEW_NODE {
            if let Some(parent) = parent_of(&self.path) {
                self.client.ensure_path(parent).await?;
            }
            match self
                .client
                .create(&self.path, self.default.encode(), CreateMode::Persistent)
                .await
            {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => {}
                Err(e) => return Err(e),
            }
        } else {
            self.client.ensure_path(&self.path).await?;
        }
        self.ensured.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Brings the session's server up to date with the leader, through
    /// connection losses.
    async fn sync(&self) -> Result<()> {
        retrying(&self.client, || self.client.sync(&self.path))
            .await
            .map(drop)
    }

    /// The value and the node's version, through connection losses.
    async fn read(&self) -> Result<(T, i32)> {
        loop {
            let r = async {
                self.ensure().await?;
                let (d, s) = self.client.get_data(&self.path).await?;
                let v = if d.is_empty() {
                    self.default
                } else {
                    T::decode(&d)?
                };
                Ok((v, s.version))
            }
            .await;
            match r {
                Err(Error::Server(ErrorCode::NoNode)) => {
                    self.ensured.store(false, Ordering::SeqCst)
                }
                Err(e) if retryable(&e) => settle(&self.client, &e).await?,
                r => return r,
            }
        }
    }

    async fn add(&self, delta: T) -> Result<Change<T>> {
        loop {
            let (pre, version) = self.read().await?;
            let post = pre.plus(delta)?;
            match self
                .client
                .set_data(&self.path, post.encode(), Some(version))
                .await
            {
                Ok(stat) => {
                    return Ok(Change {
                        pre,
                        post,
                        version: stat.version,
                    })
                }
                Err(Error::Server(ErrorCode::BadVersion | ErrorCode::NoNode)) => {}
                Err(e) if e.outcome_unknown() => {
                    // Applied or not? Only an unchanged version says "not".
                    // The session may be back on a member that has not yet
                    // applied our write (the reply that carried its zxid was
                    // lost): `sync` first, or the old version would read as
                    // "not applied" and the delta would be added twice.
                    settle(&self.client, &e).await?;
                    self.sync().await?;
                    let (_, now) = self.read().await?;
                    if now != version {
                        return Err(e);
                    }
                }
                Err(e) if retryable(&e) => settle(&self.client, &e).await?,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        for (x, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (3.5, "3.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e20, "1e+20"),
            (123456.789, "123456.789"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(py_float_repr(x), want, "{x:e}");
        }
        for s in ["3.5", "1e+16", "1e-05", "inf", "-inf", " 2.0 "] {
            let v = f64::decode(s.as_bytes()).unwrap();
            assert_eq!(f64::decode(&v.encode()).unwrap(), v);
        }
        assert!(f64::decode(b"nan").unwrap().is_nan());
    }

    #[test]
    fn encodings() {
        assert_eq!(5i64.encode(), b"5");
        assert_eq!((-3i64).encode(), b"-3");
        assert_eq!(i64::decode(b" 1_000 ").unwrap(), 1000);
        assert!(i64::decode(b"3.5").is_err());
        assert_eq!((-3i32).encode(), [0xff, 0xff, 0xff, 0xfd]);
        assert_eq!(i32::decode(&[0xff, 0xff, 0xff, 0xfd]).unwrap(), -3);
        assert!(i32::decode(&[0, 0, 0, 0, 1]).is_err());
        assert!(i32::MAX.plus(1).is_err());
        assert!(i64::MIN.plus(-1).is_err());
    }
}
