//! The client's metrics through the [`metrics`](https://docs.rs/metrics) facade
//! (the `metrics` feature): their names, described once, and the per-client
//! handles the core records through. `docs/observability.md` has the table.
//!
//! Labels stay few and bounded: the operation (`op`, ZooKeeper's name:
//! `getData`, `create`... about twenty), the outcome (`ok`, `error`), the
//! error's code name (`NoNode`..., about thirty) and the session state (four).
//! Never a path.
//!
//! Handles are registered with the recorder installed when the client is built
//! (each operation's on its first call): install the recorder first (for
//! example `metrics_exporter_prometheus::PrometheusBuilder::install_recorder`), as with
//! most libraries. A client built before has handles that do nothing.
//!
//! ```no_run
//! // Install the recorder before building clients.
//! let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .install_recorder()
//!     .expect("a Prometheus recorder");
//! zk_client::metrics::describe();
//! // ... build clients, make calls; then serve this text on your /metrics
//! // endpoint: `zookeeper_client_requests_total{op="getData"}`,
//! // `zookeeper_client_request_duration_seconds{op="getData",outcome="ok"}`...
//! let text: String = prometheus.render();
//! # let _ = text;
//! ```

use std::sync::Once;
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Unit};
use zk_proto::{ErrorCode, SessionState};

/// Requests sent, by `op` (counter).
pub const REQUESTS: &str = "zookeeper.client.requests";
/// Each request's time from submit to completion in seconds, by `op` and
/// `outcome` (`ok` / `error`) (histogram).
pub const REQUEST_DURATION: &str = "zookeeper.client.request.duration";
/// Failed requests, by `op` and `code` (the ZooKeeper error code's name) (counter).
pub const ERRORS: &str = "zookeeper.client.errors";
/// Bytes written to the transports, pings and handshakes included (counter).
pub const BYTES_SENT: &str = "zookeeper.client.sent.bytes";
/// Bytes read from the transports (counter).
pub const BYTES_RECEIVED: &str = "zookeeper.client.received.bytes";
/// Connections established after the client's first (counter).
pub const RECONNECTS: &str = "zookeeper.client.reconnects";
/// Sessions the server declared expired (counter).
pub const SESSION_EXPIRATIONS: &str = "zookeeper.client.session.expirations";
/// Sessions ended because the server refused the credentials (counter).
pub const AUTH_FAILURES: &str = "zookeeper.client.auth.failures";
/// Watch events handed to a watch's reader (counter).
pub const WATCH_EVENTS: &str = "zookeeper.client.watch.events";
/// Watch registrations re-sent to the server on a reconnect (counter).
pub const WATCHES_RESTORED: &str = "zookeeper.client.watches.restored";
/// Requests submitted and not yet completed (gauge).
pub const IN_FLIGHT: &str = "zookeeper.client.requests.in_flight";
/// Bytes waiting to be written to a transport (gauge).
pub const OUTBOUND_QUEUED: &str = "zookeeper.client.outbound.queued.bytes";
/// Clients by session `state`: `connecting`, `connected`, `read_only`,
/// `suspended` (gauge; a finished client counts in none).
pub const SESSIONS: &str = "zookeeper.client.sessions";
/// Watch registrations the sessions hold (gauge).
pub const WATCHES: &str = "zookeeper.client.watches";

/// Describes every metric to the installed recorder (names, units, meanings).
/// Runs once per process, when the first client is built; call it yourself
/// after installing a recorder if clients were built before.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(REQUESTS, Unit::Count, "ZooKeeper requests sent, by op");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "ZooKeeper request time from submit to completion, by op and outcome"
    );
    describe_counter!(
        ERRORS,
        Unit::Count,
        "failed ZooKeeper requests, by op and error code"
    );
    describe_counter!(BYTES_SENT, Unit::Bytes, "bytes written to ZooKeeper");
    describe_counter!(BYTES_RECEIVED, Unit::Bytes, "bytes read from ZooKeeper");
    describe_counter!(
        RECONNECTS,
        Unit::Count,
        "ZooKeeper connections established after a client's first"
    );
    describe_counter!(
        SESSION_EXPIRATIONS,
        Unit::Count,
        "ZooKeeper sessions that expired"
    );
    describe_counter!(
        AUTH_FAILURES,
        Unit::Count,
        "ZooKeeper sessions ended by refused credentials"
    );
    describe_counter!(WATCH_EVENTS, Unit::Count, "watch events delivered");
    describe_counter!(
        WATCHES_RESTORED,
        Unit::Count,
        "watch registrations restored on reconnects"
    );
    describe_gauge!(IN_FLIGHT, Unit::Count, "ZooKeeper requests in flight");
    describe_gauge!(
        OUTBOUND_QUEUED,
        Unit::Bytes,
        "bytes waiting to be written to ZooKeeper"
    );
    describe_gauge!(SESSIONS, Unit::Count, "ZooKeeper clients by session state");
    describe_gauge!(WATCHES, Unit::Count, "watch registrations held");
}

/// One operation's handles.
struct OpHandles {
    requests: Counter,
    ok: Histogram,
    error: Histogram,
}

