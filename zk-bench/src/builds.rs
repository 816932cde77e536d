//! Which build runs a row: issue 23's overhead is measured build against build
//! in the same run (one server, rows interleaved), so a client name may carry a
//! suffix saying which binary runs its child and how.
//!
//! * `zk-tokio`: this binary, as built (with `--features metrics` the telemetry is
//!   compiled in; no subscriber, no recorder).
//! * `zk-tokio@base`: the binary named by `ZK_BENCH_BASE` (zk-bench built from the
//!   commit before the telemetry, in its own target directory): the baseline.
//! * `zk-tokio@rec` (feature `metrics`): this binary with a Prometheus recorder and
//!   a `tracing` registry subscriber installed before the workload: what
//!   recording costs.

use std::path::PathBuf;

/// How a row's child runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    This,
    Base,
    Recorded,
}

/// The client's own name and its build.
pub fn split(client: &str) -> (&str, Build) {
    if let Some(c) = client.strip_suffix("@base") {
        (c, Build::Base)
    } else if let Some(c) = client.strip_suffix("@rec") {
        (c, Build::Recorded)
    } else {
        (client, Build::This)
    }
}

/// The binary that runs a `Build::Base` child.
pub fn base_exe() -> PathBuf {
    match std::env::var_os("ZK_BENCH_BASE") {
        Some(p) => PathBuf::from(p),
        None => {
            eprintln!("a client@base row needs ZK_BENCH_BASE=<path of the baseline zk-bench>");
            std::process::exit(2);
        }
    }
}

/// In a `Build::Recorded` child, before the workload: the recorder and the
/// subscriber a service would install.
#[cfg(feature = "metrics")]
pub fn install_recording() {
    let _keep = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("a Prometheus recorder");
    zk_client::metrics::describe();
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("the only subscriber");
}

#[cfg(not(feature = "metrics"))]
pub fn install_recording() {
    eprintln!("a client@rec row needs zk-bench built with --features metrics");
    std::process::exit(2);
}
