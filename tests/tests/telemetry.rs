//! Issue 23 through every adapter against a real server: a span per request
//! (with its fields, its parent, its error), the session's and the
//! connection's spans, and (feature `metrics`) the metrics moving across calls,
//! an error, a connection cut, a reconnect and a session expiry, with the
//! gauges back at zero after close.
//!
//! One capturing `tracing` layer and one debugging recorder serve the whole
//! binary (both are process-wide), so the tests run one at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use zk_client::{ClientBuilder, CreateMode, Op};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::server::shared_server;

/// One span as the layer saw it.
#[derive(Clone, Debug, Default)]
struct SpanRec {
    name: &'static str,
    /// Index of the parent in the capture's list.
    parent: Option<usize>,
    fields: HashMap<String, String>,
    closed: bool,
}

impl SpanRec {
    fn field(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
}

#[derive(Default)]
struct Captured {
    spans: Vec<SpanRec>,
    /// Live span ids (the registry reuses them) to indexes.
    live: HashMap<u64, usize>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Captured>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().to_owned(), format!("{v:?}"));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name().to_owned(), v.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.id().into_u64());
        let mut rec = SpanRec {
            name: attrs.metadata().name(),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        let mut c = self.0.lock().unwrap();
        rec.parent = parent.and_then(|p| c.live.get(&p).copied());
        c.spans.push(rec);
        let i = c.spans.len() - 1;
        c.live.insert(id.into_u64(), i);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut c = self.0.lock().unwrap();
        if let Some(&i) = c.live.get(&id.into_u64()) {
            values.record(&mut Fields(&mut c.spans[i].fields));
        }
    }
    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let path = {
            let mut c = self.0.lock().unwrap();
            let Some(i) = c.live.remove(&id.into_u64()) else {
                return;
            };
            c.spans[i].closed = true;
            c.spans[i].field("zookeeper.path").map(str::to_owned)
        };
        // A subscriber calling the client back from a span's end.
        let probe = PROBE.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let (Some((on, f)), Some(path)) = (probe, path) {
            if on == path {
                f();
            }
        }
    }
}

/// What the layer calls at the end of a request span on the path it names.
type Probe = (String, Arc<dyn Fn() + Send + Sync>);
static PROBE: Mutex<Option<Probe>> = Mutex::new(None);

struct Harness {
    capture: Capture,
    #[cfg(feature = "metrics")]
    snapshotter: metrics_util::debugging::Snapshotter,
}

/// The process-wide layer and recorder, and the lock that runs tests one at a time.
fn harness() -> (&'static Harness, MutexGuard<'static, ()>) {
    static H: OnceLock<Harness> = OnceLock::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    let h = H.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(capture.clone()),
        )
        .expect("the only subscriber");
        #[cfg(feature = "metrics")]
        let snapshotter = {
            let r = metrics_util::debugging::DebuggingRecorder::new();
            let s = r.snapshotter();
            r.install().expect("the only recorder");
            s
        };
        Harness {
            capture,
            #[cfg(feature = "metrics")]
            snapshotter,
        }
    });
    (h, SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

impl Harness {
    /// Request spans (closed or not) whose path is `path`, under `parent`.
    fn requests_on(&self, path: &str, parent: usize) -> Vec<(usize, SpanRec)> {
        let c = self.capture.0.lock().unwrap();
        c.spans
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.name == "zookeeper.request"
                    && s.field("zookeeper.path") == Some(path)
                    && s.parent == Some(parent)
            })
            .map(|(i, s)| (i, s.clone()))
            .collect()
    }

    fn spans(&self) -> Vec<SpanRec> {
        self.capture.0.lock().unwrap().spans.clone()
    }

    /// The index of the latest span named `name` with `field` = `value`.
    fn find(&self, name: &str, field: &str, value: &str) -> Option<usize> {
        let c = self.capture.0.lock().unwrap();
        c.spans
            .iter()
            .rposition(|s| s.name == name && s.field(field) == Some(value))
    }
}

/// Waits (a few seconds at most) until `f` holds; the spans end when the core
/// completes the call, which the caller may see a moment earlier.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: never happened");
}