/// A client's handles and what it added to the gauges (taken back when it ends).
pub(crate) struct Metrics {
    ops: Vec<Option<OpHandles>>,
    sent: Counter,
    received: Counter,
    reconnects: Counter,
    expirations: Counter,
    auth_failures: Counter,
    watch_events: Counter,
    watches_restored: Counter,
    in_flight: Gauge,
    in_flight_now: usize,
    outbound: Gauge,
    outbound_now: usize,
    watches: Gauge,
    watches_now: usize,
    /// The state this client counts in (`None`: none, it is over).
    state: Option<(&'static str, Gauge)>,
}

fn state_label(s: SessionState) -> Option<&'static str> {
    match s {
        SessionState::Connecting => Some("connecting"),
        SessionState::Connected => Some("connected"),
        SessionState::ConnectedReadOnly => Some("read_only"),
        SessionState::Suspended => Some("suspended"),
        _ => None,
    }
}

fn state_gauge(s: SessionState) -> Option<(&'static str, Gauge)> {
    state_label(s).map(|l| (l, ::metrics::gauge!(SESSIONS, "state" => l)))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        static DESCRIBED: Once = Once::new();
        DESCRIBED.call_once(describe);
        let state = state_gauge(SessionState::Connecting);
        if let Some((_, g)) = &state {
            g.increment(1.0);
        }
        Metrics {
            ops: Vec::new(),
            sent: ::metrics::counter!(BYTES_SENT),
            received: ::metrics::counter!(BYTES_RECEIVED),
            reconnects: ::metrics::counter!(RECONNECTS),
            expirations: ::metrics::counter!(SESSION_EXPIRATIONS),
            auth_failures: ::metrics::counter!(AUTH_FAILURES),
            watch_events: ::metrics::counter!(WATCH_EVENTS),
            watches_restored: ::metrics::counter!(WATCHES_RESTORED),
            in_flight: ::metrics::gauge!(IN_FLIGHT),
            in_flight_now: 0,
            outbound: ::metrics::gauge!(OUTBOUND_QUEUED),
            outbound_now: 0,
            watches: ::metrics::gauge!(WATCHES),
            watches_now: 0,
            state,
        }
    }

    fn op(&mut self, i: usize, name: &'static str) -> &OpHandles {
        if self.ops.len() <= i {
            self.ops.resize_with(i + 1, || None);
        }
        self.ops[i].get_or_insert_with(|| OpHandles {
            requests: ::metrics::counter!(REQUESTS, "op" => name),
            ok: ::metrics::histogram!(REQUEST_DURATION, "op" => name, "outcome" => "ok"),
            error: ::metrics::histogram!(REQUEST_DURATION, "op" => name, "outcome" => "error"),
        })
    }

    pub(crate) fn submitted(&mut self, op: usize, name: &'static str) {
        self.op(op, name).requests.increment(1);
        self.in_flight.increment(1.0);
        self.in_flight_now += 1;
    }

    pub(crate) fn completed(
        &mut self,
        op: usize,
        name: &'static str,
        code: Option<ErrorCode>,
        took: Duration,
    ) {
        self.in_flight.decrement(1.0);
        self.in_flight_now = self.in_flight_now.saturating_sub(1);
        let h = self.op(op, name);
        match code {
            None => h.ok.record(took.as_secs_f64()),
            Some(code) => {
                h.error.record(took.as_secs_f64());
                // Errors are few: registered as they come.
                ::metrics::counter!(ERRORS, "op" => name, "code" => code.name()).increment(1);
            }
        }
    }

    pub(crate) fn state_changed(
        &mut self,
        from: SessionState,
        to: SessionState,
        was_connected: bool,
        watches: usize,
    ) {
        if to.is_connected() && !from.is_connected() && was_connected {
            self.reconnects.increment(1);
            self.watches_restored.increment(watches as u64);
        }
        match to {
            SessionState::Expired => self.expirations.increment(1),
            SessionState::AuthFailed => self.auth_failures.increment(1),
            _ => {}
        }
        if state_label(to) != self.state.as_ref().map(|(l, _)| *l) {
            if let Some((_, g)) = self.state.take() {
                g.decrement(1.0);
            }
            self.state = state_gauge(to);
            if let Some((_, g)) = &self.state {
                g.increment(1.0);
            }
        }
    }

    #[inline]
    pub(crate) fn watch_delivered(&self) {
        self.watch_events.increment(1);
    }

    #[inline]
    pub(crate) fn sent(&self, n: usize) {
        self.sent.increment(n as u64);
    }

    #[inline]
    pub(crate) fn received(&self, n: usize) {
        self.received.increment(n as u64);
    }

    /// Moves the sampled gauges to the session's counts.
    #[inline]
    pub(crate) fn sample(&mut self, watches: usize, outbound: usize) {
        move_gauge(&self.watches, &mut self.watches_now, watches);
        move_gauge(&self.outbound, &mut self.outbound_now, outbound);
    }

    /// Takes back everything this client added to the gauges.
    pub(crate) fn finish(&mut self) {
        move_gauge(&self.watches, &mut self.watches_now, 0);
        move_gauge(&self.outbound, &mut self.outbound_now, 0);
        move_gauge(&self.in_flight, &mut self.in_flight_now, 0);
        if let Some((_, g)) = self.state.take() {
            g.decrement(1.0);
        }
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A gauge shared by every client in the process moves by this client's change.
#[inline]
fn move_gauge(g: &Gauge, now: &mut usize, to: usize) {
    if *now != to {
        if to > *now {
            g.increment((to - *now) as f64);
        } else {
            g.decrement((*now - to) as f64);
        }
        *now = to;
    }
}
