//! The suite's harness: bounds, the watchdog, unique paths, connecting, polling,
//! reading data back, and what the async-only tests call on an adapter's runtime.

use std::future::Future;
use std::thread;
use std::time::{Duration, Instant};

use zk_client::fourlw::ServerVersion;
use zk_client::retry::Idempotence;
use zk_client::{ClientBuilder, CreateMode, Data, Result};
use zk_tests::facade::{Runner, Zk};
use zk_tests::server::shared_server;

/// Watchdog of one whole test (it may include starting the JVM on a busy machine).
const TEST_LIMIT: Duration = Duration::from_secs(150);
/// Bound of one wait that is expected to be quick.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// Requests kept in flight at once by the pipelining tests.
pub(crate) const N: usize = 1000;

/// Runs a test body on its own thread: its panic fails the test with its own message; a
/// body still running after [`TEST_LIMIT`] fails it as hung.
pub(crate) fn run(name: &str, body: impl FnOnce() + Send + 'static) {
    zk_tests::watchdog::run(name, TEST_LIMIT, body)
}

/// A path no other test (adapter, process) uses: `/api-<tag>-<adapter>-<pid>-<n>`.
pub(crate) fn unique<Z: Zk>(tag: &str) -> String {
    zk_tests::unique_path("api-", tag, Z::NAME)
}

pub(crate) fn connect<Z: Zk>(b: &ClientBuilder) -> Z {
    Z::connect(b).unwrap_or_else(|e| panic!("{}: connect: {e:?}", Z::NAME))
}

/// A new persistent node of the test's own under the root, made by `zk`: the test's base.
pub(crate) fn base<Z: Zk>(zk: &Z, tag: &str) -> String {
    let b = unique::<Z>(tag);
    zk.create(&b, "", CreateMode::Persistent).unwrap();
    b
}

pub(crate) fn connect_shared<Z: Zk>() -> Z {
    connect(&ClientBuilder::new(&shared_server().connect_string()))
}

/// Polls `f` every 10 ms until it returns `Some`, at most `limit`; panics with `what` then.
pub(crate) fn wait_until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The data of `path` as `zk` reads it: `None` for null, else the bytes. Also checks that
/// the Stat's data length agrees.
pub(crate) fn read<Z: Zk>(zk: &Z, path: &str) -> Option<Vec<u8>> {
    let (d, st) = zk
        .get_data(path)
        .unwrap_or_else(|e| panic!("{}: get_data {path}: {e:?}", Z::NAME));
    assert_eq!(st.data_length as usize, d.len(), "{}: {path}", Z::NAME);
    if d.is_null() {
        // Null reads like an empty slice, but is not equal to empty data.
        assert_eq!(&d[..], b"");
        assert_ne!(d, Data::new(""));
        assert_eq!(d.as_option(), None);
    }
    d.into_option().map(|b| b.to_vec())
}

/// What the async-only tests call on an adapter's client, on its runtime.
pub(crate) trait Ext: Runner {
    fn command(c: &zk_client::Client, cmd: &str) -> Result<String>;
    fn version(c: &zk_client::Client) -> Result<ServerVersion>;
    fn retry<T, F, Fut>(c: &zk_client::Client, kind: Idempotence, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>;
}

impl<R: Runner> Ext for R {
    fn command(c: &zk_client::Client, cmd: &str) -> Result<String> {
        R::block_on(c.command(cmd))
    }
    fn version(c: &zk_client::Client) -> Result<ServerVersion> {
        R::block_on(c.server_version())
    }
    fn retry<T, F, Fut>(c: &zk_client::Client, kind: Idempotence, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        R::block_on(c.retry(kind, op))
    }
}
