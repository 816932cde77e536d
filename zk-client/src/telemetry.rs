//! What the client tells an operator (issue 23): a `tracing` span per request,
//! one per session and one per connection, and, with the `metrics` feature,
//! counters, gauges and a latency histogram through the `metrics` facade.
//! `docs/observability.md` lists every span field and metric.
//!
//! Why here, once: every adapter drives the same core, so each gets the same
//! spans and metrics. The core calls the hooks below at the points it already
//! passes (a submit, a completion, a state change, a connection's start and
//! end, bytes in and out); all the recording lives in this module.
//!
//! # Cost when off
//!
//! With no subscriber interested in the spans (none installed, or one whose
//! filter leaves `zk_client` out), a request pays one disabled-span check: the
//! span name `<op> <path>` is never formatted, no field is recorded, and the
//! session is not asked for the request's wire details. Without the `metrics`
//! feature nothing else runs. With it, a request is followed from submit to
//! completion (its operation and start time) and the handles of a recorder that
//! is not installed do nothing.
//!
//! # Span names
//!
//! A `tracing` span's name is fixed where it is created, so request spans are
//! named `zookeeper.request` and carry the OpenTelemetry name `<op> <path>` in
//! `otel.name`, which `tracing-opentelemetry` uses as the exported span's name.

use std::time::Instant;

use tracing::field::Empty;
use tracing::Span;
use zk_proto::{
    ConnId, DisconnectReason, ErrorCode, HostAddr, Request, RequestId, Response, Session,
    SessionState, ZkError,
};

use crate::id_map::IdMap;

/// The target of every span and event of this module (for filters:
/// `zk_client::telemetry=info`).
pub const TARGET: &str = "zk_client::telemetry";

/// A request's span and what its metrics need, made before the core's lock is taken.
pub(crate) struct Start {
    span: Span,
    op: Op,
}

/// The operations the client sends, for bounded labels and static names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    Create,
    Delete,
    Exists,
    GetData,
    SetData,
    GetAcl,
    SetAcl,
    GetChildren,
    Sync,
    Check,
    Multi,
    MultiRead,
    Reconfig,
    CheckWatches,
    RemoveWatches,
    AddWatch,
    Auth,
    GetEphemerals,
    GetAllChildrenNumber,
    WhoAmI,
    GetConfig,
    Other,
}

/// Every [`Op`], in discriminant order.
const OPS: [Op; 22] = [
    Op::Create,
    Op::Delete,
    Op::Exists,
    Op::GetData,
    Op::SetData,
    Op::GetAcl,
    Op::SetAcl,
    Op::GetChildren,
    Op::Sync,
    Op::Check,
    Op::Multi,
    Op::MultiRead,
    Op::Reconfig,
    Op::CheckWatches,
    Op::RemoveWatches,
    Op::AddWatch,
    Op::Auth,
    Op::GetEphemerals,
    Op::GetAllChildrenNumber,
    Op::WhoAmI,
    Op::GetConfig,
    Op::Other,
];

impl Op {
    /// ZooKeeper's own name of the operation (`ZooDefs.OpCode`'s, as the Java
    /// client's logs spell it); the create variants and getChildren2 share one.
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Delete => "delete",
            Op::Exists => "exists",
            Op::GetData => "getData",
            Op::SetData => "setData",
            Op::GetAcl => "getACL",
            Op::SetAcl => "setACL",
            Op::GetChildren => "getChildren",
            Op::Sync => "sync",
            Op::Check => "check",
            Op::Multi => "multi",
            Op::MultiRead => "multiRead",
            Op::Reconfig => "reconfig",
            Op::CheckWatches => "checkWatches",
            Op::RemoveWatches => "removeWatches",
            Op::AddWatch => "addWatch",
            Op::Auth => "auth",
            Op::GetEphemerals => "getEphemerals",
            Op::GetAllChildrenNumber => "getAllChildrenNumber",
            Op::WhoAmI => "whoAmI",
            Op::GetConfig => "getConfig",
            Op::Other => "other",
        }
    }
}

