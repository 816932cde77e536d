//! zk-smol and zk-blocking on a [`ManualClock`]: the session's timers and the
//! driver's sleeps follow a clock the test moves, so 20 virtual minutes of idleness
//! against a real server take five seconds. The client must stay Connected, ping on
//! schedule (the server answers within the step), and its driver must be woken
//! by the clock whenever the session's deadline moves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, Clock, Diagnostics, ManualClock, SessionInfo, SessionState};
use zk_tests::shared_server;

/// Virtual seconds of idleness per test.
const IDLE_S: u64 = 1200;

/// Moves the clock 20 minutes in 1 s steps. Once the connection has been silent
/// for a ping interval (a third of the session timeout) a ping is due, and the
/// clock stands still, in real time and for 5 s at most, until the server's
/// answer is in: the answer then comes within the step, as it would in real
/// time, however slow the machine (a fixed real-time gap between steps was
/// overrun under load, and a clock moved on meanwhile passes the read timeout
/// with the answer in flight). After each step the client must be Connected.
fn idle(
    clock: &ManualClock,
    diag: &Diagnostics,
    ping_every: Duration,
    state: impl Fn() -> SessionState,
) {
    for step in 0..IDLE_S {
        clock.advance(Duration::from_secs(1));
        let waited = Instant::now();
        let ping_due = || {
            diag.last_received()
                .is_some_and(|heard| clock.now() - heard >= ping_every)
        };
        while ping_due() && waited.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            state(),
            SessionState::Connected,
            "left Connected at step {step}"
        );
        let heard = diag.last_received().expect("a live connection");
        assert!(heard <= clock.now());
        assert!(!ping_due(), "no ping answered in 5 s at step {step}");
    }
}

fn sent_pings(four_letter: impl Fn() -> String, sid: i64) -> u64 {
    let cons = four_letter();
    let line = cons
        .lines()
        .find(|l| l.contains(&format!("sid=0x{sid:x}")))
        .unwrap_or_else(|| panic!("session 0x{sid:x} not in cons:\n{cons}"));
    let recved = line
        .split([',', '('])
        .find_map(|f| f.trim().strip_prefix("recved="))
        .unwrap_or_else(|| panic!("no recved= in {line}"));
    recved.parse().unwrap()
}

/// [`idle`]s, and checks the pings the server counted for `session` meanwhile: one
/// per read_timeout / 2 of silence (a third of the session timeout). The clock
/// moves in whole seconds, so a ping due every third of the session timeout goes
/// out at the next whole second.
fn idle_pinging(
    clock: &ManualClock,
    diag: &Diagnostics,
    session: SessionInfo,
    state: impl Fn() -> SessionState,
) {
    let timeout = session.timeout.unwrap();
    let before = sent_pings(cons, session.id);
    idle(clock, diag, timeout / 3, state);
    let after = sent_pings(cons, session.id);
    let expected = IDLE_S / (timeout.as_secs_f64() / 3.0).ceil() as u64;
    assert!(
        after - before >= expected * 9 / 10,
        "{} pings in {IDLE_S} virtual s, expected about {expected}",
        after - before
    );
}

/// Waits up to 5 s for a closed client's live counts (`counts`) to drop to none.
fn all_released(counts: impl Fn() -> zk_client::LiveCounts) {
    let t = Instant::now();
    while counts() != zk_client::LiveCounts::default() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(counts(), zk_client::LiveCounts::default());
}

fn builder() -> ClientBuilder {
    ClientBuilder::new(&shared_server().connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect_deadline(Duration::from_secs(20))
}

fn cons() -> String {
    zk_tests::four_letter_word(shared_server().addr(), "cons", Duration::from_secs(5)).unwrap()
}

#[allow(clippy::disallowed_methods)]
#[test]
fn blocking_idle_virtual_hour() {
    let clock = ManualClock::new(Instant::now());
    let zk = zk_blocking::connect_with(
        &builder(),
        Arc::new(zk_blocking::TcpConnector),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let sid = zk.session().unwrap().id;
    let diag = zk.diagnostics();
    idle_pinging(&clock, &diag, zk.session().unwrap(), || zk.state());
    assert_eq!(zk.session().unwrap().id, sid);
    zk.close().unwrap();
    assert_eq!(diag.last_received(), None, "no connection once closed");
    drop(zk);
    all_released(|| diag.counts());
}

#[allow(clippy::disallowed_methods)]
#[test]
fn smol_idle_virtual_hour() {
    let clock = ManualClock::new(Instant::now());
    let zk = smol::block_on(zk_smol::connect_with(
        &builder(),
        Arc::new(zk_smol::TcpConnector),
        Arc::new(clock.clone()),
    ))
    .unwrap();
    let diag = zk.diagnostics();
    idle_pinging(&clock, &diag, zk.session().unwrap(), || zk.state());
    smol::block_on(zk.close()).unwrap();
    assert_eq!(diag.last_received(), None, "no connection once closed");
    drop(zk);
    all_released(|| diag.counts());
}

/// `connect`'s deadline is on the client's clock: against a port nobody listens
/// on, three real seconds past a two-second deadline the call is still waiting
/// (the clock has not moved), and it fails once the clock passes the deadline.
fn connect_deadline_follows_the_manual_clock(
    connect: impl FnOnce(ClientBuilder, Arc<dyn zk_client::Clock>) -> zk_client::Result<()>
        + Send
        + 'static,
) {
    use zk_client::Error;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = ManualClock::new(Instant::now());
    let b = ClientBuilder::new(&format!("127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(1))
        .connect_deadline(Duration::from_secs(2));
    let (tx, rx) = std::sync::mpsc::channel();
    let c = Arc::new(clock.clone());
    std::thread::spawn(move || {
        let _ = tx.send(connect(b, c));
    });
    let early = rx.recv_timeout(Duration::from_secs(3));
    assert!(
        early.is_err(),
        "connect ended on real time, the clock unmoved: {early:?}"
    );
    clock.advance(Duration::from_secs(3));
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("connect did not end once the clock passed its deadline");
    assert!(
        matches!(
            r,
            Err(Error::ConnectFailed(_) | Error::Timeout | Error::Unreachable)
        ),
        "{r:?}"
    );
}

#[test]
fn connect_deadline_follows_the_manual_clock_smol() {
    connect_deadline_follows_the_manual_clock(|b, clock| {
        smol::block_on(zk_smol::connect_with(
            &b,
            Arc::new(zk_smol::TcpConnector),
            clock,
        ))
        .map(drop)
    });
}

#[test]
fn connect_deadline_follows_the_manual_clock_blocking() {
    connect_deadline_follows_the_manual_clock(|b, clock| {
        zk_blocking::connect_with(&b, Arc::new(zk_blocking::TcpConnector), clock).map(drop)
    });
}
