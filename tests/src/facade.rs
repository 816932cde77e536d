//! One synchronous face over the three adapters, so the integration suite is
//! written once and run against each. The method list is written once here; the
//! macro derives the trait and both implementations from it.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use zk_client::fourlw::ServerVersion;
use zk_client::{
    Acl, AddWatchMode, ClientBuilder, ClientInfo, CreateMode, CreateOptions, Data, HostAddr,
    IntoData, OneshotWatch, Op, OpResult, ReadOp, ReadResult, Result, SessionInfo, SessionState,
    Stat, StateStream, WatchStream, WatcherType,
};

/// Runs futures of an async adapter to completion from a test thread.
pub trait Runner: Send + Sync + 'static {
    /// The adapter's name in test output.
    const NAME: &'static str;
    /// Blocks on `f` within the adapter's runtime.
    fn block_on<F: Future>(f: F) -> F::Output;
    /// The adapter's connect.
    fn connect(b: &ClientBuilder) -> Result<zk_client::Client>;
    /// The adapter's four-letter-word call.
    fn four_letter(host: &HostAddr, cmd: &str) -> Result<String>;
    /// The adapter's server_version.
    fn server_version(c: &zk_client::Client) -> Result<ServerVersion>;
}

/// zk-tokio on a shared multi-thread runtime.
pub struct Tokio;

/// A multi-thread tokio runtime of two workers, timers and I/O on: what the
/// suites run zk-tokio's tasks and futures on.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn tokio_rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(multi_thread_runtime)
}

impl Runner for Tokio {
    const NAME: &'static str = "tokio";
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio_rt().block_on(f)
    }
    fn connect(b: &ClientBuilder) -> Result<zk_client::Client> {
        tokio_rt().block_on(zk_tokio::connect(b))
    }
    fn four_letter(host: &HostAddr, cmd: &str) -> Result<String> {
        tokio_rt().block_on(zk_tokio::four_letter_word(
            host,
            cmd,
            Duration::from_secs(5),
        ))
    }
    fn server_version(c: &zk_client::Client) -> Result<ServerVersion> {
        tokio_rt().block_on(zk_tokio::server_version(c))
    }
}

/// zk-smol on smol's global executor.
pub struct Smol;

impl Runner for Smol {
    const NAME: &'static str = "smol";
    fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }
    fn connect(b: &ClientBuilder) -> Result<zk_client::Client> {
        smol::block_on(zk_smol::connect(b))
    }
    fn four_letter(host: &HostAddr, cmd: &str) -> Result<String> {
        smol::block_on(zk_smol::four_letter_word(host, cmd, Duration::from_secs(5)))
    }
    fn server_version(c: &zk_client::Client) -> Result<ServerVersion> {
        smol::block_on(zk_smol::server_version(c))
    }
}

/// An async adapter's client seen through [`Zk`].
pub struct AsyncZk<R: Runner> {
    /// The client.
    pub client: zk_client::Client,
    _r: std::marker::PhantomData<R>,
}

impl<R: Runner> AsyncZk<R> {
    /// A client connected some other way (TLS, a connector of the test's own).
    pub fn new(client: zk_client::Client) -> Self {
        AsyncZk {
            client,
            _r: std::marker::PhantomData,
        }
    }
}

