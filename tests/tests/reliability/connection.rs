//! The connection's I/O and clock: pings while idle, a server that stops reading,
//! `Duration::MAX` as no limit, a reply larger than the default frame.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::{ClientBuilder, CreateMode, Error, SessionState};
use zk_tests::server::shared_server;
use zk_tests::wire::{connect_response, read_frame};

use super::adapter::Adapter;
use super::support::{
    bounded, check, connect_shared, connect_to, cons_recved, driver_panics_since, fast_server,
    four_letter, join_all, lock, panic_mark, panic_text, unique, StateLog, CALL_LIMIT,
};

pub(crate) fn idle_soak<Z: Adapter>() {
    let server = fast_server();
    let zk = connect_to::<Z>(
        &ClientBuilder::new(&server.connect_string()).session_timeout(Duration::from_secs(2)),
    );
    let info = zk.session().expect("a connected client has a session");
    let negotiated = info
        .timeout
        .expect("a connected client has a negotiated timeout");
    assert!(
        negotiated <= Duration::from_secs(3),
        "{}: asked for a 2 s session timeout (tickTime 500), got {negotiated:?}",
        Z::NAME
    );
    let read_timeout = negotiated * 2 / 3;
    let log = StateLog::start(&zk);
    let cons0 = four_letter(server.addr(), "cons");
    let recved0 = cons_recved(&cons0, info.id).unwrap_or_else(|| {
        panic!(
            "{}: no `cons` line for session 0x{:x} right after connecting:\n{cons0}",
            Z::NAME,
            info.id
        )
    });
    let idle = negotiated * 3 + Duration::from_millis(500);
    thread::sleep(idle);
    let cons1 = four_letter(server.addr(), "cons");
    let state = zk.state();
    let session = zk.session().map(|s| s.id);
    let changes = log.changes();
    drop(log);

    let mut failures = Vec::new();
    if !changes.is_empty() {
        failures.push(format!(
            "state changed while idle for {idle:?} (negotiated timeout {negotiated:?}): {changes:?}"
        ));
    }
    if state != SessionState::Connected {
        failures.push(format!(
            "state after the idle time: {state:?}, not Connected"
        ));
    }
    if session != Some(info.id) {
        failures.push(format!(
            "session id changed: 0x{:x} -> {:?}",
            info.id,
            session.map(|s| format!("0x{s:x}"))
        ));
    }
    // At least (idle / ping interval) - 1 pings, the ping interval being half the read timeout.
    let expected = (idle.as_secs_f64() / (read_timeout.as_secs_f64() / 2.0)).floor() as u64 - 1;
    match cons_recved(&cons1, info.id) {
        None => failures.push(format!(
            "the server no longer lists a connection of session 0x{:x} after {idle:?} idle \
             (it had recved={recved0}):\n{cons1}",
            info.id
        )),
        Some(recved1) => {
            let got = recved1.saturating_sub(recved0);
            if recved1 < recved0 || got < expected {
                failures.push(format!(
                    "the server received {got} packets (recved {recved0} -> {recved1}) in \
                     {idle:?} idle; expected at least {expected} pings (read timeout \
                     {read_timeout:?}, a ping every {:?})",
                    read_timeout / 2
                ));
            }
        }
    }
    let zk = Arc::new(zk);
    if let Err(e) = bounded(CALL_LIMIT, "close", move || zk.close()) {
        failures.push(e);
    }
    check(&format!("{} idle_soak", Z::NAME), failures);
}

/// A loopback listener whose accepted sockets have a tiny receive buffer (SO_RCVBUF is
/// set before listen, through tokio's TcpSocket: no extra dependency).
fn small_rcvbuf_listener() -> TcpListener {
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime for the listener");
    let _enter = rt.enter();
    let sock = ::tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    sock.listen(16)
        .expect("listen")
        .into_std()
        .expect("a std listener")
}

