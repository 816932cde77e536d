//! The client API, written once for every runtime. Its futures wait only on the
//! core's hand-off slots, so they run on any executor (and under the blocking
//! adapter's `block_on`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use zk_proto::{Acl, SessionState};

use crate::core::Shared;
use crate::error::{Error, Result};
use crate::watch::StateStream;

/// Ends the session when the last handle goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.detach();
    }
}

/// Client-side options that are not protocol policy.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// ACL for creates that do not name one.
    pub default_acl: Vec<Acl>,
    /// The policy the adapters' `retry` helpers use by default (kazoo's `command_retry`).
    pub command_retry: crate::retry::RetryPolicy,
    /// Follow the ensemble's own configuration (see `ClientBuilder::follow_ensemble`).
    pub follow_ensemble: bool,
    /// Events a persistent watch keeps unread before it ends as overflowed (see
    /// `ClientBuilder::watch_backlog`).
    pub watch_backlog: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            default_acl: Acl::open_unsafe(),
            command_retry: crate::retry::RetryPolicy::default(),
            follow_ensemble: false,
            watch_backlog: crate::core::DEFAULT_WATCH_BACKLOG,
        }
    }
}

/// A ZooKeeper client. Cheap to clone; the session closes when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
    opts: Arc<ClientOptions>,
}

/// A handle that does not keep the client alive: for listeners, callbacks and
/// tasks that the client itself holds, where a [`Client`] clone would be a cycle
/// (the client holds the listener, the listener the client) and the session would
/// never end when your last clone drops. Made by [`Client::downgrade`].
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) {
/// let weak = zk.downgrade();
/// zk.add_listener(move |state| {
///     if let Some(zk) = weak.upgrade() {
///         // Use the client; it is dropped at the end of the call.
///         let _ = (zk, state);
///     }
/// });
/// # }
/// ```
#[derive(Clone)]
pub struct WeakClient {
    handle: std::sync::Weak<Handle>,
    opts: Arc<ClientOptions>,
}

impl WeakClient {
    /// The client, unless every [`Client`] clone was dropped.
    pub fn upgrade(&self) -> Option<Client> {
        Some(Client {
            handle: self.handle.upgrade()?,
            opts: self.opts.clone(),
        })
    }
}

impl std::fmt::Debug for WeakClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakClient")
            .field("alive", &(self.handle.strong_count() > 0))
            .finish()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .finish()
    }
}

/// A coarse connection event (see [`Client::add_connection_listener`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionEvent {
    /// Connected for the first time (kazoo's and Curator's CONNECTED).
    Connected,
    /// Connected again after a suspension or a lost session (Curator's RECONNECTED;
    /// kazoo reports CONNECTED).
    Reconnected,
    /// Connected to a read-only server (Curator's READ_ONLY).
    ReadOnly,
    /// The connection is gone; the session may live on (SUSPENDED).
    Suspended,
    /// The session is gone: expired, closed, auth failed, or unreachable (LOST).
    Lost,
}

impl ConnectionEvent {
    /// kazoo's three states.
    ///
    /// ```
    /// use zk_client::{CoarseState, ConnectionEvent};
    /// assert_eq!(ConnectionEvent::Reconnected.coarse(), CoarseState::Connected);
    /// assert_eq!(ConnectionEvent::Suspended.coarse(), CoarseState::Suspended);
    /// assert_eq!(ConnectionEvent::Lost.coarse(), CoarseState::Lost);
    /// ```
    pub fn coarse(self) -> zk_proto::CoarseState {
        match self {
            ConnectionEvent::Connected
            | ConnectionEvent::Reconnected
            | ConnectionEvent::ReadOnly => zk_proto::CoarseState::Connected,
            ConnectionEvent::Suspended => zk_proto::CoarseState::Suspended,
            ConnectionEvent::Lost => zk_proto::CoarseState::Lost,
        }
    }
}

/// A registered state listener; pass to [`Client::remove_listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerId(u64);