macro_rules! facade {
    ($( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        /// What the suite needs of a client, blocking.
        pub trait Zk: Send + Sync + Sized + 'static {
            /// Adapter name.
            const NAME: &'static str;
            /// Connects.
            fn connect(b: &ClientBuilder) -> Result<Self>;
            /// Session state.
            fn state(&self) -> SessionState;
            /// Session identity.
            fn session(&self) -> Option<SessionInfo>;
            /// State changes.
            fn state_stream(&self) -> StateStream;
            /// The server the session is on.
            fn current_host(&self) -> Option<HostAddr>;
            /// A four-letter word to a server.
            fn four_letter(host: &HostAddr, cmd: &str) -> Result<String>;
            /// Starts a new session (closing a live one first).
            fn restart(&self);
            /// Leaves without ending the session.
            fn abandon(&self);
            /// The async client underneath (for pipelined load).
            fn as_async(&self) -> &zk_client::Client;
            /// The server's version.
            fn server_version(&self) -> Result<ServerVersion>;
            /// Adds a state listener.
            fn add_listener(&self, f: impl Fn(SessionState) + Send + Sync + 'static) -> zk_client::ListenerId;
            /// Removes a state listener.
            fn remove_listener(&self, id: zk_client::ListenerId) -> bool;
            /// Replaces the host list.
            fn set_hosts(&self, hosts: &str) -> Result<()>;
            /// The configured hosts.
            fn hosts(&self) -> Vec<HostAddr>;
            /// Adds a coarse connection listener.
            fn add_connection_listener(&self, f: impl Fn(zk_client::ConnectionEvent) + Send + Sync + 'static) -> zk_client::ListenerId;
            $( #[allow(missing_docs)] fn $name(&self $(, $arg: $ty)*) -> Result<$ret>; )*
        }

        impl<R: Runner> Zk for AsyncZk<R> {
            const NAME: &'static str = R::NAME;
            fn connect(b: &ClientBuilder) -> Result<Self> {
                R::connect(b).map(|client| AsyncZk { client, _r: std::marker::PhantomData })
            }
            fn state(&self) -> SessionState { self.client.state() }
            fn session(&self) -> Option<SessionInfo> { self.client.session() }
            fn state_stream(&self) -> StateStream { self.client.state_stream() }
            fn current_host(&self) -> Option<HostAddr> { self.client.current_host() }
            fn four_letter(host: &HostAddr, cmd: &str) -> Result<String> { R::four_letter(host, cmd) }
            fn restart(&self) { self.client.restart() }
            fn abandon(&self) { self.client.abandon() }
            fn as_async(&self) -> &zk_client::Client { &self.client }
            fn server_version(&self) -> Result<ServerVersion> { R::server_version(&self.client) }
            fn add_listener(&self, f: impl Fn(SessionState) + Send + Sync + 'static) -> zk_client::ListenerId { self.client.add_listener(f) }
            fn remove_listener(&self, id: zk_client::ListenerId) -> bool { self.client.remove_listener(id) }
            fn add_connection_listener(&self, f: impl Fn(zk_client::ConnectionEvent) + Send + Sync + 'static) -> zk_client::ListenerId { self.client.add_connection_listener(f) }
            fn set_hosts(&self, hosts: &str) -> Result<()> { self.client.set_hosts(hosts) }
            fn hosts(&self) -> Vec<HostAddr> { self.client.hosts() }
            $( fn $name(&self $(, $arg: $ty)*) -> Result<$ret> { R::block_on(self.client.$name($($arg),*)) } )*
        }

        impl Zk for zk_blocking::Client {
            const NAME: &'static str = "blocking";
            fn connect(b: &ClientBuilder) -> Result<Self> { zk_blocking::connect(b) }
            fn state(&self) -> SessionState { zk_blocking::Client::state(self) }
            fn session(&self) -> Option<SessionInfo> { zk_blocking::Client::session(self) }
            fn state_stream(&self) -> StateStream { zk_blocking::Client::state_stream(self) }
            fn current_host(&self) -> Option<HostAddr> { zk_blocking::Client::current_host(self) }
            fn four_letter(host: &HostAddr, cmd: &str) -> Result<String> {
                zk_blocking::four_letter_word(host, cmd, Duration::from_secs(5))
            }
            fn restart(&self) { zk_blocking::Client::restart(self) }
            fn abandon(&self) { zk_blocking::Client::abandon(self) }
            fn as_async(&self) -> &zk_client::Client { zk_blocking::Client::as_async(self) }
            fn server_version(&self) -> Result<ServerVersion> { zk_blocking::Client::server_version(self) }
            fn add_listener(&self, f: impl Fn(SessionState) + Send + Sync + 'static) -> zk_client::ListenerId { zk_blocking::Client::add_listener(self, f) }
            fn remove_listener(&self, id: zk_client::ListenerId) -> bool { zk_blocking::Client::remove_listener(self, id) }
            fn add_connection_listener(&self, f: impl Fn(zk_client::ConnectionEvent) + Send + Sync + 'static) -> zk_client::ListenerId { zk_blocking::Client::add_connection_listener(self, f) }
            fn set_hosts(&self, hosts: &str) -> Result<()> { zk_blocking::Client::set_hosts(self, hosts) }
            fn hosts(&self) -> Vec<HostAddr> { zk_blocking::Client::as_async(self).hosts() }
            $( fn $name(&self $(, $arg: $ty)*) -> Result<$ret> { zk_blocking::Client::$name(self $(, $arg)*) } )*
        }
    };
}

zk_client::for_each_call!(facade);

/// zk-tokio through the facade.
pub type TokioZk = AsyncZk<Tokio>;
/// zk-smol through the facade.
pub type SmolZk = AsyncZk<Smol>;
/// zk-blocking through the facade.
pub type BlockingZk = zk_blocking::Client;