/// The operation, its path (if it has one) and a multi's sub-op count.
fn describe(req: &Request) -> (Op, Option<&str>, Option<usize>) {
    use Request as R;
    match req {
        R::Create(r) | R::Create2(r) | R::CreateContainer(r) => (Op::Create, Some(&r.path), None),
        R::CreateTtl(r) => (Op::Create, Some(&r.path), None),
        R::Delete(r) => (Op::Delete, Some(&r.path), None),
        R::Exists(r) => (Op::Exists, Some(&r.path), None),
        R::GetData(r) => (Op::GetData, Some(&r.path), None),
        R::SetData(r) => (Op::SetData, Some(&r.path), None),
        R::GetAcl(r) => (Op::GetAcl, Some(&r.path), None),
        R::SetAcl(r) => (Op::SetAcl, Some(&r.path), None),
        R::GetChildren(r) | R::GetChildren2(r) => (Op::GetChildren, Some(&r.path), None),
        R::Sync(r) => (Op::Sync, Some(&r.path), None),
        R::Check(r) => (Op::Check, Some(&r.path), None),
        R::Multi(m) => (Op::Multi, None, Some(m.ops.len())),
        R::MultiRead(m) => (Op::MultiRead, None, Some(m.ops.len())),
        R::Reconfig(_) => (Op::Reconfig, None, None),
        R::CheckWatches(r) => (Op::CheckWatches, Some(&r.path), None),
        R::RemoveWatches(r) => (Op::RemoveWatches, Some(&r.path), None),
        R::AddWatch(r) => (Op::AddWatch, Some(&r.path), None),
        R::GetEphemerals(r) => (Op::GetEphemerals, Some(&r.path), None),
        R::GetAllChildrenNumber(r) => (Op::GetAllChildrenNumber, Some(&r.path), None),
        R::WhoAmI => (Op::WhoAmI, None, None),
        _ => (Op::Other, None, None),
    }
}

/// Starts `req`'s span (a child of the caller's current span), or `None` when
/// nobody listens and there are no metrics to keep.
pub(crate) fn start(req: &Request) -> Option<Start> {
    let (op, path, batch) = describe(req);
    start_op(op, path, batch)
}

/// [`start`] for the config read (`getConfig` on `/zookeeper/config`).
pub(crate) fn start_config() -> Option<Start> {
    start_op(Op::GetConfig, Some(zk_proto::session::CONFIG_NODE), None)
}

/// [`start`] for an auth packet (no path; the credentials are never recorded).
pub(crate) fn start_auth() -> Option<Start> {
    start_op(Op::Auth, None, None)
}

fn start_op(op: Op, path: Option<&str>, batch: Option<usize>) -> Option<Start> {
    let span = tracing::info_span!(
        target: TARGET,
        "zookeeper.request",
        otel.name = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = "zookeeper",
        db.operation.name = op.name(),
        db.operation.batch.size = Empty,
        db.response.status_code = Empty,
        error.type = Empty,
        zookeeper.path = Empty,
        zookeeper.xid = Empty,
        zookeeper.session_id = Empty,
        zookeeper.request.bytes = Empty,
        zookeeper.response.bytes = Empty,
        server.address = Empty,
        server.port = Empty,
    );
    if span.is_disabled() {
        // Nobody reads it: keep nothing unless metrics want the latency.
        return cfg!(feature = "metrics").then_some(Start { span, op });
    }
    match path {
        Some(p) => {
            span.record("otel.name", format_args!("{} {p}", op.name()));
            span.record("zookeeper.path", p);
        }
        None => {
            span.record("otel.name", op.name());
        }
    }
    if let Some(n) = batch {
        span.record("db.operation.batch.size", n);
    }
    Some(Start { span, op })
}

/// A request being followed.
struct Call {
    span: Span,
    op: Op,
    /// When it was submitted, on the core's clock.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    at: Instant,
}

/// Everything the core keeps for telemetry.
pub(crate) struct Telemetry {
    calls: IdMap<RequestId, Call>,
    /// The session's life: from the first connect to its end (a new one after
    /// an expiry the client restarts from).
    session: Span,
    /// Each connection (attempt included) until it ends.
    conns: Vec<(ConnId, Span)>,
    /// Whether a session was ever established (later ones are reconnects).
    was_connected: bool,
    /// Spans that are over, ended (dropped) by the core once it has let go of
    /// its lock ([`Telemetry::take_ended`]): a subscriber's work at a span's end
    /// (an exporter's, a line printed) then never holds up the other callers and
    /// the connection, and a subscriber may call the client from there.
    ended: Vec<Span>,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::Metrics,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            calls: IdMap::default(),
            session: Span::none(),
            conns: Vec::new(),
            was_connected: false,
            ended: Vec::new(),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Metrics::new(),
        }
    }
}