/// See [`Client::diagnostics`].
#[derive(Clone)]
pub struct Diagnostics {
    shared: Arc<Shared>,
}

impl Diagnostics {
    /// The counts now.
    pub fn counts(&self) -> crate::core::LiveCounts {
        self.shared.live_counts()
    }

    /// When the server last sent anything on the live connection, on the client's
    /// clock; `None` while the session has no connection. The connection is given
    /// up after two thirds of the session timeout of silence from here (the
    /// client pings after half that without sending, 10 s at most), so
    /// `now - last_received` shows how close a quiet connection is to being
    /// dropped.
    pub fn last_received(&self) -> Option<std::time::Instant> {
        self.shared.last_received()
    }
}

impl std::fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.counts().fmt(f)
    }
}

/// Session identity, to resume the session elsewhere (kazoo's `client_id`).
/// Its `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id.
    pub id: i64,
    /// Password.
    pub password: Bytes,
    /// Negotiated timeout.
    pub timeout: Option<Duration>,
    /// Last zxid seen.
    pub last_zxid: i64,
}

impl std::fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInfo")
            .field("id", &format_args!("{:#x}", self.id))
            .field(
                "password",
                &format_args!("<redacted {} bytes>", self.password.len()),
            )
            .field("timeout", &self.timeout)
            .field("last_zxid", &self.last_zxid)
            .finish()
    }
}

