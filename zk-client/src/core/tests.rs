//! The driver's wake-ups (issue 10's defects at their root).

use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll, Wake};

use bytes::{Bytes, BytesMut};
use zk_proto::jute::Encode;
use zk_proto::SessionState;

use super::*;
use crate::clock::ManualClock;

#[derive(Default)]
struct CountingWaker(AtomicUsize);
impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn connect_response(timeout_ms: i32) -> Vec<u8> {
    let mut b = BytesMut::new();
    zk_proto::frame::write_frame(&mut b, |b| {
        zk_proto::ConnectResponse {
            protocol_version: 0,
            timeout: timeout_ms,
            session_id: 7,
            passwd: Bytes::from_static(&[1; 16]),
            read_only: Some(false),
        }
        .encode(b)
    });
    b.to_vec()
}

/// Defect 1 of issue 10 at its root: the handshake reply arrives on the reader
/// while the driver sleeps until the handshake's deadline (1 s for a first
/// handshake); the core must wake the driver when the session's deadline (the
/// first ping, 400 ms away with a 1.2 s session) moved earlier.
#[test]
fn handshake_reply_wakes_the_driver_with_an_earlier_deadline() {
    let clock = ManualClock::new(Instant::now());
    let (_client, shared) = crate::ClientBuilder::new("h:1")
        .session_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(9))
        .build_on(Arc::new(clock.clone()))
        .unwrap();
    let count = Arc::new(CountingWaker::default());
    let waker = Waker::from(count.clone());
    let mut io = Vec::new();
    let DriverPoll::Run {
        deadline: Some(connect_deadline),
    } = shared.poll_driver(&mut io, &waker)
    else {
        panic!("no deadline while connecting");
    };
    // The session's own connect timeout reaches the adapter.
    let [Io::Connect { conn, timeout, .. }] = io.as_slice() else {
        panic!("expected one connect, got {io:?}");
    };
    assert_eq!(*timeout, Duration::from_secs(9));
    assert_eq!(connect_deadline, clock.now() + Duration::from_secs(9));
    let conn = *conn;
    shared.connected(conn);
    // The writer takes the ConnectRequest.
    let mut cx = Context::from_waker(&waker);
    assert!(matches!(
        shared.poll_write(conn, &mut cx),
        Poll::Ready(Some(_))
    ));
    // Woken by the handshake's deadline (earlier than the connect's), the
    // driver polls again and sleeps until it.
    io.clear();
    let DriverPoll::Run {
        deadline: Some(handshake_deadline),
    } = shared.poll_driver(&mut io, &waker)
    else {
        panic!("no deadline while handshaking");
    };
    assert_eq!(handshake_deadline, clock.now() + Duration::from_secs(1));
    let woken_before = count.0.load(Ordering::SeqCst);
    clock.advance(Duration::from_millis(10));
    shared.input(conn, &connect_response(1200));
    assert_eq!(shared.state(), SessionState::Connected);
    assert!(
        count.0.load(Ordering::SeqCst) > woken_before,
        "the driver was not woken although its deadline moved from the connect timeout to the first ping"
    );
    let DriverPoll::Run { deadline: Some(d) } = shared.poll_driver(&mut io, &waker) else {
        panic!("no deadline once connected");
    };
    // Ping after read_timeout / 2 = 400 ms of silence.
    assert_eq!(d, clock.now() + Duration::from_millis(400));
    // Later inputs only move the deadline later: no wake-up per reply.
    let woken = count.0.load(Ordering::SeqCst);
    shared.input(conn, &[]);
    assert_eq!(count.0.load(Ordering::SeqCst), woken);
}

/// Defect 3: once detached and terminal, the driver is woken to see it is finished.
#[test]
fn finished_wakes_the_driver() {
    let clock = ManualClock::new(Instant::now());
    let (client, shared) = crate::ClientBuilder::new("h:1")
        .build_on(Arc::new(clock.clone()))
        .unwrap();
    let count = Arc::new(CountingWaker::default());
    let waker = Waker::from(count.clone());
    let mut io = Vec::new();
    assert!(matches!(
        shared.poll_driver(&mut io, &waker),
        DriverPoll::Run { .. }
    ));
    client.abandon();
    let woken = count.0.load(Ordering::SeqCst);
    assert!(matches!(
        shared.poll_driver(&mut io, &waker),
        DriverPoll::Run { .. }
    ));
    drop(client);
    assert!(
        count.0.load(Ordering::SeqCst) > woken,
        "dropping the last handle did not wake the driver"
    );
    assert_eq!(shared.poll_driver(&mut io, &waker), DriverPoll::Finished);
}
