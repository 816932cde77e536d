//! Curator's connection-state rules (`ConnectionRules`: the error policy and
//! the simulated session expiration) on zk-recipes' Curator `LeaderLatch`,
//! beside Apache Curator 5.4 `LeaderLatch`es configured the same way, on a
//! real ZooKeeper 3.8 server, for every adapter. Every client reaches the
//! server through the kit's proxy, which black-holes the connections while
//! the server stays up (a network partition), so the only news of trouble a
//! client gets is its own silence — the case the rules are for:
//!
//! 1. the standard policy (default): both leaders step down as soon as their
//!    clients are SUSPENDED, long before the session could expire;
//! 2. the session policy: a cut healed within the session keeps both leaders
//!    leading throughout (never reported lost);
//! 3. the simulated expiration: with the session policy and the connections
//!    cut until past the session timeout, the claim is LOST once SUSPENDED has
//!    lasted the negotiated timeout x percent / 100 — at 50 %, half-way, while
//!    the Rust client is still suspended on its session (before its own
//!    expiry, and no server could have told it) — as Java's is;
//! 4. where the two differ: a silent network is noticed only at the read
//!    timeout (2/3 of the session), and Curator counts its simulated
//!    expiration from there (LOST at 5/3 of the session after the last
//!    answer, past the server's own expiry), while the Rust client gives the
//!    session up a session timeout after the last answer, ending the claim
//!    then.
//!
//! Times are printed; bounds are generous (the machine is shared) but each
//! one tells the behaviour apart from its absence.

mod recipes_common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use recipes_common::{eventually, run, unique, Adapter, WAIT};
use zk_client::{Client, SessionState};
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{
    ConnectionRules, ErrorPolicy, LatchLeadership, LatchOptions, LeaderLatch,
};
use zk_tokio::recipes::Holding;

/// Session timeout asked for by every client (the server grants it: 3 ticks).
const SESSION: Duration = Duration::from_secs(6);

/// The session of the ride-through test: its cut is healed once both sides
/// are SUSPENDED (2/3 of it), and a third of it (4 s) is then left to
/// reconnect in: a Java client waits up to a second before it tries again,
/// and was seen back 2 s after the heal.
const RIDE_SESSION: Duration = Duration::from_secs(12);

/// Slack for a step that should be prompt (a listener, a scheduler on a busy
/// 2-core machine).
const PROMPT: Duration = Duration::from_millis(1500);

/// Every state change of a Rust client, with when it came.
#[derive(Clone, Default)]
struct StateLog(Arc<Mutex<Vec<(Instant, SessionState)>>>);

impl StateLog {
    fn on(client: &Client) -> StateLog {
        let log = StateLog::default();
        let l = log.clone();
        client.add_listener(move |st| l.0.lock().unwrap().push((Instant::now(), st)));
        log
    }