impl Client {
    /// Wraps a core whose I/O an adapter drives.
    pub fn from_shared(shared: Arc<Shared>, opts: ClientOptions) -> Client {
        Client {
            handle: Arc::new(Handle { shared }),
            opts: Arc::new(opts),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    pub(crate) fn opts(&self) -> &ClientOptions {
        &self.opts
    }

    // ------------------------------------------------------------ state

    /// The current session state.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) {
    /// use zk_client::CoarseState;
    /// // kazoo's `zk.connected`:
    /// let connected = zk.state().is_connected();
    /// // kazoo's `zk.state` (CONNECTED / SUSPENDED / LOST):
    /// let coarse: CoarseState = zk.state().coarse();
    /// # let _ = (connected, coarse); }
    /// ```
    pub fn state(&self) -> SessionState {
        self.shared().state()
    }

    /// A stream of state changes, starting with the current state. It ends with
    /// `Closed`. A stream that is held but not read keeps only the newest 64
    /// states (the oldest are dropped), so it never grows without bound.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) {
    /// use zk_client::SessionState;
    /// let mut states = zk.state_stream();
    /// while let Some(state) = states.next().await {
    ///     match state {
    ///         SessionState::Suspended => println!("connection lost; the session may live on"),
    ///         SessionState::Expired => println!("session gone: ephemerals and watches with it"),
    ///         SessionState::Connected => println!("connected"),
    ///         other => println!("{other:?}"),
    ///     }
    /// }
    /// // The stream ended: the client was closed.
    /// # }
    /// ```
    pub fn state_stream(&self) -> StateStream {
        StateStream {
            queue: self.shared().state_queue(),
        }
    }

    /// A handle that does not keep the client alive (see [`WeakClient`]).
    pub fn downgrade(&self) -> WeakClient {
        WeakClient {
            handle: Arc::downgrade(&self.handle),
            opts: self.opts.clone(),
        }
    }

    /// Calls `f` on every state change, in order, on the client's listener thread
    /// (so `f` may call the client, even blocking calls).
    ///
    /// The client keeps `f` until [`remove_listener`](Client::remove_listener):
    /// an `f` that holds a `Client` clone keeps the session open after your last
    /// clone drops. Capture a [`WeakClient`] ([`downgrade`](Client::downgrade)) instead.
    /// The listener thread queues at most 1,024 changes; a listener that never
    /// returns loses the ones after that (with a warning), rather than growing memory.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) {
    /// use zk_client::SessionState;
    /// let id = zk.add_listener(|state| {
    ///     if state == SessionState::Expired {
    ///         eprintln!("session expired: ephemerals are gone, re-register");
    ///     }
    /// });
    /// // ...
    /// assert!(zk.remove_listener(id));
    /// # }
    /// ```
    pub fn add_listener(&self, f: impl Fn(SessionState) + Send + Sync + 'static) -> ListenerId {
        ListenerId(self.shared().add_listener(Arc::new(f)))
    }

    /// Calls `f` on kazoo's and Curator's coarse connection events (CONNECTED,
    /// SUSPENDED, LOST; Curator's RECONNECTED and READ_ONLY), never twice in a row,
    /// in order, on the listener thread. A new session after an expiry reports
    /// `Lost` then `Reconnected`.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) {
    /// use zk_client::ConnectionEvent;
    /// zk.add_connection_listener(|event| match event {
    ///     // A lock holder must assume it may have lost the lock...
    ///     ConnectionEvent::Suspended => eprintln!("suspended: pause work that needs the lock"),
    ///     // ...and knows it did once the session is gone.
    ///     ConnectionEvent::Lost => eprintln!("lost: ephemerals are gone"),
    ///     ConnectionEvent::Connected | ConnectionEvent::Reconnected => eprintln!("connected"),
    ///     ConnectionEvent::ReadOnly => eprintln!("read-only server"),
    /// });
    /// # }
    /// ```
    pub fn add_connection_listener(
        &self,
        f: impl Fn(ConnectionEvent) + Send + Sync + 'static,
    ) -> ListenerId {
        // A listener added to a client that already had a session hears the next
        // connection as a reconnection.
        let had_session = self.session().is_some();
        let seen = std::sync::Mutex::new((None::<ConnectionEvent>, had_session));
        self.add_listener(move |state| {
            let mut g = seen.lock().unwrap_or_else(|p| p.into_inner());
            let (last, ever_connected) = &mut *g;
            let ev = match state {
                SessionState::Connected if *ever_connected => ConnectionEvent::Reconnected,
                SessionState::Connected => ConnectionEvent::Connected,
                SessionState::ConnectedReadOnly => ConnectionEvent::ReadOnly,
                SessionState::Suspended => ConnectionEvent::Suspended,
                s if s.is_terminal() => ConnectionEvent::Lost,
                _ => return,
            };
            if state.is_connected() {
                *ever_connected = true;
            }
            if *last == Some(ev) {
                return;
            }
            *last = Some(ev);
            drop(g);
            f(ev)
        })
    }

    /// Removes a listener; false if it was not registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.shared().remove_listener(id.0)
    }

    /// Session id, password, negotiated timeout and last zxid, once a session exists.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) {
    /// use zk_client::ClientBuilder;
    /// let info = zk.session().expect("connected once");
    /// println!("session {:#x}, timeout {:?}", info.id, info.timeout);
    /// // Another process may take the session over (kazoo's `client_id=`):
    /// let builder = ClientBuilder::new("127.0.0.1:2181").resume(info.id, info.password);
    /// # let _ = builder; }
    /// ```
    pub fn session(&self) -> Option<SessionInfo> {
        let (creds, timeout, last_zxid) = self.shared().session_info();
        creds.map(|(id, password)| SessionInfo {
            id,
            password,
            timeout,
            last_zxid,
        })
    }

    /// Waits until the session is connected; errors if it ends first.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// // After a Suspended state, before work that needs the server:
    /// zk.wait_connected().await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_connected(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let mut s = self.state_stream();
        let renews = self.shared().expiry_policy() == zk_proto::ExpiryPolicy::NewSession;
        let shared = self.shared().clone();
        async move {
            loop {
                match s.next().await {
                    Some(st) if st.is_connected() => return Ok(()),
                    // A new session follows at once under the default expiry policy.
                    Some(SessionState::Expired) if renews => {}
                    Some(SessionState::Expired) => return Err(Error::SessionExpired),
                    Some(SessionState::AuthFailed) => {
                        return Err(shared
                            .sasl_failure()
                            .map_or(Error::AuthFailed, Error::SaslFailed))
                    }
                    Some(SessionState::Unreachable) => return Err(Error::Unreachable),
                    Some(SessionState::Closed) | None => return Err(Error::SessionClosed),
                    Some(_) => {}
                }
            }
        }
    }