fn span_per_request<Z: Zk>() {
    let (h, _serial) = harness();
    let server = shared_server();
    let zk = Z::connect(&ClientBuilder::new(&server.connect_string())).unwrap();
    let path = format!("/telemetry-spans-{}", Z::NAME);
    let _ = zk.delete_recursive(&path);
    let caller = tracing::info_span!("caller", adapter = Z::NAME);
    {
        let _in = caller.enter();
        zk.create(&path, "hello", CreateMode::Persistent).unwrap();
        zk.get_data(&path).unwrap();
        let missing = zk.get_data(&format!("{path}/missing")).unwrap_err();
        assert!(missing.is_no_node(), "{missing:?}");
        zk.multi(vec![Op::check(&path, 0), Op::set_data(&path, "v2", None)])
            .unwrap();
    }
    let caller_at = h
        .find("caller", "adapter", Z::NAME)
        .expect("the caller's span");
    eventually("every request span closed", || {
        let spans = h.requests_on(&path, caller_at);
        spans.len() == 2 && spans.iter().all(|(_, s)| s.closed)
    });
    let spans = h.requests_on(&path, caller_at);
    // One span per request on the path: the create and the read.
    let ops: Vec<&str> = spans
        .iter()
        .map(|(_, s)| s.field("db.operation.name").unwrap())
        .collect();
    assert_eq!(ops, ["create", "getData"], "{}: {spans:#?}", Z::NAME);
    let port = server
        .connect_string()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let session = format!("{:#x}", zk.session().unwrap().id);
    for (_, s) in &spans {
        assert_eq!(s.parent, Some(caller_at), "{}: parent of {s:?}", Z::NAME);
        assert_eq!(s.field("otel.kind"), Some("client"));
        assert_eq!(s.field("db.system.name"), Some("zookeeper"));
        assert_eq!(s.field("server.address"), Some("127.0.0.1"), "{s:?}");
        assert_eq!(s.field("server.port"), Some(port.as_str()), "{s:?}");
        assert_eq!(s.field("zookeeper.session_id"), Some(session.as_str()));
        let xid: i64 = s.field("zookeeper.xid").unwrap().parse().unwrap();
        assert!(xid > 0, "{s:?}");
        for k in ["zookeeper.request.bytes", "zookeeper.response.bytes"] {
            let n: u64 = s.field(k).unwrap_or("0").parse().unwrap();
            assert!(n > 16, "{}: {k} in {s:?}", Z::NAME);
        }
        assert_eq!(s.field("error.type"), None, "{s:?}");
        assert_eq!(s.field("otel.status_code"), None, "{s:?}");
    }
    let read = &spans[1].1;
    assert_eq!(
        read.field("otel.name"),
        Some(format!("getData {path}").as_str())
    );
    // The failing call: its code and error type.
    let missing = h.requests_on(&format!("{path}/missing"), caller_at);
    assert_eq!(missing.len(), 1, "{missing:?}");
    let m = &missing[0].1;
    assert_eq!(m.parent, Some(caller_at));
    assert_eq!(m.field("db.response.status_code"), Some("-101"), "{m:?}");
    assert_eq!(m.field("error.type"), Some("NoNode"), "{m:?}");
    assert_eq!(m.field("otel.status_code"), Some("ERROR"), "{m:?}");
    // The multi: its sub-op count, no path.
    let all = h.spans();
    let multi = all
        .iter()
        .rfind(|s| s.parent == Some(caller_at) && s.field("db.operation.name") == Some("multi"))
        .expect("the multi's span");
    assert_eq!(
        multi.field("db.operation.batch.size"),
        Some("2"),
        "{multi:?}"
    );
    assert_eq!(multi.field("otel.name"), Some("multi"));
    // The session's span and its connection's.
    let sess = h
        .find("zookeeper.session", "zookeeper.session_id", &session)
        .expect("the session's span");
    let conn = all
        .iter()
        .rfind(|s| s.name == "zookeeper.connection" && s.parent == Some(sess))
        .expect("the connection's span");
    assert_eq!(conn.field("server.port"), Some(port.as_str()), "{conn:?}");
    assert_eq!(conn.field("zookeeper.read_only"), Some("false"), "{conn:?}");
    assert!(
        conn.field("zookeeper.negotiated_timeout_ms").is_some(),
        "{conn:?}"
    );
    zk.delete_recursive(&path).unwrap();
    zk.close().unwrap();
    eventually("the session's span ends with the close", || {
        let s = &h.spans()[sess];
        s.closed && s.field("zookeeper.end") == Some("Closed")
    });
}