    /// When `st` was first reported after `t0`.
    fn first(&self, st: SessionState, t0: Instant) -> Option<Instant> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(t, s)| *s == st && *t >= t0)
            .map(|(t, _)| *t)
    }

    /// [`first`](StateLog::first), waiting up to [`PROMPT`] for it (the
    /// listener runs on the client's listener thread, after the change).
    fn wait_first(&self, st: SessionState, t0: Instant) -> Option<Instant> {
        let t = Instant::now();
        loop {
            let r = self.first(st, t0);
            if r.is_some() || t.elapsed() > PROMPT {
                if r.is_none() {
                    let log = self.0.lock().unwrap();
                    let seen: Vec<_> = log
                        .iter()
                        .map(|(at, s)| (s, at.checked_duration_since(t0).map(secs)))
                        .collect();
                    println!("no {st:?} after the cut; states seen (time after the cut): {seen:?}");
                }
                return r;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// How a Rust tenure ended: when, how, and where its client stood then.
struct End {
    at: Instant,
    how: Holding,
    state: SessionState,
    session: Option<i64>,
}

/// A Rust participant: its own client (through the proxy) and latch.
struct Rust<Z> {
    zk: Z,
    latch: LeaderLatch,
    log: StateLog,
    tenure: LatchLeadership,
    session: i64,
    end: mpsc::Receiver<End>,
}

impl<Z: Adapter> Rust<Z> {
    /// Connects through `cs`, joins `path` alone with `rules` and leads (session `timeout`).
    fn lead(cs: &str, path: &str, id: &str, rules: ConnectionRules, timeout: Duration) -> Rust<Z> {
        let zk = Z::connect_for(cs, timeout);
        let log = StateLog::on(zk.as_async());
        let opts = LatchOptions {
            rules,
            ..Default::default()
        };
        let latch = LeaderLatch::with_options(zk.as_async(), path, id, opts).unwrap();
        latch.start();
        let led = if Z::NAME == "blocking" {
            latch.await_leadership_blocking(Some(WAIT))
        } else {
            Z::exec(latch.await_leadership(Some(WAIT)))
        };
        assert!(led, "{id} did not lead its own latch");
        let tenure = latch.leadership().expect("leading");
        let session = zk.session().expect("a session").id;
        assert_eq!(
            zk.session().and_then(|s| s.timeout),
            Some(timeout),
            "negotiated timeout"
        );
        // Reported by a thread of its own, as the tenure's owner would hear it.
        let (tx, end) = mpsc::channel();
        let (ended, client) = (tenure.ended(), zk.as_async().clone());
        thread::spawn(move || {
            let how = Z::exec(ended);
            let _ = tx.send(End {
                at: Instant::now(),
                how,
                state: client.state(),
                session: client.session().map(|s| s.id),
            });
        });
        Rust {
            zk,
            latch,
            log,
            tenure,
            session,
            end,
        }
    }

    /// Waits for the latch to lead again (after a heal).
    fn leads_again(&self) -> bool {
        if Z::NAME == "blocking" {
            self.latch.await_leadership_blocking(Some(WAIT))
        } else {
            Z::exec(self.latch.await_leadership(Some(WAIT)))
        }
    }

    /// How the tenure ended (within three sessions of the cut at `t0`) and
    /// when the client was first SUSPENDED after `t0`.
    fn ended(&self, t0: Instant) -> (End, Instant) {
        let id = self.latch.id();
        let end = self
            .end
            .recv_timeout(SESSION * 3)
            .unwrap_or_else(|_| panic!("{id}: the Rust tenure never ended"));
        let suspended = self
            .log
            .wait_first(SessionState::Suspended, t0)
            .unwrap_or_else(|| panic!("{id}: the Rust client was never SUSPENDED"));
        (end, suspended)
    }

    /// A round trip, so the client last heard from the server just now.
    fn touch(&self) {
        Z::exec(self.zk.as_async().exists("/")).unwrap();
    }

    fn close(self) {
        if Z::NAME == "blocking" {
            self.latch.close_blocking()
        } else {
            Z::exec(self.latch.close())
        }
        self.zk.close().unwrap();
    }
}

/// A Java client (`rulesClient`) named `name` with its own latch `<name>-l`
/// on `path`, leading. `policy`: "standard" or "session".
fn java_lead(
    j: &mut Curator,
    name: &str,
    policy: &str,
    percent: u32,
    path: &str,
    session: Duration,
) {
    let ms = session.as_millis();
    let negotiated = j.ok(&format!("rulesClient {name} {ms} {policy} {percent}"));
    assert_eq!(negotiated, ms.to_string(), "Java's negotiated timeout");
    j.ok(&format!("watchedLatch {name}-l {name} {path} {name}"));
    assert_eq!(
        j.ok(&format!("awaitLeader {name}-l 30000")),
        "true",
        "{name} leads"
    );
}

/// One Rust leader (`rust`, with `rules`) and one Java leader (`java`, with
/// `policy` at 100 %), each alone on its latch under a base tagged `tag`,
/// both reaching the shared server through a proxy of their own, and both
/// having just heard from the server.
fn rust_and_java<Z: Adapter>(
    tag: &str,
    rules: ConnectionRules,
    policy: &str,
    session: Duration,
) -> (Proxy, Rust<Z>, Curator) {
    let proxy = Proxy::start(shared_server().addr());
    let base = unique(tag, Z::NAME);
    let cs = proxy.connect_string();
    let r = Rust::<Z>::lead(&cs, &format!("{base}/rust"), "rust", rules, session);
    let mut j = Curator::bare(&cs);
    java_lead(
        &mut j,
        "java",
        policy,
        100,
        &format!("{base}/java"),
        session,
    );
    j.ok("children java /");
    r.touch();
    (proxy, r, j)
}

/// Heals the cut: Java's `java` and Rust's `r` lead again (each alone on its
/// path), then both let go.
fn heal_and_lead_again<Z: Adapter>(proxy: &Proxy, j: &mut Curator, r: Rust<Z>) {
    proxy.black_hole(false);
    assert_eq!(j.ok("awaitLeader java-l 30000"), "true", "Java leads again");
    assert!(r.leads_again(), "rust leads again");
    j.ok("latchClose java-l");
    r.close();
}

/// The `ms` of Java's event `ev <what> ...<ms>` (ms since `mark`), if it came
/// within `limit`.
fn java_ms(j: &mut Curator, what: &str, limit: Duration) -> Option<Duration> {
    let ev = j.event(what, limit)?;
    let ms = ev.rsplit(' ').next().unwrap().parse().expect("ms");
    Some(Duration::from_millis(ms))
}

/// When (since Java's mark) the client `java` was SUSPENDED (within two
/// sessions), and when its latch stepped down (within `limit`).
fn java_steps_down(j: &mut Curator, limit: Duration) -> (Duration, Duration) {
    let susp = java_ms(j, "state java SUSPENDED", SESSION * 2).expect("Java was never SUSPENDED");
    let not = java_ms(j, "notLeader java-l", limit).expect("Java never stepped down");
    (susp, not)
}

/// Marks Java's time origin and cuts: returns the Rust side's origin.
fn cut(j: &mut Curator, proxy: &Proxy, close_too: bool) -> Instant {
    j.ok("mark");
    let t0 = Instant::now();
    proxy.black_hole(true);
    if close_too {
        proxy.cut_all();
    }
    t0
}

/// Curator's session error policy, at the default 100 %.
fn session_policy() -> ConnectionRules {
    ConnectionRules {
        error_policy: ErrorPolicy::Session,
        ..Default::default()
    }
}

/// Asserts that `d` (`what`) came about at `want`: at most `early_ms` before
/// it, less than [`PROMPT`] after it.
fn assert_about(d: Duration, want: Duration, early_ms: u64, what: &str) {
    assert!(
        d >= want - Duration::from_millis(early_ms) && d < want + PROMPT,
        "{what}: {}, not about {}",
        secs(d),
        secs(want)
    );
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// 1. Standard policy: SUSPENDED ends the claim, on both sides.
fn standard_steps_down<Z: Adapter>() {
    let (proxy, r, mut j) = rust_and_java::<Z>(
        "curator-rules-std",
        ConnectionRules::default(),
        "standard",
        SESSION,
    );

    let t0 = cut(&mut j, &proxy, false);
    let (end, suspended) = r.ended(t0);
    let (r_susp, r_end) = (suspended - t0, end.at - t0);
    println!(
        "{}: rust SUSPENDED at {}, claim ended ({:?}) at {}",
        Z::NAME,
        secs(r_susp),
        end.how,
        secs(r_end)
    );
    assert_eq!(end.how, Holding::Suspended, "the claim ended by SUSPENDED");
    assert_eq!(
        (end.state, end.session),
        (SessionState::Suspended, Some(r.session)),
        "the claim ended while the client was suspended on its session"
    );
    assert!(
        end.at.saturating_duration_since(suspended) < PROMPT,
        "the claim ended {} after SUSPENDED",
        secs(end.at.saturating_duration_since(suspended))
    );
    assert!(!r.latch.has_leadership(), "rust still leads");
    assert!(!r.tenure.is_held(), "the tenure is still held");
    assert_eq!(r.tenure.status(), Holding::Suspended);

    let (j_susp, j_not) = java_steps_down(&mut j, SESSION * 2);
    println!(
        "{}: java SUSPENDED at {}, notLeader at {}",
        Z::NAME,
        secs(j_susp),
        secs(j_not)
    );
    assert!(j_not < j_susp + PROMPT, "Java stepped down late");
    assert_eq!(j.ok("isLeader java-l"), "false");
    // Both stepped down before either session could have expired.
    assert!(
        r_end < SESSION && j_not < SESSION,
        "stepped down after the session timeout"
    );

    // Both queue again, and lead again (each is alone on its path).
    heal_and_lead_again(&proxy, &mut j, r);
}

/// 2. Session policy: a cut healed within the session changes nothing.
fn session_rides_through<Z: Adapter>() {
    let (proxy, r, mut j) = rust_and_java::<Z>(
        "curator-rules-session",
        session_policy(),
        "session",
        RIDE_SESSION,
    );
    let token = r.tenure.fencing_token();

    let t0 = cut(&mut j, &proxy, false);
    // Held until both clients are SUSPENDED (at the read timeout, 2/3 of the
    // session), then healed: the sessions live on (1/3 of the timeout left).
    let mut java_suspended = None;
    let mut samples = 0u32;
    loop {
        assert!(
            r.latch.has_leadership(),
            "rust stopped leading at {}",
            secs(t0.elapsed())
        );
        samples += 1;
        if java_suspended.is_none() {
            java_suspended = java_ms(&mut j, "state java SUSPENDED", Duration::from_millis(1));
        }
        let rust_suspended = r.log.first(SessionState::Suspended, t0);
        if (rust_suspended.is_some() && java_suspended.is_some())
            || t0.elapsed() > RIDE_SESSION * 5 / 6
        {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    proxy.black_hole(false);
    let healed = t0.elapsed();
    let r_susp = r
        .log
        .wait_first(SessionState::Suspended, t0)
        .expect("the Rust client was never SUSPENDED (the cut proves nothing)");
    let j_susp = java_suspended.expect("Java was never SUSPENDED (the cut proves nothing)");
    // Leading throughout, until reconnected on the same session.
    let t = Instant::now();
    while r.log.first(SessionState::Connected, t0).is_none() {
        assert!(
            r.latch.has_leadership(),
            "rust stopped leading at {}",
            secs(t0.elapsed())
        );
        assert!(t.elapsed() < WAIT, "the Rust client did not reconnect");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        r.zk.session().map(|s| s.id),
        Some(r.session),
        "same session"
    );
    let r_back = r.log.first(SessionState::Connected, t0).unwrap() - t0;
    let j_back = java_ms(&mut j, "state java RECONNECTED", WAIT).expect("Java did not reconnect");
    println!(
        "{}: SUSPENDED at rust {} / java {}, healed at {}, RECONNECTED at rust {} / java {}; rust led in all {samples} samples",
        Z::NAME,
        secs(r_susp - t0),
        secs(j_susp),
        secs(healed),
        secs(r_back),
        secs(j_back)
    );
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) {
        assert!(
            r.latch.has_leadership(),
            "rust stopped leading after the reconnection"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let l = r.latch.leadership().expect("leading");
    assert_eq!(l.fencing_token(), token, "the same tenure");
    assert_eq!(l.status(), Holding::Held);
    if let Ok(e) = r.end.try_recv() {
        panic!("the Rust tenure was reported ended ({:?})", e.how);
    }
    assert_eq!(j.ok("isLeader java-l"), "true", "Java still leads");
    assert_eq!(
        j.event("notLeader java-l", Duration::from_millis(300)),
        None,
        "Java stepped down"
    );
    j.ok("latchClose java-l");
    r.close();
}

/// 3. Simulated expiration: SUSPENDED past percent of the session is LOST.
fn simulated_expiration<Z: Adapter>() {
    let server = shared_server();
    let proxy = Proxy::start(server.addr());
    let base = unique("curator-rules-expiry", Z::NAME);
    let rules = |percent| ConnectionRules {
        simulated_expiration_percent: percent,
        ..session_policy()
    };
    let cs = proxy.connect_string();
    let r50 = Rust::<Z>::lead(
        &cs,
        &format!("{base}/rust-50"),
        "rust-50",
        rules(50),
        SESSION,
    );
    let r100 = Rust::<Z>::lead(
        &cs,
        &format!("{base}/rust-100"),
        "rust-100",
        rules(100),
        SESSION,
    );
    let mut j = Curator::bare(&cs);
    java_lead(
        &mut j,
        "java-50",
        "session",
        50,
        &format!("{base}/java-50"),
        SESSION,
    );
    java_lead(
        &mut j,
        "java-100",
        "session",
        100,
        &format!("{base}/java-100"),
        SESSION,
    );
    j.ok("children java-50 /");
    j.ok("children java-100 /");
    r50.touch();
    r100.touch();

    // The connections close and nothing answers after: SUSPENDED at once,
    // every reconnection unanswered; the sessions live on in the server
    // until it expires them.
    let t0 = cut(&mut j, &proxy, true);
    let half = SESSION / 2;
    let (e50, s50) = r50.ended(t0);
    let (e100, s100) = r100.ended(t0);
    let (l50, l100) = (
        e50.at.saturating_duration_since(s50),
        e100.at.saturating_duration_since(s100),
    );
    let expired50 = r50.log.first(SessionState::Expired, t0).map(|t| t - t0);
    let jl50 = java_ms(&mut j, "notLeader java-50-l", SESSION * 2).expect("java-50 led on");
    let jl100 = java_ms(&mut j, "notLeader java-100-l", SESSION * 2).expect("java-100 led on");
    let js50 = java_ms(&mut j, "state java-50 SUSPENDED", WAIT).expect("java-50 SUSPENDED");
    let js100 = java_ms(&mut j, "state java-100 SUSPENDED", WAIT).expect("java-100 SUSPENDED");
    let jlost50 = java_ms(&mut j, "state java-50 LOST", WAIT).expect("java-50 LOST");
    println!(
        "{}: after SUSPENDED, lost: rust-50 {} ({:?}, client {:?}, own expiry at {:?}), java-50 {} (LOST {}), rust-100 {} ({:?}), java-100 {}",
        Z::NAME,
        secs(l50),
        e50.how,
        e50.state,
        expired50.map(secs),
        secs(jl50.saturating_sub(js50)),
        secs(jlost50.saturating_sub(js50)),
        secs(l100),
        e100.how,
        secs(jl100.saturating_sub(js100)),
    );
    // rust-50: LOST at half the negotiated timeout, by the rules alone: its
    // client was still suspended on the session it led with.
    assert_eq!(e50.how, Holding::Lost);
    assert_eq!(
        (e50.state, e50.session),
        (SessionState::Suspended, Some(r50.session)),
        "rust-50's claim was lost while its client was suspended on its session"
    );
    assert_about(l50, half, 100, "rust-50 lost its claim after SUSPENDED");
    assert!(!r50.tenure.is_held() && !r50.latch.has_leadership());
    // Java with the same rules: the same.
    let j50 = jl50.saturating_sub(js50);
    assert_about(j50, half, 100, "java-50 stepped down after SUSPENDED");
    // The default 100 %: a claim rides through SUSPENDED until about the
    // whole timeout (on the Rust side the client's own expiry, a timeout
    // after it last heard from the server, ends it then at the latest).
    assert_eq!(e100.how, Holding::Lost);
    assert_about(
        l100,
        SESSION,
        500,
        "rust-100 lost its claim after SUSPENDED",
    );
    let j100 = jl100.saturating_sub(js100);
    assert_about(j100, SESSION, 100, "java-100 stepped down after SUSPENDED");

    proxy.black_hole(false);
    for name in ["java-50", "java-100"] {
        assert_eq!(
            j.ok(&format!("awaitLeader {name}-l 30000")),
            "true",
            "{name} leads again"
        );
        j.ok(&format!("latchClose {name}-l"));
    }
    for r in [r50, r100] {
        assert!(r.leads_again(), "{} leads again", r.latch.id());
        r.close();
    }
    let admin = Z::connect_to(&server.connect_string());
    eventually(WAIT, "every latch node gone", || {
        ["rust-50", "rust-100", "java-50", "java-100"]
            .iter()
            .all(|p| {
                admin
                    .get_children(&format!("{base}/{p}"))
                    .map(|k| k.is_empty())
                    .unwrap_or(true)
            })
    });
    admin.close().unwrap();
}

/// Test 4, a silent network under the session policy at 100 %: the Rust
/// claim ends a session timeout after the last answer (the client's own
/// expiry), Curator's a session timeout after SUSPENDED.
fn silent_network_expiry<Z: Adapter>() {
    let (proxy, r, mut j) =
        rust_and_java::<Z>("curator-rules-silent", session_policy(), "session", SESSION);

    let t0 = cut(&mut j, &proxy, false);
    let (end, suspended) = r.ended(t0);
    let r_susp = suspended - t0;
    let r_end = end.at - t0;
    let (j_susp, j_not) = java_steps_down(&mut j, SESSION * 3);
    println!(
        "{}: silent network: SUSPENDED at rust {} / java {}; claim lost at rust {} ({:?}, client {:?}) / java {}",
        Z::NAME,
        secs(r_susp),
        secs(j_susp),
        secs(r_end),
        end.how,
        end.state,
        secs(j_not)
    );
    assert_eq!(end.how, Holding::Lost);
    assert_about(
        r_end,
        SESSION,
        500,
        "the Rust claim ended after the last answer (a session timeout)",
    );
    assert_about(
        j_not,
        j_susp + SESSION,
        100,
        "Java's claim ended after the cut (a session timeout after SUSPENDED)",
    );

    heal_and_lead_again(&proxy, &mut j, r);
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [standard_steps_down, session_rides_through, silent_network_expiry, simulated_expiration]);