    /// Ends the session and waits until it is closed. When connected,
    /// closeSession goes out at once, behind every request already made, and the
    /// server removes the session's ephemerals. When not connected, the client
    /// closes locally and the server expires the session (and its ephemerals)
    /// after its timeout, as with the Java client and kazoo.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{CreateMode, Error, SessionState};
    /// zk.create("/workers/me", "", CreateMode::Ephemeral).await?;
    /// zk.close().await?; // /workers/me is gone now, for everyone
    /// assert_eq!(zk.state(), SessionState::Closed);
    /// assert!(matches!(zk.exists("/").await, Err(Error::SessionClosed)));
    /// # Ok(()) }
    /// ```
    pub fn close(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let mut s = self.state_stream();
        self.shared().close();
        async move {
            s.wait_for(|st| st.is_terminal()).await;
            Ok(())
        }
    }

    /// Drops the connection without ending the session (as a crashed process
    /// would): its ephemerals stay until it expires, and another client can resume
    /// it from [`session`](Client::session). The client is Closed afterwards.
    ///
    /// ```no_run
    /// # fn demo(zk: zk_client::Client) {
    /// let info = zk.session().expect("a session");
    /// zk.abandon(); // the ephemerals stay until the session times out...
    /// let again = zk_client::ClientBuilder::new("127.0.0.1:2181").resume(info.id, info.password);
    /// // ...unless a client built from `again` takes the session back first.
    /// # let _ = again; }
    /// ```
    pub fn abandon(&self) {
        self.shared().abandon()
    }

