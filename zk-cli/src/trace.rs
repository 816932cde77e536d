//! `--trace`: each request's span (issue 23), printed to stderr as it ends:
//! `trace: getData /app 127.0.0.1:2181 0.41ms ok` (or the error's name and
//! code). Stdout stays the command's own (a `--json` document stays one).

use std::io::Write;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// What a request span has told so far.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    op: Option<String>,
    address: Option<String>,
    port: Option<u64>,
    code: Option<i64>,
    error: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        let s = format!("{v:?}");
        match f.name() {
            "otel.name" => self.name = Some(s),
            "db.operation.name" => self.op = Some(s),
            "server.address" => self.address = Some(s),
            "error.type" => self.error = Some(s),
            _ => {}
        }
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.record_debug(f, &format_args!("{v}"));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        match f.name() {
            "server.port" => self.port = Some(v),
            _ => self.record_debug(f, &v),
        }
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        match f.name() {
            "db.response.status_code" => self.code = Some(v),
            "server.port" => self.port = u64::try_from(v).ok(),
            _ => self.record_debug(f, &v),
        }
    }
}

struct Started(Instant, Fields);

/// The layer that prints request spans.
struct TraceLayer;

fn is_request(meta: &tracing::Metadata<'_>) -> bool {
    meta.name() == "zookeeper.request"
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TraceLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_request(attrs.metadata()) {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(Instant::now(), f));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(Started(_, f)) = span.extensions_mut().get_mut::<Started>() {
                values.record(f);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(Started(at, f)) = span.extensions_mut().remove::<Started>() else {
            return;
        };
        let took = at.elapsed();
        let name = f.name.or(f.op).unwrap_or_else(|| "request".into());
        let server = match (f.address, f.port) {
            (Some(a), Some(p)) => format!("{a}:{p}"),
            _ => "-".into(),
        };
        let result = match (f.error, f.code) {
            (Some(e), Some(c)) => format!("{e} ({c})"),
            (Some(e), None) => e,
            (None, _) => "ok".into(),
        };
        let ms = took.as_secs_f64() * 1000.0;
        // A closed stderr must not end the command.
        let _ = writeln!(
            std::io::stderr(),
            "trace: {name} {server} {ms:.2}ms {result}"
        );
    }
}

/// Prints every request's span from now on.
pub fn install() {
    let subscriber = tracing_subscriber::registry().with(TraceLayer);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("zkcli: --trace: a tracing subscriber is already installed");
    }
}
