//! A small TCP proxy between a W4 client and the server, run by the parent, so that the
//! connection can be cut while the session lives on. It records when each connection was
//! accepted (wall clock, comparable with the child's).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::SystemTime;

#[derive(Default)]
struct Inner {
    conns: Vec<(TcpStream, TcpStream)>,
    accepted: Vec<SystemTime>,
}

/// The proxy; lives until the parent exits.
#[derive(Clone)]
pub struct Proxy {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let inner2 = inner.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let at = SystemTime::now();
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                {
                    let mut g = inner2.lock().unwrap_or_else(|p| p.into_inner());
                    g.accepted.push(at);
                    if let (Ok(c3), Ok(s3)) = (client.try_clone(), server.try_clone()) {
                        g.conns.push((c3, s3));
                    }
                }
                thread::spawn(move || pump(client, s2));
                thread::spawn(move || pump(server, c2));
            }
        });
        Ok(Proxy { addr, inner })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection now.
    pub fn cut_all(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (c, s) in g.conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Accept times of all connections so far.
    pub fn accepted(&self) -> Vec<SystemTime> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .accepted
            .clone()
    }
}
