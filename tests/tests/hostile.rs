//! Hostile peers: a fake server that completes the handshake, then answers the
//! first request with garbage, an oversized or negative frame length, or a reply
//! for the wrong xid. Every adapter must drop the connection, complete the request
//! exactly once with ConnectionLoss (outcome unknown), never panic, and close
//! without hanging. A well-formed reply that is merely larger than the client's
//! max frame fails only its own request (ReplyTooLarge) and keeps the connection.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, Error};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::wire::{connect_response, frame, read_frame};

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    Garbage,
    Oversized,
    NegativeLength,
    WrongXid,
    TruncatedBody,
    /// A well-formed 2 MiB reply to the request: bigger than the client's max frame.
    TooLargeReply,
    /// The same size, but for an xid nobody waits for.
    TooLargeWrongXid,
}

/// Serves every connection: handshake, then misbehave on the first request.
fn fake_server(how: Misbehaviour) -> (String, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            std::thread::spawn(move || {
                s.set_nonblocking(false).ok();
                s.set_read_timeout(Some(Duration::from_secs(20))).ok();
                if read_frame(&mut s).is_err() {
                    return;
                }
                s.write_all(&connect_response(0x0102_0304_0506_0708, 10_000))
                    .ok();
                loop {
                    let Ok(req) = read_frame(&mut s) else { return };
                    let xid = i32::from_be_bytes([req[0], req[1], req[2], req[3]]);
                    let op = i32::from_be_bytes([req[4], req[5], req[6], req[7]]);
                    if op == 11 {
                        // Answer pings properly so only the misbehaviour ends the connection.
                        let mut p = (-2i32).to_be_bytes().to_vec();
                        p.extend_from_slice(&1i64.to_be_bytes());
                        p.extend_from_slice(&0i32.to_be_bytes());
                        s.write_all(&frame(&p)).ok();
                        continue;
                    }
                    let bytes: Vec<u8> = match how {
                        Misbehaviour::Garbage => frame(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]),
                        Misbehaviour::Oversized => 0x7fff_ffffi32.to_be_bytes().to_vec(),
                        Misbehaviour::NegativeLength => (-5i32).to_be_bytes().to_vec(),
                        Misbehaviour::WrongXid => {
                            let mut p = (xid + 5).to_be_bytes().to_vec();
                            p.extend_from_slice(&9i64.to_be_bytes());
                            p.extend_from_slice(&0i32.to_be_bytes());
                            frame(&p)
                        }
                        Misbehaviour::TooLargeReply | Misbehaviour::TooLargeWrongXid => {
                            let xid = if matches!(how, Misbehaviour::TooLargeReply) {
                                xid
                            } else {
                                xid + 7
                            };
                            let mut p = xid.to_be_bytes().to_vec();
                            p.extend_from_slice(&9i64.to_be_bytes());
                            p.extend_from_slice(&0i32.to_be_bytes());
                            p.extend_from_slice(&(2i32 << 20).to_be_bytes());
                            p.extend_from_slice(&vec![b'z'; 2 << 20]);
                            p.extend_from_slice(&[0u8; 68]);
                            frame(&p)
                        }
                        Misbehaviour::TruncatedBody => {
                            // A getData reply whose Stat is cut short.
                            let mut p = xid.to_be_bytes().to_vec();
                            p.extend_from_slice(&9i64.to_be_bytes());
                            p.extend_from_slice(&0i32.to_be_bytes());
                            p.extend_from_slice(&3i32.to_be_bytes());
                            p.extend_from_slice(b"abc");
                            p.extend_from_slice(&[0u8; 10]);
                            frame(&p)
                        }
                    };
                    s.write_all(&bytes).ok();
                    // Keep the socket open: the client must drop it.
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    (addr.to_string(), stop)
}

fn hostile<Z: Zk>(how: Misbehaviour) {
    let (addr, stop) = fake_server(how);
    let zk = Z::connect(&ClientBuilder::new(&addr).connect_deadline(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{} {how:?}: handshake with the fake server: {e}", Z::NAME));
    let t = Instant::now();
    let r = zk.get_data("/x");
    let ok = match how {
        Misbehaviour::TruncatedBody => matches!(r, Err(Error::Malformed(_))),
        Misbehaviour::TooLargeReply => matches!(r, Err(Error::ReplyTooLarge { .. })),
        _ => matches!(r, Err(Error::ConnectionLoss)),
    };
    assert!(ok, "{} {how:?}: {r:?}", Z::NAME);
    if matches!(how, Misbehaviour::TooLargeReply) {
        // Only that request failed: the connection and the session carry on.
        let e = r.as_ref().unwrap_err();
        assert!(!e.outcome_unknown() && !e.is_retryable(), "{e:?}");
        let session = zk.session().unwrap().id;
        let mut states = zk.state_stream();
        assert_eq!(
            states.recv_timeout(Some(Duration::from_secs(1))),
            Some(zk.state())
        );
        let r2 = zk.get_data("/y");
        assert!(
            matches!(r2, Err(Error::ReplyTooLarge { .. })),
            "{} {how:?}: {r2:?}",
            Z::NAME
        );
        assert_eq!(zk.state(), zk_client::SessionState::Connected);
        assert_eq!(zk.session().unwrap().id, session);
        assert_eq!(
            states.wait_next(Some(Duration::from_millis(300))),
            Err(Error::Timeout),
            "{} {how:?}: the state changed",
            Z::NAME
        );
        zk.close().unwrap();
        stop.store(true, Ordering::Relaxed);
        return;
    }
    assert!(r.as_ref().unwrap_err().outcome_unknown());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{} {how:?}: took {:?}",
        Z::NAME,
        t.elapsed()
    );
    // The client reconnects (same misbehaving server); a second request fails the same way.
    let r2 = zk.exists("/y");
    assert!(r2.is_err(), "{} {how:?}: {r2:?}", Z::NAME);
    let t = Instant::now();
    zk.close().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{} {how:?}: close took {:?}",
        Z::NAME,
        t.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
}

fn all<Z: Zk>() {
    for how in [
        Misbehaviour::Garbage,
        Misbehaviour::Oversized,
        Misbehaviour::NegativeLength,
        Misbehaviour::WrongXid,
        Misbehaviour::TruncatedBody,
        Misbehaviour::TooLargeReply,
        Misbehaviour::TooLargeWrongXid,
    ] {
        hostile::<Z>(how);
    }
}

#[test]
fn hostile_peers_tokio() {
    all::<TokioZk>();
}

#[test]
fn hostile_peers_smol() {
    all::<SmolZk>();
}

#[test]
fn hostile_peers_blocking() {
    all::<BlockingZk>();
}
