//! The public surface of the async adapters, written once: `async_adapter!`
//! declares in zk-tokio and in zk-smol the same items over each runtime's types.
//!
//! The logic behind those items is shared already (`driver`, `fourlw`,
//! `zk_tls::TlsConnector`); what stayed twice was the
//! API itself: the `Stream` and `Connector` traits (whose futures and streams are
//! the runtime's, so they cannot be one generic trait without changing what users
//! implement), `TcpConnector`, the TLS handshake, `four_letter_word(_with)`,
//! `retry`, and the glue from a connection task to the driver. A macro keeps each
//! adapter's public paths and signatures as they were (`zk_tokio::Connector` is a
//! trait of zk-tokio's) while the text is here once.

/// Declares an async adapter's public surface over its runtime's types; see
/// zk-client's `adapter.rs`. For zk-tokio and zk-smol only: not a stable API.
///
/// The adapter hands in, by path:
/// - `krate`, `runtime`, `tls_name`: its crate name, its runtime's name and its
///   TLS crate's name, for the docs (`zk_tokio`, `"tokio"`, `"tokio-rustls"`);
/// - `read`, `write`: the traits its streams implement; `tcp`: its `TcpStream`;
///   `tls`: its rustls crate (a `TlsConnector::from(Arc<ClientConfig>)` whose
///   `connect(name, tcp)` yields a stream), used under the adapter's `tls` feature;
/// - `poll_read`: `fn(Pin<&mut T>, &mut Context, &mut [u8]) -> Poll<io::Result<usize>>`
///   for any `T: read + Unpin`; `split`: its `io::split`;
/// - `sleep`: `fn(Duration) -> impl Future<Output = ()>`; `timeout`:
///   `async fn(Duration, F) -> Option<F::Output>` (`None` once the time passed);
/// - `spawn`: starts a connection's task, returning `task` (a
///   [`ConnTask`](crate::driver::ConnTask)); `detach`: starts the driver's task
///   and lets it run on its own (a [`ConnTask`](crate::driver::ConnTask) is
///   cancelled when dropped);
/// - `timer`: the driver's timer type; `new_timer`, `set_timer`, `poll_timer`:
///   `fn() -> timer`, `fn(&mut timer, Instant)`, `fn(&mut timer, &mut Context) -> Poll<()>`;
/// - `run_tcp`: `async fn(&Arc<Shared>, ConnId, tcp)`, the plain TCP connection.
///
/// It declares the public `Stream`, `ConnectFuture`, `Connector`, `TcpConnector`,
/// `tls` (under the adapter's `tls` feature), `four_letter_word`,
/// `four_letter_word_with`, `server_version` and `retry`, and the private
/// `start` (build the client, start the driver), which `connect_with` calls.
#[macro_export]
#[doc(hidden)]
macro_rules! async_adapter {
    (
        krate: $krate:ident,
        runtime: $runtime:literal,
        tls_name: $tls_name:literal,
        tls: $tls:ident,
        read: $read:path,
        write: $write:path,
        tcp: $tcp:ty,
        poll_read: $poll_read:path,
        split: $split:path,
        sleep: $sleep:path,
        timeout: $timeout:path,
        spawn: $spawn:path,
        task: $task:ty,
        detach: $detach:path,
        timer: $timer:ty,
        new_timer: $new_timer:path,
        set_timer: $set_timer:path,
        poll_timer: $poll_timer:path,
        run_tcp: $run_tcp:path $(,)?
    ) => {
        /// A byte stream to a server: plain TCP, or TLS from a connector of your own.
        pub trait Stream: $read + $write + Send + Unpin + 'static {
            /// For the adapter: whether this is a plain `TcpStream` (which it drives
            /// without a hand-off per request or reply).
            fn as_any(&self) -> &dyn ::std::any::Any;
            /// For the adapter: the stream as `Any`, to take a plain `TcpStream` back.
            fn into_any(self: Box<Self>) -> Box<dyn ::std::any::Any + Send>;
        }
        impl<T: $read + $write + Send + Unpin + 'static> Stream for T {
            fn as_any(&self) -> &dyn ::std::any::Any {
                self
            }
            fn into_any(self: Box<Self>) -> Box<dyn ::std::any::Any + Send> {
                self
            }
        }

        /// The future a [`Connector`] returns.
        pub type ConnectFuture = ::std::pin::Pin<
            Box<dyn ::std::future::Future<Output = ::std::io::Result<Box<dyn Stream>>> + Send>,
        >;

        #[doc = concat!(
            "Opens the transport to one server. The default is plain TCP ([`TcpConnector`]);\n",
            "TLS (e.g. ", $tls_name, " over a `TcpStream`) or an in-memory pipe slots in here\n",
            "without touching the protocol, which starts after this returns."
        )]
        pub trait Connector: Send + Sync + 'static {
            /// Connects to `host` (every address it resolves to, in turn: the
            /// adapter resolves nothing itself).
            fn connect(&self, host: $crate::HostAddr) -> ConnectFuture;
        }

        /// The runtime's TCP stream (named so for the `tls` module too).
        type AdapterTcp = $tcp;

        /// Plain TCP with Nagle off.
        #[derive(Debug, Clone, Copy, Default)]
        pub struct TcpConnector;

        impl Connector for TcpConnector {
            fn connect(&self, host: $crate::HostAddr) -> ConnectFuture {
                Box::pin(async move {
                    let s = AdapterTcp::connect((host.host.as_str(), host.port)).await?;
                    s.set_nodelay(true)?;
                    Ok(Box::new(s) as Box<dyn Stream>)
                })
            }
        }

        #[doc = concat!("TLS connectors (the `tls` feature): ", $tls_name, " over a `TcpStream`.")]
        #[cfg(feature = "tls")]
        #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
        pub mod tls {
            pub use zk_tls::{TlsConfig, TlsError, TlsHosts, TlsOptions};

            use super::{ConnectFuture, Connector, Stream};

            #[doc = concat!(
                "Dials each host over TCP, then runs the TLS handshake (", $tls_name, "); the table\n",
                "and constructors are `zk_tls`'s, the handshake this crate's. The driver bounds\n",
                "the whole attempt by the per-attempt connect timeout."
            )]
            pub type TlsConnector = zk_tls::TlsConnector<dyn Connector>;

            impl Connector for TlsConnector {
                fn connect(&self, host: $crate::HostAddr) -> ConnectFuture {
                    let Some(tls) = self.for_host(&host.host, host.port).cloned() else {
                        return super::TcpConnector.connect(host);
                    };
                    Box::pin(async move {
                        let name = tls.server_name_for(&host.host)?;
                        let tcp = super::AdapterTcp::connect((host.host.as_str(), host.port)).await?;
                        tcp.set_nodelay(true)?;
                        let stream = $tls::TlsConnector::from(tls.client_config())
                            .connect(name, tcp)
                            .await
                            .map_err(TlsError::handshake_failed)?;
                        Ok(Box::new(stream) as Box<dyn Stream>)
                    })
                }
            }

            /// What makes `TlsConnector::into()` an `Arc<dyn Connector>`.
            impl zk_tls::SharedConnector for dyn Connector {
                fn share(c: TlsConnector) -> ::std::sync::Arc<dyn Connector> {
                    ::std::sync::Arc::new(c)
                }
            }
        }

        /// Runs a four-letter word (`ruok`, `srvr`, `mntr`, ...) against one server over
        /// plain TCP; returns its text.
        ///
        /// ```no_run
        #[doc = concat!("# async fn demo() -> ", stringify!($krate), "::Result<()> {")]
        /// use std::time::Duration;
        #[doc = concat!("use ", stringify!($krate), "::{fourlw, HostAddr};")]
        /// let host = HostAddr { host: "127.0.0.1".into(), port: 2181 };
        #[doc = concat!("let ok = ", stringify!($krate), "::four_letter_word(&host, \"ruok\", Duration::from_secs(2)).await?;")]
        /// assert!(fourlw::parse_ruok(&ok));
        #[doc = concat!("let stats = fourlw::parse_stat(&", stringify!($krate), "::four_letter_word(&host, \"srvr\", Duration::from_secs(2)).await?);")]
        /// println!("{} in mode {}", stats.version, stats.mode);
        /// # Ok(()) }
        /// ```
        pub async fn four_letter_word(
            host: &$crate::HostAddr,
            cmd: &str,
            timeout: ::std::time::Duration,
        ) -> $crate::Result<String> {
            four_letter_word_with(&TcpConnector, host, cmd, timeout).await
        }

        /// [`four_letter_word`] over a connector of your own (TLS: ZooKeeper answers
        /// four-letter words on its secure port too).
        pub async fn four_letter_word_with(
            connector: &dyn Connector,
            host: &$crate::HostAddr,
            cmd: &str,
            timeout: ::std::time::Duration,
        ) -> $crate::Result<String> {
            $crate::fourlw::check_command(cmd)?;
            let io = async {
                let mut s = AdapterIo(connector.connect(host.clone()).await?);
                $crate::driver::four_letter_word(&mut s, cmd).await
            };
            match $timeout(timeout, io).await {
                Some(r) => r.map_err(|e| $crate::Error::Io(format!("{host}: {e}"))),
                None => Err($crate::Error::Timeout),
            }
        }

        /// The version of the server the client is on (from `srvr`).
        pub async fn server_version(
            client: &$crate::Client,
        ) -> $crate::Result<$crate::fourlw::ServerVersion> {
            client.server_version().await
        }

        #[doc = concat!("Runs `op` under a retry policy, sleeping with ", $runtime, "'s timer.")]
        ///
        /// ```no_run
        #[doc = concat!("# async fn demo(zk: ", stringify!($krate), "::Client) -> ", stringify!($krate), "::Result<()> {")]
        /// use std::time::Duration;
        #[doc = concat!("use ", stringify!($krate), "::retry::{Idempotence, RetryPolicy};")]
        /// let policy = RetryPolicy { deadline: Some(Duration::from_secs(30)), ..RetryPolicy::forever() };
        #[doc = concat!("let children = ", stringify!($krate), "::retry(&policy, Idempotence::Safe, || zk.get_children(\"/workers\")).await?;")]
        /// # let _ = children; Ok(()) }
        /// ```
        pub async fn retry<T, F, Fut>(
            policy: &$crate::retry::RetryPolicy,
            kind: $crate::retry::Idempotence,
            op: F,
        ) -> $crate::Result<T>
        where
            F: FnMut() -> Fut,
            Fut: ::std::future::Future<Output = $crate::Result<T>>,
        {
            policy.run(kind, $sleep, op).await
        }

        /// An I/O error as the last-connect-error text: a TLS error named as `zk_tls` does.
        fn describe_io(e: &::std::io::Error) -> String {
            #[cfg(feature = "tls")]
            return zk_tls::describe_io(e);
            #[cfg(not(feature = "tls"))]
            e.to_string()
        }

        /// The runtime's timer and the client's connector, for `Client::retry` and
        /// `Client::command`.
        struct AdapterRuntime {
            connector: ::std::sync::Arc<dyn Connector>,
        }

        impl $crate::runtime::Runtime for AdapterRuntime {
            fn sleep(&self, d: ::std::time::Duration) -> $crate::runtime::BoxFuture<()> {
                Box::pin($sleep(d))
            }

            fn four_letter_word(
                &self,
                host: $crate::HostAddr,
                cmd: String,
                timeout: ::std::time::Duration,
            ) -> $crate::runtime::BoxFuture<$crate::Result<String>> {
                let connector = self.connector.clone();
                Box::pin(async move { four_letter_word_with(&*connector, &host, &cmd, timeout).await })
            }
        }

        /// Builds the client on `clock` over `connector` and starts its driver; the
        /// caller waits for the session.
        fn start(
            builder: &$crate::ClientBuilder,
            connector: ::std::sync::Arc<dyn Connector>,
            clock: ::std::sync::Arc<dyn $crate::Clock>,
        ) -> $crate::Result<$crate::Client> {
            let hooks = ::std::sync::Arc::new(AdapterRuntime {
                connector: connector.clone(),
            });
            let data = ::std::sync::Arc::new(connector.clone());
            let (client, shared) = builder.build_for_adapter(clock, data, hooks)?;
            let rt = AdapterDriver {
                shared: shared.clone(),
                connector,
                timer: $new_timer(),
            };
            $detach($crate::driver::drive(shared, rt));
            Ok(client)
        }

        /// The runtime's part of the driver (`driver::drive`): a task per connection
        /// and one timer.
        struct AdapterDriver {
            shared: ::std::sync::Arc<$crate::Shared>,
            connector: ::std::sync::Arc<dyn Connector>,
            timer: $timer,
        }

        impl $crate::driver::DriverRuntime for AdapterDriver {
            type Task = $task;

            fn spawn(
                &mut self,
                conn: ::zk_proto::ConnId,
                host: $crate::HostAddr,
                timeout: ::std::time::Duration,
            ) -> $task {
                let (shared, connector) = (self.shared.clone(), self.connector.clone());
                $spawn(run_conn(shared, connector, conn, host, timeout))
            }

            fn set_timer(&mut self, deadline: ::std::time::Instant) {
                $set_timer(&mut self.timer, deadline)
            }

            fn poll_timer(&mut self, cx: &mut ::std::task::Context<'_>) -> ::std::task::Poll<()> {
                $poll_timer(&mut self.timer, cx)
            }
        }

        /// One transport: connect, then read and write concurrently until either side
        /// ends or the core closes it. A write that blocks stalls only this task.
        async fn run_conn(
            shared: ::std::sync::Arc<$crate::Shared>,
            connector: ::std::sync::Arc<dyn Connector>,
            conn: ::zk_proto::ConnId,
            host: $crate::HostAddr,
            timeout: ::std::time::Duration,
        ) {
            let attempt = $timeout(timeout, connector.connect(host.clone())).await;
            let attempt = attempt.map(|r| r.map_err(|e| describe_io(&e)));
            let Some(stream) = $crate::driver::opened(&shared, conn, &host, timeout, attempt)
            else {
                return;
            };
            let _open = shared.transport_guard();
            // `(*stream)`: the box itself is a `Stream` too, and would name itself.
            if (*stream).as_any().is::<$tcp>() {
                if let Ok(tcp) = stream.into_any().downcast::<$tcp>() {
                    $run_tcp(&shared, conn, *tcp).await;
                }
            } else {
                // A transport other than plain TCP, in a box of its own: the task of a
                // plain TCP connection (the usual case) stays small.
                let (rd, wr) = $split(stream);
                let (rd, wr) = (AdapterIo(rd), AdapterIo(wr));
                Box::pin($crate::driver::run_stream(
                    &shared,
                    conn,
                    &host,
                    rd,
                    wr,
                    describe_io,
                ))
                .await;
            }
            shared.disconnected(conn);
        }

        /// The runtime's stream (or half of one) in the terms of zk-client's shared loops.
        struct AdapterIo<T>(T);

        impl<T: $read + Unpin> $crate::driver::PollRead for AdapterIo<T> {
            fn poll_read_into(
                &mut self,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $poll_read(::std::pin::Pin::new(&mut self.0), cx, buf)
            }
        }

        impl<T: $write + Unpin> $crate::driver::PollWrite for AdapterIo<T> {
            fn poll_write_from(
                &mut self,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                <T as $write>::poll_write(::std::pin::Pin::new(&mut self.0), cx, buf)
            }

            fn poll_flush_out(
                &mut self,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                <T as $write>::poll_flush(::std::pin::Pin::new(&mut self.0), cx)
            }
        }
    };
}
