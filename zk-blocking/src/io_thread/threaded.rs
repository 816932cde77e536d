//! Transports that are not plain TCP (TLS, a connector's own): they stay out of
//! the epoll set, on a reader and a writer thread of their own.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use zk_client::{HostAddr, ReadBuf, Shared};
use zk_proto::ConnId;

use super::lock;
use crate::Transport;

/// A client's threaded transports, by connection, to shut down when told.
pub(super) type Handles = Arc<Mutex<HashMap<ConnId, Box<dyn Transport>>>>;

/// A transport that is not plain TCP, on threads of its own: this one reads, a
/// second writes (a write that blocks stalls only the writer thread).
pub(super) fn run_threaded(
    shared: Arc<Shared>,
    handles: Handles,
    conn: ConnId,
    host: HostAddr,
    mut rd: Box<dyn Transport>,
) {
    let opened = rd
        .try_clone_box()
        .and_then(|wr| Ok((wr, rd.try_clone_box()?)));
    let (wr, handle) = match opened {
        Ok(t) => t,
        Err(e) => {
            shared.report_connect_error(conn, format!("{host}: {e}"));
            shared.connect_failed(conn);
            return;
        }
    };
    let _open = shared.transport_guard();
    lock(&handles).insert(conn, handle);
    shared.connected(conn);
    let sh = shared.clone();
    let writer = std::thread::Builder::new()
        .name("zk-writer".into())
        .stack_size(64 * 1024)
        .spawn(move || write_loop(sh, conn, wr));
    if writer.is_ok() {
        let mut buf = ReadBuf::default();
        loop {
            match rd.read(buf.space()) {
                Ok(0) => break,
                Ok(n) => {
                    shared.input(conn, &buf.space()[..n]);
                    buf.after_read(n);
                }
                Err(e) => {
                    // Kept only while the session handshake is not done (a TLS alert
                    // after the handshake, a reset).
                    shared.report_connect_error(conn, format!("{host}: {e}"));
                    break;
                }
            }
        }
    }
    if let Some(t) = lock(&handles).remove(&conn) {
        t.shutdown();
    }
    shared.disconnected(conn);
    if let Ok(w) = writer {
        let _ = w.join();
    }
}

fn write_loop(shared: Arc<Shared>, conn: ConnId, mut wr: Box<dyn Transport>) {
    let waker = zk_client::blocking::thread_waker(std::thread::current());
    let mut cx = Context::from_waker(&waker);
    loop {
        match shared.poll_write(conn, &mut cx) {
            Poll::Ready(Some(bytes)) => {
                if wr.write_all(&bytes).and_then(|()| wr.flush()).is_err() {
                    break;
                }
            }
            Poll::Ready(None) => break,
            Poll::Pending => std::thread::park(),
        }
    }
    // The reader sees the end and reports it.
    wr.shutdown();
}