    /// Starts a new session: kazoo's `restart()` (`stop()` then `start()`). A
    /// live session is closed first (its ephemerals go, its watches end, state
    /// listeners see `Closed`, then `Connecting` and `Connected`); after a
    /// terminal state (closed, expired, auth failed, unreachable) the new
    /// session starts at once. Calls made after `restart()` returns wait for
    /// the new session (with the default queue policy) rather than fail.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// // Under `ExpiryPolicy::Terminal`, Expired stays until you say so:
    /// if zk.state().is_terminal() {
    ///     zk.restart();
    ///     zk.wait_connected().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn restart(&self) {
        self.shared().restart()
    }

    /// The command retry policy set on the builder.
    pub fn command_retry(&self) -> &crate::retry::RetryPolicy {
        &self.opts.command_retry
    }

    /// Why the latest connection attempt failed, naming the host and the cause
    /// (refused, timed out, a TLS error such as an unknown CA or a wrong host name,
    /// a plain client on a TLS port), as the adapter or the handshake saw it.
    /// `None` until an attempt fails; kept after a later success, until the next
    /// failure replaces it. `connect()` puts it in
    /// [`Error::ConnectFailed`](crate::Error::ConnectFailed) when its deadline passes.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) {
    /// if !zk.state().is_connected() {
    ///     // e.g. "10.0.0.7:2281: invalid peer certificate: UnknownIssuer"
    ///     eprintln!("still trying: {:?}", zk.last_connect_error());
    /// }
    /// # }
    /// ```
    pub fn last_connect_error(&self) -> Option<String> {
        self.shared().last_connect_error()
    }

    /// What the adapter keeps with the client (see `Shared::set_adapter_data`).
    pub fn adapter_data(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.shared().adapter_data()
    }

    /// [`wait_connected`](Client::wait_connected) within `deadline` on the
    /// client's clock: `Ok(false)` once connected, `Ok(true)` if the deadline
    /// passed first. Under a virtual clock ([`ManualClock`](crate::ManualClock))
    /// the deadline is virtual too, like every other timer of the session; on the
    /// system clock it runs on the adapter's timer. The adapters' `connect` waits
    /// with this.
    pub fn wait_connected_within(
        &self,
        deadline: Duration,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        let connected = self.wait_connected();
        let passed = clock_sleep(self.shared(), deadline);
        async move {
            let mut connected = std::pin::pin!(connected);
            let mut passed = std::pin::pin!(passed);
            std::future::poll_fn(|cx| {
                if let std::task::Poll::Ready(r) = connected.as_mut().poll(cx) {
                    return std::task::Poll::Ready(r.map(|()| false));
                }
                passed.as_mut().poll(cx).map(|()| Ok(true))
            })
            .await
        }
    }

    /// The error for a `connect()` whose deadline passed: [`Error::ConnectFailed`]
    /// with the last attempt's cause, or [`Error::Timeout`] if none failed yet.
    pub fn connect_deadline_error(&self) -> Error {
        match self.last_connect_error() {
            Some(cause) => Error::ConnectFailed(cause),
            None => Error::Timeout,
        }
    }

    /// The server the session is on or connecting to.
    pub fn current_host(&self) -> Option<zk_proto::HostAddr> {
        self.shared().current_host()
    }

    /// The configured servers.
    pub fn hosts(&self) -> Vec<zk_proto::HostAddr> {
        self.shared().hosts()
    }

    /// Replaces the servers (`"h1:2181,h2:2181"`, no chroot) while the client runs:
    /// the Java client's `updateServerList`. If the current server is gone the
    /// client moves; if servers were added, a share of clients moves to them (each
    /// with probability 1 - old/new), so load spreads without a thundering herd.
    /// The session and its watches carry over.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
    /// zk.set_hosts("zk1:2181,zk2:2181,zk3:2181,zk4:2181")?;
    /// // The chroot is fixed at connect time:
    /// assert!(zk.set_hosts("zk1:2181/other").is_err());
    /// # Ok(()) }
    /// ```
    pub fn set_hosts(&self, hosts: &str) -> Result<()> {
        let c = zk_proto::Config::from_connect_string(hosts)?;
        if c.chroot.root().is_some() {
            return Err(Error::InvalidArgument(
                "set_hosts takes hosts only; the chroot cannot change".into(),
            ));
        }
        self.shared().set_hosts(c.hosts)?;
        Ok(())
    }

    /// The chroot from the connect string (`"/app"` for `"host:2181/app"`), if any.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) {
    /// // Connected with "127.0.0.1:2181/app": paths in calls, replies and events are
    /// // relative to /app.
    /// assert_eq!(zk.chroot().as_deref(), Some("/app"));
    /// # }
    /// ```
    pub fn chroot(&self) -> Option<String> {
        self.shared().chroot()
    }

    /// A handle on the client's live-object counts that does not keep the session
    /// open: tests use it to check that nothing leaks once the client is dropped.
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            shared: self.shared().clone(),
        }
    }
}

/// Completes once `d` has passed on `shared`'s clock: a virtual clock wakes it
/// itself; the system clock through the runtime's timer (a thread's without one).
fn clock_sleep(
    shared: &Arc<crate::core::Shared>,
    d: Duration,
) -> impl Future<Output = ()> + Send + 'static {
    let clock = shared.clock().clone();
    let runtime = shared.runtime();
    let at = clock.now().checked_add(d);
    let mut real: Option<crate::runtime::BoxFuture<()>> = None;
    std::future::poll_fn(move |cx| {
        // A deadline too far to represent never passes.
        let Some(at) = at else {
            return std::task::Poll::Pending;
        };
        if clock.now() >= at {
            return std::task::Poll::Ready(());
        }
        if let Some(r) = real.as_mut() {
            return r.as_mut().poll(cx);
        }
        if clock.wake_at(at, cx.waker()) {
            return std::task::Poll::Pending;
        }
        let left = at.saturating_duration_since(clock.now());
        let mut r = match &runtime {
            Some(rt) => rt.sleep(left),
            None => crate::runtime::thread_sleep(left),
        };
        let p = r.as_mut().poll(cx);
        real = Some(r);
        p
    })
}
