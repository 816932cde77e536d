//! The ZooKeeper client protocol as a pure state machine.
//!
//! This crate performs no I/O, reads no clock, spawns nothing and never panics
//! on bytes from the network. Bytes received and the current time go in; frames
//! to send, events and session transitions come out. Runtime adapters
//! (`zk-tokio`, `zk-smol`, `zk-blocking`) own the socket and the timer.
//!
//! # The adapter's loop
//!
//! Why: this is the whole job of a runtime adapter; write it once for your own
//! event loop (mio, an embedded executor, a test harness) and the session does the
//! protocol.
//!
//! The example drives a [`Session`] against the in-memory server of
//! `zk_proto::testing` (the `testing` feature), which stands where a real adapter has a
//! TCP socket: bytes from [`Session::poll_transmit`] are written to it, bytes read
//! from it go to [`Session::handle_input`]. Time is passed in; nothing sleeps.
//!
//! ```
//! # #[cfg(feature = "testing")]
//! # fn main() {
//! use std::time::{Duration, Instant};
//!
//! use bytes::Bytes;
//! use zk_proto::testing::server::{SimCluster, SimConnId};
//! use zk_proto::types::{CreateMode, EventType, OpCode};
//! use zk_proto::{
//!     Acl, Action, Config, ConnId, CreateRequest, Event, GetDataResponse, PathWatchRequest,
//!     Request, Response, Session, SessionState, SetDataRequest, WatchedEvent,
//! };
//!
//! /// After every input or command: do what the session asks until it asks nothing.
//! /// `server` is the peer; a real adapter has a socket per `ConnId` instead.
//! fn drain(s: &mut Session, server: &mut SimCluster, now: Instant, events: &mut Vec<Event>) {
//!     loop {
//!         let mut busy = false;
//!         while let Some(action) = s.poll_action() {
//!             busy = true;
//!             match action {
//!                 // Resolve `host`, open a TCP connection, report the outcome.
//!                 Action::Connect { conn, host } => {
//!                     assert_eq!(host.to_string(), "m0:2181");
//!                     if server.accept(0, SimConnId(conn.0), now) {
//!                         s.handle_connected(conn, now);
//!                     } else {
//!                         s.handle_connect_failed(conn, now);
//!                     }
//!                 }
//!                 // Close the socket; nothing more is written on it.
//!                 Action::Disconnect { conn } => server.handle_closed(SimConnId(conn.0), now),
//!                 _ => {}
//!             }
//!         }
//!         // Write these bytes to the connection's socket, in order, entirely.
//!         while let Some(t) = s.poll_transmit(now) {
//!             busy = true;
//!             server.handle_input(SimConnId(t.conn.0), &t.data, now);
//!         }
//!         // Bytes read from a socket (any chunking), and a socket that hit EOF.
//!         while let Some((conn, bytes)) = server.poll_output() {
//!             busy = true;
//!             s.handle_input(ConnId(conn.0), &bytes, now);
//!         }
//!         while let Some(conn) = server.poll_close() {
//!             busy = true;
//!             s.handle_disconnected(ConnId(conn.0), now);
//!         }
//!         // Hand these to the application (callers, watchers, state listeners).
//!         while let Some(e) = s.poll_event() {
//!             busy = true;
//!             events.push(e);
//!         }
//!         if !busy {
//!             return;
//!         }
//!     }
//! }
//!
//! // One start instant; every later time is this plus a duration.
//! let t0 = Instant::now(); // clock-exception: a doc example needs a start instant
//! let mut now = t0;
//! let mut server = SimCluster::new(1, now);
//! let mut events = Vec::new();
//!
//! // The session asks for a connection at once (Action::Connect).
//! let mut session = Session::new(Config::from_connect_string("m0:2181").unwrap(), now);
//! drain(&mut session, &mut server, now, &mut events);
//! assert_eq!(session.state(), SessionState::Connected);
//! assert!(events.contains(&Event::StateChanged {
//!     from: SessionState::Connecting,
//!     to: SessionState::Connected,
//! }));
//! assert!(session.session_id().is_some());
//!
//! // Commands return a RequestId at once; the reply comes later as Event::Completed.
//! let create = session
//!     .submit(
//!         Request::Create(CreateRequest {
//!             path: "/app".into(),
//!             data: Some(Bytes::from_static(b"v1")),
//!             acl: Acl::open_unsafe(),
//!             flags: CreateMode::Persistent.flags(),
//!         }),
//!         now,
//!     )
//!     .unwrap();
//! let read = session
//!     .submit(
//!         Request::GetData(PathWatchRequest {
//!             path: "/app".into(),
//!             watch: true,
//!         }),
//!         now,
//!     )
//!     .unwrap();
//! let watcher = read.watcher.expect("a watching read registers a watcher");
//! events.clear();
//! drain(&mut session, &mut server, now, &mut events);
//! let mut created = false;
//! let mut data = None;
//! for e in &events {
//!     match e {
//!         Event::Completed { id, result: Ok(Response::Create(r)) } if *id == create.id => {
//!             created = r.path == "/app";
//!         }
//!         Event::Completed { id, result: Ok(Response::GetData(GetDataResponse { data: d, .. })) }
//!             if *id == read.id =>
//!         {
//!             data = d.clone();
//!         }
//!         _ => {}
//!     }
//! }
//! assert!(created);
//! assert_eq!(data.as_deref(), Some(&b"v1"[..]));
//!
//! // Another client changes the node: the watch fires as Event::Watch.
//! server
//!     .admin(
//!         Request::SetData(SetDataRequest {
//!             path: "/app".into(),
//!             data: Some(Bytes::from_static(b"v2")),
//!             version: -1,
//!         }),
//!         now,
//!     )
//!     .unwrap();
//! events.clear();
//! drain(&mut session, &mut server, now, &mut events);
//! assert_eq!(
//!     events,
//!     [Event::Watch {
//!         watcher,
//!         event: WatchedEvent {
//!             event_type: EventType::NodeDataChanged,
//!             path: "/app".into(),
//!             zxid: None,
//!         },
//!     }]
//! );
//!
//! // The timer: sleep until poll_timeout (here: the time to ping), then handle_timeout.
//! let wake = session.poll_timeout().expect("a connected session has a timer");
//! assert!(wake > now && wake <= now + Duration::from_secs(10));
//! now = wake;
//! server.clear_request_log();
//! session.handle_timeout(now);
//! drain(&mut session, &mut server, now, &mut events);
//! assert_eq!(server.request_log().len(), 1);
//! assert_eq!(server.request_log()[0].2, OpCode::Ping);
//! assert!(session.poll_timeout().unwrap() > now);
//!
//! // Closing: closeSession goes out, its reply ends the session.
//! events.clear();
//! session.close(now);
//! drain(&mut session, &mut server, now, &mut events);
//! assert_eq!(session.state(), SessionState::Closed);
//! assert!(server.sessions().is_empty());
//! assert_eq!(session.poll_timeout(), None);
//! # }
//! # #[cfg(not(feature = "testing"))]
//! # fn main() {}
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod digest;
pub mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod hosts;
pub mod jute;
pub mod ops;
pub mod path;
pub mod records;
pub mod sasl;
pub mod session;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod time;
pub mod types;
pub mod watches;

pub use config::{Config, ExpiryPolicy, HostAddr, QueuePolicy};
pub use error::{DecodeError, ErrorCode, UsageError, ZkError};
pub use ops::{Request, Response};
pub use records::*;
pub use session::{
    Action, CoarseState, ConnId, DisconnectReason, Event, RemovalReason, RequestId, Session,
    SessionState, Submitted, Transmit, WatchedEvent,
};
pub use types::*;
pub use watches::{WatchKind, WatcherId};