fn session_span() -> Span {
    tracing::info_span!(
        target: TARGET,
        parent: None,
        "zookeeper.session",
        otel.kind = "client",
        db.system.name = "zookeeper",
        zookeeper.session_id = Empty,
        zookeeper.end = Empty,
    )
}

impl Telemetry {
    /// The session took a request as `id` (it still holds it: its wire details
    /// are asked for here when its span is recorded), or refused it.
    pub(crate) fn submit_result(
        &mut self,
        session: &mut Session,
        id: Result<RequestId, &zk_proto::UsageError>,
        start: Option<Start>,
        now: Instant,
    ) {
        let Some(Start { span, op }) = start else {
            return;
        };
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                // Nothing was sent.
                span.record("error.type", usage_name(e));
                span.record("otel.status_code", "ERROR");
                self.end(span);
                return;
            }
        };
        if !span.is_disabled() {
            session.trace_request(id);
        }
        #[cfg(feature = "metrics")]
        self.metrics.submitted(op as usize, op.name());
        self.calls.insert(id, Call { span, op, at: now });
    }

    /// The session reported a traced request's wire details (right before its completion).
    pub(crate) fn traced(
        &mut self,
        session: &Session,
        id: RequestId,
        xid: i32,
        request_bytes: u32,
        response_bytes: u32,
    ) {
        let Some(c) = self.calls.get(&id) else { return };
        let s = &c.span;
        s.record("zookeeper.xid", xid);
        s.record("zookeeper.request.bytes", request_bytes);
        if response_bytes > 0 {
            s.record("zookeeper.response.bytes", response_bytes);
            // A reply came: the member the session is on answered it.
            if let Some(h) = session.current_host() {
                s.record("server.address", h.host.as_str());
                s.record("server.port", h.port);
            }
        }
    }

    /// A request completed; its span ends here (before the caller sees the result).
    pub(crate) fn completed(
        &mut self,
        session: &Session,
        id: RequestId,
        result: &Result<Response, ZkError>,
        now: Instant,
    ) {
        let Some(c) = self.calls.remove(&id) else {
            return;
        };
        let code = match result {
            Ok(Response::Multi(m)) => m.first_error(),
            Ok(_) => None,
            // `exists` on a missing node answers `None`: not a failure.
            Err(ZkError::Server(ErrorCode::NoNode)) if c.op == Op::Exists => None,
            Err(e) => Some(e.code()),
        };
        if !c.span.is_disabled() {
            if let Some((sid, _)) = session.credentials() {
                c.span
                    .record("zookeeper.session_id", format_args!("{sid:#x}"));
            }
            if let Some(code) = code {
                c.span.record("db.response.status_code", code.code());
                c.span.record("error.type", error_name(result, code));
                c.span.record("otel.status_code", "ERROR");
            }
        }
        #[cfg(feature = "metrics")]
        self.metrics.completed(
            c.op as usize,
            c.op.name(),
            code,
            now.saturating_duration_since(c.at),
        );
        #[cfg(not(feature = "metrics"))]
        let _ = now;
        self.end(c.span);
    }

    /// Keeps `span` for [`take_ended`](Telemetry::take_ended) (a disabled one
    /// has nothing to end).
    fn end(&mut self, span: Span) {
        if !span.is_disabled() {
            self.ended.push(span);
        }
    }

    /// The spans that are over, for the core to drop once its lock is released
    /// (and before it wakes the callers, so a caller finds its span ended).
    #[inline]
    pub(crate) fn take_ended(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.ended)
    }

    /// A connection attempt to `host` starts.
    pub(crate) fn connecting(&mut self, conn: ConnId, host: &HostAddr) {
        if self.session.is_none() {
            self.session = session_span();
        }
        let span = tracing::info_span!(
            target: TARGET,
            parent: &self.session,
            "zookeeper.connection",
            server.address = host.host.as_str(),
            server.port = host.port,
            zookeeper.conn = conn.0,
            zookeeper.negotiated_timeout_ms = Empty,
            zookeeper.read_only = Empty,
            zookeeper.end = Empty,
        );
        if !span.is_disabled() {
            self.conns.push((conn, span));
        }
    }

    /// A connection ended (`reason` says how).
    pub(crate) fn disconnected(&mut self, conn: ConnId, reason: &DisconnectReason) {
        if let Some(i) = self.conns.iter().position(|(c, _)| *c == conn) {
            let (_, span) = self.conns.swap_remove(i);
            span.record("zookeeper.end", format_args!("{reason:?}"));
            self.end(span);
        }
    }

    /// The session changed state.
    pub(crate) fn state_changed(
        &mut self,
        session: &Session,
        from: SessionState,
        to: SessionState,
    ) {
        if to.is_connected() && !from.is_connected() {
            if let Some(conn) = session.connection() {
                if let Some((_, span)) = self.conns.iter().find(|(c, _)| *c == conn) {
                    if let Some(t) = session.negotiated_timeout() {
                        span.record(
                            "zookeeper.negotiated_timeout_ms",
                            u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
                        );
                    }
                    span.record("zookeeper.read_only", to == SessionState::ConnectedReadOnly);
                }
            }
            if let Some((sid, _)) = session.credentials() {
                self.session
                    .record("zookeeper.session_id", format_args!("{sid:#x}"));
            }
        }
        #[cfg(feature = "metrics")]
        self.metrics
            .state_changed(from, to, self.was_connected, session.watch_count());
        if to.is_connected() {
            self.was_connected = true;
        }
        if to.is_terminal() {
            // The session is over (closed, expired, refused): a restart makes a new one.
            for (_, conn) in std::mem::take(&mut self.conns) {
                conn.record("zookeeper.end", format_args!("session {to:?}"));
                self.end(conn);
            }
            self.session.record("zookeeper.end", format_args!("{to:?}"));
            let session = std::mem::replace(&mut self.session, Span::none());
            self.end(session);
            if to != SessionState::Expired {
                self.was_connected = false;
            }
        }
    }

    /// A watch event went to a registration's queue.
    #[inline]
    pub(crate) fn watch_delivered(&self) {
        #[cfg(feature = "metrics")]
        self.metrics.watch_delivered();
    }

    /// Bytes went to a transport.
    #[inline]
    pub(crate) fn sent(&self, n: usize) {
        #[cfg(feature = "metrics")]
        self.metrics.sent(n);
        #[cfg(not(feature = "metrics"))]
        let _ = n;
    }

    /// Bytes came from a transport.
    #[inline]
    pub(crate) fn received(&self, n: usize) {
        #[cfg(feature = "metrics")]
        self.metrics.received(n);
        #[cfg(not(feature = "metrics"))]
        let _ = n;
    }

    /// After the core handled something: the gauges that follow the session's
    /// own counts (watches, outbound bytes) catch up.
    #[inline]
    pub(crate) fn sample(&mut self, session: &Session, writer_bytes: impl FnOnce() -> usize) {
        #[cfg(feature = "metrics")]
        self.metrics.sample(
            session.watch_count(),
            session.outbound_bytes() + writer_bytes(),
        );
        #[cfg(not(feature = "metrics"))]
        let _ = (session, writer_bytes);
    }

    /// The client is finished: what it added to the gauges is taken back.
    pub(crate) fn finish(&mut self) {
        for (_, conn) in std::mem::take(&mut self.conns) {
            self.end(conn);
        }
        let session = std::mem::replace(&mut self.session, Span::none());
        self.end(session);
        #[cfg(feature = "metrics")]
        self.metrics.finish();
    }
}

