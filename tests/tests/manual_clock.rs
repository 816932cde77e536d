//! zk-smol and zk-blocking on a [`ManualClock`]: the session's timers and the
//! driver's sleeps follow a clock the test moves, so 20 virtual minutes of idleness
//! against a real server take five seconds. The client must stay Connected, ping on
//! schedule (the server answers within the step), and its driver must be woken
//! by the clock whenever the session's deadline moves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, ManualClock, SessionInfo, SessionState};
use zk_tests::shared_server;

/// Virtual seconds of idleness per test.
const IDLE_S: u64 = 1200;

/// Moves the clock 20 minutes in 1 s steps, letting 4 ms of real time pass
/// between them: a ping reply then has about 25 ms of real time to arrive
/// before the (virtual) read timeout, which a loaded machine still meets.
fn idle(clock: &ManualClock, state: impl Fn() -> SessionState) {
    for step in 0..IDLE_S {
        clock.advance(Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(4));
        assert_eq!(
            state(),
            SessionState::Connected,
            "left Connected at step {step}"
        );
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
fn idle_pinging(clock: &ManualClock, session: SessionInfo, state: impl Fn() -> SessionState) {
    let timeout = session.timeout.unwrap();
    let before = sent_pings(cons, session.id);
    idle(clock, state);
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
    idle_pinging(&clock, zk.session().unwrap(), || zk.state());
    assert_eq!(zk.session().unwrap().id, sid);
    let diag = zk.diagnostics();
    zk.close().unwrap();
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
    idle_pinging(&clock, zk.session().unwrap(), || zk.state());
    let diag = zk.diagnostics();
    smol::block_on(zk.close()).unwrap();
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
