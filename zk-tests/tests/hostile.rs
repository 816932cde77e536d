//! Hostile peers: a fake server that completes the handshake, then answers the
//! first request with garbage, an oversized or negative frame length, or a reply
//! for the wrong xid. Every adapter must drop the connection, complete the request
//! exactly once with ConnectionLoss (outcome unknown), never panic, and close
//! without hanging.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, Error};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    Garbage,
    Oversized,
    NegativeLength,
    WrongXid,
    TruncatedBody,
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 20) as usize];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

fn connect_response() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0i32.to_be_bytes()); // protocol version
    p.extend_from_slice(&10_000i32.to_be_bytes()); // negotiated timeout
    p.extend_from_slice(&0x0102_0304_0506_0708i64.to_be_bytes()); // session id
    p.extend_from_slice(&16i32.to_be_bytes());
    p.extend_from_slice(&[7u8; 16]); // password
    p.push(0); // not read-only
    frame(&p)
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
                s.write_all(&connect_response()).ok();
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
        _ => matches!(r, Err(Error::ConnectionLoss)),
    };
    assert!(ok, "{} {how:?}: {r:?}", Z::NAME);
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