/// A fake server: completes the handshake (negotiated timeout `timeout_ms`), then never
/// reads from or writes to the connection again, holding it open until dropped.
struct StallServer {
    addr: String,
    stop: Arc<AtomicBool>,
    /// When each connection's handshake reply (the last byte it sends) was written.
    handshakes: Arc<Mutex<Vec<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl StallServer {
    fn start(timeout_ms: i32) -> StallServer {
        let l = small_rcvbuf_listener();
        let addr = l.local_addr().expect("local_addr").to_string();
        l.set_nonblocking(true).expect("set_nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let (stop2, hs2) = (stop.clone(), handshakes.clone());
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                let Ok((mut s, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                s.set_nonblocking(false).ok();
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                if read_frame(&mut s).is_err() {
                    continue;
                }
                // The time is taken before the write: the client may act on the reply
                // before this thread runs again.
                let sent = Instant::now();
                if s.write_all(&connect_response(0x0bad_c0de_0000_0001, timeout_ms))
                    .is_ok()
                {
                    lock(&hs2).push(sent);
                }
                held.push(s);
            }
            for s in held {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        });
        StallServer {
            addr,
            stop,
            handshakes,
            thread: Some(thread),
        }
    }

    /// When the first handshake reply was sent (waits a little for the server thread to
    /// note it: the client may have read the reply first).
    fn first_handshake(&self) -> Option<Instant> {
        let t = Instant::now();
        loop {
            if let Some(first) = lock(&self.handshakes).first().copied() {
                return Some(first);
            }
            if t.elapsed() > Duration::from_secs(2) {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for StallServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn stalled_reader<Z: Adapter>() {
    const WRITES: usize = 32;
    const PAYLOAD: usize = 512 * 1024;
    let server = StallServer::start(3000);
    let zk =
        connect_to::<Z>(&ClientBuilder::new(&server.addr).connect_deadline(Duration::from_secs(5)));
    let negotiated = zk.session().and_then(|s| s.timeout);
    assert_eq!(
        negotiated,
        Some(Duration::from_millis(3000)),
        "{}: the fake server grants 3000 ms",
        Z::NAME
    );
    let read_timeout = Duration::from_millis(2000);
    let handshake = server
        .first_handshake()
        .expect("the fake server recorded its handshake reply");
    let log = StateLog::start(&zk);
    let client = zk.as_async().clone();
    let payload = Bytes::from(vec![0x5au8; PAYLOAD]);
    // Every call must have returned by then: the connection is dead after the read
    // timeout, and a reconnect (to the same stalling server) dies the same way.
    let call_bound = read_timeout * 2 + Duration::from_secs(3);
    let started = Instant::now();
    let calls: Vec<_> = (0..WRITES)
        .map(|i| {
            let (c, data) = (client.clone(), payload.clone());
            thread::spawn(move || {
                let t = Instant::now();
                let r = zk_client::blocking::block_on(
                    c.set_data(&format!("/stall-{i}"), data, None),
                    Some(call_bound),
                );
                (r, t.elapsed())
            })
        })
        .collect();

    let mut failures = Vec::new();
    // Wait for the client to leave Connected, a little past the bound to see how late.
    let bound = handshake + read_timeout + Duration::from_secs(1);
    let give_up = bound + Duration::from_secs(4);
    let left = loop {
        let first_other = log.all().into_iter().find(|(_, s)| !s.is_connected());
        if let Some(found) = first_other {
            break Some(found);
        }
        if Instant::now() >= give_up {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    match left {
        None => failures.push(format!(
            "still {:?} {:?} after the fake server's last byte (read timeout {read_timeout:?}; \
             expected to leave Connected within {:?}); states seen: {:?}",
            zk.state(),
            give_up - handshake,
            bound - handshake,
            log.all().iter().map(|(_, s)| *s).collect::<Vec<_>>()
        )),
        Some((at, s)) if at > bound => failures.push(format!(
            "left Connected ({s:?}) only {:?} after the server's last byte (bound {:?})",
            at - handshake,
            bound - handshake
        )),
        Some(_) => {}
    }
    let (mut pending, mut ok, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for (i, h) in calls.into_iter().enumerate() {
        match h.join() {
            Err(p) => failures.push(format!(
                "set_data #{i}: thread panicked: {}",
                panic_text(&*p)
            )),
            Ok((None, _)) => pending.push(i),
            Ok((Some(Ok(_)), _)) => ok.push(i),
            Ok((Some(Err(e)), took)) => errors.push(format!("#{i} {e:?} after {took:?}")),
        }
    }
    if !pending.is_empty() {
        failures.push(format!(
            "{} of {WRITES} set_data calls ({PAYLOAD} B each) never returned: still pending \
             after {call_bound:?} (calls {pending:?})",
            pending.len()
        ));
    }
    if !ok.is_empty() {
        failures.push(format!(
            "set_data calls {ok:?} returned Ok from a server that never replies"
        ));
    }
    println!(
        "[{}] stalled_reader: calls that failed: {errors:?}",
        Z::NAME
    );
    drop(log);
    let zk = Arc::new(zk);
    let t = Instant::now();
    match bounded(Duration::from_secs(10), "close", move || zk.close()) {
        Ok(_) if t.elapsed() > Duration::from_secs(3) => {
            failures.push(format!("close() took {:?} (bound 3 s)", t.elapsed()))
        }
        Ok(_) => {}
        Err(e) => failures.push(e),
    }
    println!(
        "[{}] stalled_reader: {} connection(s) accepted; {WRITES} x {PAYLOAD} B submitted \
         {:?} after the handshake",
        Z::NAME,
        lock(&server.handshakes).len(),
        started - handshake
    );
    check(&format!("{} stalled_reader", Z::NAME), failures);
}

pub(crate) fn duration_max_is_forever<Z: Adapter>() {
    let hosts = shared_server().connect_string();
    let cases: Vec<(&str, ClientBuilder)> = vec![
        (
            "connect_deadline(Duration::MAX)",
            ClientBuilder::new(&hosts).connect_deadline(Duration::MAX),
        ),
        (
            "request_timeout(Duration::MAX)",
            ClientBuilder::new(&hosts).request_timeout(Duration::MAX),
        ),
        (
            "connect_timeout(Duration::MAX)",
            ClientBuilder::new(&hosts).connect_timeout(Duration::MAX),
        ),
    ];
    let mut failures = Vec::new();
    for (what, builder) in cases {
        let mark = panic_mark();
        let r = bounded(Duration::from_secs(15), what, move || {
            let zk = Z::connect(&builder).map_err(|e| format!("connect: {e:?}"))?;
            let r = zk
                .exists("/")
                .map_err(|e| format!("exists(\"/\"): {e:?}"))
                .and_then(|s| s.ok_or_else(|| "exists(\"/\"): None".to_string()));
            let p = format!("/duration-max-{}-{}", Z::NAME, std::process::id());
            let r = r.and_then(|_| {
                zk.create(&p, "x", CreateMode::Ephemeral)
                    .map_err(|e| format!("create: {e:?}"))
            });
            zk.close().map_err(|e| format!("close: {e:?}"))?;
            r.map(|_| ())
        });
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{what}: {e}{}", driver_panics_since(mark))),
            Err(e) => failures.push(format!("{e}{}", driver_panics_since(mark))),
        }
    }
    let what = "a call with timeout Some(Duration::MAX)";
    let mark = panic_mark();
    let zk = Arc::new(connect_shared::<Z>());
    let z2 = zk.clone();
    match bounded(Duration::from_secs(15), what, move || {
        z2.exists_with_max_timeout()
    }) {
        Ok(Ok(Some(_))) => {}
        Ok(r) => failures.push(format!("{what}: {r:?}{}", driver_panics_since(mark))),
        Err(e) => failures.push(format!("{e}{}", driver_panics_since(mark))),
    }
    if let Err(e) = bounded(CALL_LIMIT, "close", move || zk.close()) {
        failures.push(e);
    }
    check(&format!("{} duration_max_is_forever", Z::NAME), failures);
}

/// The server's default jute.maxbuffer, which bounds the requests it accepts.
const JUTE_MAXBUFFER: usize = 0xfffff;

pub(crate) fn big_reply<Z: Adapter>() {
    let root = connect_shared::<Z>();
    let base = unique::<Z>("big");
    root.create(&base, "", CreateMode::Persistent).unwrap();
    let mut failures = Vec::new();

    // (a) 1,040,000 bytes, then the largest node the server accepts; both read back with
    // the default builder.
    let p1 = format!("{base}/n1040000");
    root.create(&p1, vec![1u8; 1_040_000], CreateMode::Persistent)
        .unwrap();
    match root.get_data(&p1) {
        Ok((d, _)) if d.len() == 1_040_000 => {}
        other => failures.push(format!(
            "get_data of a 1,040,000-byte node: {:?}",
            other.map(|(d, _)| d.len())
        )),
    }
    // A create request's payload: xid, type, path, data, one world:anyone ACL, flags.
    let p2 = format!("{base}/max");
    let overhead = 4 + 4 + (4 + p2.len()) + 4 + (4 + 4 + 5 + 4 + 6) + 4;
    let max = JUTE_MAXBUFFER - overhead;
    let mut size = None;
    for n in [max, max - 8, max - 64, max - 512, max - 4096] {
        match root.create(&p2, vec![2u8; n], CreateMode::Persistent) {
            Ok(_) => {
                size = Some(n);
                break;
            }
            Err(Error::ConnectionLoss) => {
                // Refused ("Len error"): the server dropped the connection.
                root.wait_connected().unwrap();
                if let Some(st) = root.exists(&p2).unwrap() {
                    size = Some(st.data_length as usize);
                    break;
                }
            }
            Err(e) => panic!("{}: create of {n} bytes: {e:?}", Z::NAME),
        }
    }
    let n = size.unwrap_or_else(|| {
        panic!(
            "{}: the server accepted none of the sizes from {max} to {} bytes",
            Z::NAME,
            max - 4096
        )
    });
    // The reply: xid, zxid, err, data, Stat (68 bytes).
    let reply = 4 + 8 + 4 + 4 + n + 68;
    match root.get_data(&p2) {
        Ok((d, _)) if d.len() == n => {}
        other => failures.push(format!(
            "get_data of the largest node the server accepts ({n} bytes; reply frame {reply} \
             bytes, default max frame {JUTE_MAXBUFFER}) with the default builder: {:?}",
            other.map(|(d, _)| d.len())
        )),
    }

    // (b) max_frame(4096): a 10,000-byte reply among 5 small ones in flight.
    let big = format!("{base}/ten-thousand");
    let small = format!("{base}/small");
    root.create(&big, vec![3u8; 10_000], CreateMode::Persistent)
        .unwrap();
    root.create(&small, "s", CreateMode::Persistent).unwrap();
    let zk =
        connect_to::<Z>(&ClientBuilder::new(&shared_server().connect_string()).max_frame(4096));
    let sid = zk.session().expect("session").id;
    let log = StateLog::start(&zk);
    let client = zk.as_async().clone();
    let order = [&small, &small, &big, &small, &small, &small];
    let futs: Vec<_> = order
        .iter()
        .map(|p| Box::pin(client.get_data(p.as_str())))
        .collect();
    let results = zk_client::blocking::block_on(join_all(futs), Some(CALL_LIMIT));
    thread::sleep(Duration::from_millis(300));
    let changes = log.changes();
    drop(log);
    match results {
        None => failures.push(format!(
            "max_frame(4096): the 6 reads were still pending after {CALL_LIMIT:?}"
        )),
        Some(results) => {
            for (i, r) in results.iter().enumerate() {
                if i == 2 {
                    match r {
                        Ok((d, _)) => failures.push(format!(
                            "max_frame(4096): the 10,000-byte read returned Ok ({} bytes)",
                            d.len()
                        )),
                        Err(e) if *e == Error::ConnectionLoss || e.is_retryable() => {
                            failures.push(format!(
                                "max_frame(4096): the 10,000-byte read failed with {e:?} \
                                 (retryable: {}); expected a dedicated, non-retryable error",
                                e.is_retryable()
                            ))
                        }
                        Err(_) => {}
                    }
                } else {
                    match r {
                        Ok((d, _)) if &d[..] == b"s" => {}
                        other => failures.push(format!(
                            "max_frame(4096): small read #{i} (in flight with the big one): {:?}",
                            other.as_ref().map(|(d, _)| d.clone())
                        )),
                    }
                }
            }
        }
    }
    if !changes.is_empty() {
        failures.push(format!(
            "max_frame(4096): the oversized reply changed the session state: {changes:?}"
        ));
    }
    if zk.session().map(|s| s.id) != Some(sid) || !zk.state().is_connected() {
        failures.push(format!(
            "max_frame(4096): afterwards state {:?}, session {:?} (was 0x{sid:x})",
            zk.state(),
            zk.session().map(|s| s.id)
        ));
    }
    let _ = zk.close();
    let _ = root.delete_recursive(&base);
    root.close().unwrap();
    check(&format!("{} big_reply", Z::NAME), failures);
}