/// `error.type`: the error's name (`NoNode`, `ConnectionLoss`, `Timeout`...).
fn error_name(result: &Result<Response, ZkError>, code: ErrorCode) -> &'static str {
    match result {
        Err(ZkError::Server(_)) | Ok(_) => code.name(),
        Err(ZkError::ConnectionLoss) => "ConnectionLoss",
        Err(ZkError::SessionExpired) => "SessionExpired",
        Err(ZkError::SessionClosed) => "SessionClosed",
        Err(ZkError::AuthFailed) => "AuthFailed",
        Err(ZkError::Timeout) => "Timeout",
        Err(ZkError::NotConnected) => "NotConnected",
        Err(ZkError::Malformed(_)) => "Malformed",
        Err(ZkError::Unreachable) => "Unreachable",
        Err(ZkError::ReplyTooLarge { .. }) => "ReplyTooLarge",
        Err(_) => code.name(),
    }
}

fn usage_name(e: &zk_proto::UsageError) -> &'static str {
    use zk_proto::UsageError as U;
    match e {
        U::InvalidPath { .. } => "InvalidPath",
        U::QueueFull => "QueueFull",
        U::OutboundFull => "OutboundFull",
        _ => "InvalidArgument",
    }
}

/// Every operation label value, for the docs' table and the metrics' tests.
pub fn operation_names() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|o| o.name())
}