/// A subscriber may call the client when a request's span ends (an exporter
/// reading the session's state, say): the core ends spans after letting go of
/// its lock. Ended inside it, the call back deadlocked.
fn subscriber_calls_back<Z: Zk>() {
    let (_h, _serial) = harness();
    let zk = Z::connect(&ClientBuilder::new(&shared_server().connect_string())).unwrap();
    let path = format!("/telemetry-probe-{}", Z::NAME);
    let client = zk.as_async().clone();
    let called = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = called.clone();
    struct Unset;
    impl Drop for Unset {
        fn drop(&mut self) {
            *PROBE.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
    let _unset = Unset;
    *PROBE.lock().unwrap() = Some((
        path.clone(),
        Arc::new(move || {
            assert!(client.state().is_connected());
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
    ));
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    // On its own thread: a deadlock fails the test instead of hanging it.
    std::thread::spawn(move || {
        let r = zk.exists(&p).map(|s| s.is_none());
        let _ = tx.send(r);
        zk.close().unwrap();
    });
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{}: a call back from a span's end hung", Z::NAME));
    assert_eq!(r, Ok(true));
    assert_eq!(called.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// zk-tokio on a current-thread runtime: an instrumented future's span is the
/// parent of the requests it awaits.
#[test]
fn tokio_current_thread_spans_have_the_awaiting_span_as_parent() {
    use tracing::Instrument;
    let (h, _serial) = harness();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = "/telemetry-spans-tokio-ct";
    rt.block_on(
        async {
            let zk = zk_tokio::connect(&ClientBuilder::new(&shared_server().connect_string()))
                .await
                .unwrap();
            let _ = zk.exists(path).await.unwrap();
            let e = zk.get_data(path).await.unwrap_err();
            assert!(e.is_no_node());
            zk.close().await.unwrap();
        }
        .instrument(tracing::info_span!("caller", adapter = "tokio-ct")),
    );
    let caller_at = h.find("caller", "adapter", "tokio-ct").unwrap();
    let spans = h.requests_on(path, caller_at);
    let ops: Vec<(&str, Option<usize>, Option<&str>)> = spans
        .iter()
        .map(|(_, s)| {
            (
                s.field("db.operation.name").unwrap(),
                s.parent,
                s.field("error.type"),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("exists", Some(caller_at), None),
            ("getData", Some(caller_at), Some("NoNode"))
        ]
    );
}

macro_rules! telemetry_tests {
    ($name:ident, $z:ty) => {
        mod $name {
            use super::*;
            #[test]
            fn span_per_request() {
                super::span_per_request::<$z>();
            }
            #[test]
            fn subscriber_calls_back() {
                super::subscriber_calls_back::<$z>();
            }
            #[cfg(feature = "metrics")]
            #[test]
            fn metrics_move() {
                super::recorded::metrics_move::<$z>();
            }
        }
    };
}

telemetry_tests!(on_tokio, TokioZk);
telemetry_tests!(on_smol, SmolZk);
telemetry_tests!(on_blocking, BlockingZk);

#[cfg(feature = "metrics")]
mod recorded {
    use super::*;
    use metrics_util::debugging::DebugValue;
    use zk_client::metrics as m;
    use zk_client::SessionState;
    use zk_tests::proxy::Proxy;

    /// The recorder's values so far (its snapshots reset counters and gauges,
    /// so they are summed here; histograms keep their samples).
    #[derive(Default, Debug, Clone)]
    struct Values {
        counters: HashMap<String, u64>,
        gauges: HashMap<String, f64>,
        histograms: HashMap<String, usize>,
    }

    fn key(k: &::metrics::Key) -> String {
        let mut labels: Vec<String> = k
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        format!("{}{{{}}}", k.name(), labels.join(","))
    }

    impl Values {
        fn update(&mut self, h: &Harness) {
            for (ck, _, _, v) in h.snapshotter.snapshot().into_vec() {
                let k = key(ck.key());
                match v {
                    DebugValue::Counter(n) => *self.counters.entry(k).or_default() += n,
                    DebugValue::Gauge(g) => *self.gauges.entry(k).or_default() += g.into_inner(),
                    DebugValue::Histogram(xs) => *self.histograms.entry(k).or_default() += xs.len(),
                }
            }
        }
        fn counter(&self, k: &str) -> u64 {
            self.counters.get(k).copied().unwrap_or(0)
        }
        fn gauge(&self, k: &str) -> f64 {
            self.gauges.get(k).copied().unwrap_or(0.0)
        }
        fn samples(&self, k: &str) -> usize {
            self.histograms.get(k).copied().unwrap_or(0)
        }
    }

    /// The values' changes since `before`, for the assertions' messages.
    fn delta(v: &Values, before: &Values, k: &str) -> u64 {
        v.counter(k) - before.counter(k)
    }

    pub(super) fn metrics_move<Z: Zk>() {
        let (h, _serial) = harness();
        static TOTALS: Mutex<Option<Values>> = Mutex::new(None);
        let mut totals = TOTALS.lock().unwrap_or_else(|p| p.into_inner());
        let v = totals.get_or_insert_with(Values::default);
        v.update(h);
        let before = v.clone();

        let server = shared_server();
        let upstream = server.connect_string().parse().unwrap();
        let proxy = Proxy::start(upstream);
        let zk = Z::connect(
            &ClientBuilder::new(&proxy.connect_string()).session_timeout(Duration::from_secs(6)),
        )
        .unwrap();
        let path = format!("/telemetry-metrics-{}", Z::NAME);
        let _ = zk.delete_recursive(&path);
        zk.create(&path, "x", CreateMode::Persistent).unwrap();
        for _ in 0..3 {
            zk.get_data(&path).unwrap();
        }
        assert!(zk.get_data(&format!("{path}/missing")).is_err());
        let (_, watch) = zk.exists_watch(&path).unwrap();
        v.update(h);
        let get_ok = format!("{}{{op=getData,outcome=ok}}", m::REQUEST_DURATION);
        let get_err = format!("{}{{op=getData,outcome=error}}", m::REQUEST_DURATION);
        assert_eq!(
            delta(v, &before, &format!("{}{{op=getData}}", m::REQUESTS)),
            4,
            "{v:#?}"
        );
        assert_eq!(v.samples(&get_ok) - before.samples(&get_ok), 3, "{v:#?}");
        assert_eq!(v.samples(&get_err) - before.samples(&get_err), 1, "{v:#?}");
        assert_eq!(
            delta(
                v,
                &before,
                &format!("{}{{code=NoNode,op=getData}}", m::ERRORS)
            ),
            1,
            "{v:#?}"
        );
        assert!(
            delta(v, &before, &format!("{}{{}}", m::BYTES_SENT)) > 100,
            "{v:#?}"
        );
        assert!(
            delta(v, &before, &format!("{}{{}}", m::BYTES_RECEIVED)) > 100,
            "{v:#?}"
        );
        assert_eq!(v.gauge(&format!("{}{{}}", m::IN_FLIGHT)), 0.0, "{v:#?}");
        assert_eq!(v.gauge(&format!("{}{{}}", m::WATCHES)), 1.0, "{v:#?}");
        assert_eq!(
            v.gauge(&format!("{}{{state=connected}}", m::SESSIONS)),
            1.0,
            "{v:#?}"
        );

        // Calls a silent server holds are in flight; a cut fails them with
        // ConnectionLoss, the session reconnects and restores its watch. (The
        // proxy forwards what it held once the black hole ends: cut first.)
        let mut states = zk.state_stream();
        proxy.black_hole(true);
        let held: Vec<_> = (0..3).map(|_| zk.as_async().get_data(&path)).collect();
        v.update(h);
        assert_eq!(v.gauge(&format!("{}{{}}", m::IN_FLIGHT)), 3.0, "{v:#?}");
        proxy.cut_all();
        proxy.black_hole(false);
        zk_tests::wait_reconnected(&mut states, Duration::from_secs(20), Z::NAME);
        drop(held);
        // The cut connection's span ended, saying how; the new one is open.
        let proxy_port = proxy.addr().port().to_string();
        let on_proxy = |s: &SpanRec| {
            s.name == "zookeeper.connection" && s.field("server.port") == Some(&proxy_port)
        };
        eventually("the cut connection's span ended", || {
            h.spans()
                .iter()
                .any(|s| on_proxy(s) && s.closed && s.field("zookeeper.end") == Some("Closed"))
        });
        assert!(
            h.spans().iter().any(|s| on_proxy(s) && !s.closed),
            "{}: no open connection span",
            Z::NAME
        );
        eventually("the reconnect counted", || {
            v.update(h);
            delta(v, &before, &format!("{}{{}}", m::RECONNECTS)) == 1
                && v.gauge(&format!("{}{{}}", m::IN_FLIGHT)) == 0.0
        });
        assert_eq!(
            delta(
                v,
                &before,
                &format!("{}{{code=ConnectionLoss,op=getData}}", m::ERRORS)
            ),
            3,
            "{v:#?}"
        );
        assert_eq!(
            delta(v, &before, &format!("{}{{}}", m::WATCHES_RESTORED)),
            1,
            "{v:#?}"
        );

        // Credentials the server refuses end that session: an auth failure.
        let refused = Z::connect(&ClientBuilder::new(&server.connect_string())).unwrap();
        let mut refused_states = refused.state_stream();
        let _auth = refused.as_async().add_auth("no-such-scheme", "x");
        assert!(
            std::iter::from_fn(|| refused_states.recv_timeout(Some(Duration::from_secs(10))))
                .any(|s| s == SessionState::AuthFailed),
            "{}: no AuthFailed",
            Z::NAME
        );
        eventually("the auth failure counted", || {
            v.update(h);
            delta(v, &before, &format!("{}{{}}", m::AUTH_FAILURES)) == 1
        });
        drop(refused);

        // The watch fires: one event delivered.
        zk.set_data(&path, "y", None).unwrap();
        watch.wait_timeout(Some(Duration::from_secs(10))).unwrap();
        v.update(h);
        assert_eq!(
            delta(v, &before, &format!("{}{{}}", m::WATCH_EVENTS)),
            1,
            "{v:#?}"
        );
        assert_eq!(v.gauge(&format!("{}{{}}", m::WATCHES)), 0.0, "{v:#?}");

        // An expiry: counted, and a new session. The client's traffic is held
        // while the session is killed, so it cannot take the session back
        // (kill_session's doc); the killer's own clients (which may see the
        // expiry too) are done before the count starts.
        proxy.black_hole(true);
        zk_tests::kill_session(
            &server.connect_string(),
            &zk.session().unwrap(),
            Duration::from_secs(20),
        )
        .unwrap();
        v.update(h);
        let killed = v.clone();
        proxy.cut_all();
        proxy.black_hole(false);
        let seen: Vec<SessionState> =
            std::iter::from_fn(|| states.recv_timeout(Some(Duration::from_secs(20))))
                .take_while(|s| *s != SessionState::Connected)
                .collect();
        assert!(seen.contains(&SessionState::Expired), "{seen:?}");
        eventually("the expiry counted", || {
            v.update(h);
            delta(v, &killed, &format!("{}{{}}", m::SESSION_EXPIRATIONS)) == 1
        });
        // The new session's connection is one more after the first.
        assert_eq!(
            delta(v, &killed, &format!("{}{{}}", m::RECONNECTS)),
            1,
            "{v:#?}"
        );
        assert_eq!(
            v.gauge(&format!("{}{{state=connected}}", m::SESSIONS)),
            1.0,
            "{v:#?}"
        );

        // Close: every gauge back where it was.
        zk.delete_recursive(&path).unwrap();
        zk.close().unwrap();
        drop(zk);
        eventually("the gauges back at zero", || {
            v.update(h);
            v.gauges.values().all(|g| *g == 0.0)
        });
    }
}
