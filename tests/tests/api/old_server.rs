//! `add_watch` on a (fake) server older than 3.6.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use zk_client::{AddWatchMode, ClientBuilder, Error, ErrorCode, SessionState};
use zk_tests::facade::Zk;
use zk_tests::wire::{connect_response, frame, read_frame};

use super::support::{connect, WAIT};

const FAKE_SESSION: i64 = 0x0102_0304_0506_0708;

/// A reply header alone: xid, zxid, err.
fn reply_header(xid: i32, err: i32) -> Vec<u8> {
    let mut p = xid.to_be_bytes().to_vec();
    p.extend_from_slice(&1i64.to_be_bytes());
    p.extend_from_slice(&err.to_be_bytes());
    frame(&p)
}

/// A fake 3.5 server: completes the handshake, answers pings, and answers every other
/// request (addWatch among them) with Unimplemented (-6), as a 3.5 server does to an opcode
/// it does not know. closeSession is answered and ends the connection.
struct OldServer {
    addr: String,
    connections: Arc<AtomicUsize>,
    add_watches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl OldServer {
    fn start() -> OldServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let add_watches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (conns, adds, stop2) = (connections.clone(), add_watches.clone(), stop.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let adds = adds.clone();
                thread::spawn(move || {
                    s.set_nonblocking(false).ok();
                    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    if read_frame(&mut s).is_err() {
                        return;
                    }
                    s.write_all(&connect_response(FAKE_SESSION, 10_000)).ok();
                    loop {
                        let Ok(req) = read_frame(&mut s) else { return };
                        if req.len() < 8 {
                            return;
                        }
                        let xid = i32::from_be_bytes([req[0], req[1], req[2], req[3]]);
                        let op = i32::from_be_bytes([req[4], req[5], req[6], req[7]]);
                        match op {
                            11 => {
                                s.write_all(&reply_header(-2, 0)).ok();
                            }
                            -11 => {
                                s.write_all(&reply_header(xid, 0)).ok();
                                return;
                            }
                            _ => {
                                if op == 106 {
                                    adds.fetch_add(1, Ordering::SeqCst);
                                }
                                s.write_all(&reply_header(xid, -6)).ok();
                            }
                        }
                    }
                });
            }
        });
        OldServer {
            addr,
            connections,
            add_watches,
            stop,
        }
    }
}

impl Drop for OldServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn add_watch_on_old_server_is_unsupported<Z: Zk>() {
    let srv = OldServer::start();
    let zk = connect::<Z>(&ClientBuilder::new(&srv.addr).connect_deadline(WAIT));
    assert_eq!(zk.session().unwrap().id, FAKE_SESSION);
    let mut states = zk.state_stream();
    assert_eq!(
        states.recv_timeout(Some(WAIT)),
        Some(SessionState::Connected)
    );
    for (i, mode) in [AddWatchMode::Persistent, AddWatchMode::PersistentRecursive]
        .into_iter()
        .enumerate()
    {
        let err = match zk.add_watch("/x", mode) {
            Ok(_) => panic!("{}: add_watch {mode:?} succeeded on a 3.5 server", Z::NAME),
            Err(e) => e,
        };
        match &err {
            Error::Unsupported(msg) => assert!(msg.contains("3.6"), "{}: {msg}", Z::NAME),
            e => panic!("{}: add_watch {mode:?}: {e:?}", Z::NAME),
        }
        assert_eq!(err.code(), ErrorCode::Unimplemented);
        assert!(!err.is_retryable() && !err.outcome_unknown());
        assert_eq!(srv.add_watches.load(Ordering::SeqCst), i + 1);
    }
    // The session carries on: same connection, same session, no state change.
    assert_eq!(zk.state(), SessionState::Connected);
    assert_eq!(zk.session().unwrap().id, FAKE_SESSION);
    assert_eq!(
        states.wait_next(Some(Duration::from_millis(500))),
        Err(Error::Timeout),
        "{}: the state changed",
        Z::NAME
    );
    assert_eq!(srv.connections.load(Ordering::SeqCst), 1, "reconnected");
    zk.close().unwrap();
}
