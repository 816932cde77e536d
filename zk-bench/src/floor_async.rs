//! The floor client on an async runtime: the std floor's pre-encoded requests and
//! frame counting, on one socket registered with tokio's or smol's reactor, so each
//! adapter is compared with what its own runtime costs a library-free client
//! (issue 20). The handshake is done on the blocking socket first (not measured);
//! the workloads then wait for readiness the way any client on that runtime must.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::floor::{self, Floor, Pipeline, Seen};

/// A non-blocking socket on a runtime's reactor.
pub trait Sock {
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>>;
    /// Waits until the socket may be writable.
    fn writable(&self) -> impl std::future::Future<Output = io::Result<()>>;
    /// Reads what is there now (`WouldBlock` if nothing).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what the socket takes now (`WouldBlock` if nothing).
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

impl Sock for tokio::net::TcpStream {
    async fn readable(&self) -> io::Result<()> {
        tokio::net::TcpStream::readable(self).await
    }
    async fn writable(&self) -> io::Result<()> {
        tokio::net::TcpStream::writable(self).await
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::TcpStream::try_read(self, buf)
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        tokio::net::TcpStream::try_write(self, buf)
    }
}

impl Sock for smol::Async<std::net::TcpStream> {
    async fn readable(&self) -> io::Result<()> {
        smol::Async::readable(self).await
    }
    async fn writable(&self) -> io::Result<()> {
        smol::Async::writable(self).await
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut self.get_ref(), buf)
    }
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut self.get_ref(), buf)
    }
}

/// A connected session's socket with a read buffer.
pub struct AsyncFloor<S> {
    s: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    last_zxid: i64,
}

/// Opens a session on the blocking socket and hands it, non-blocking, to `wrap`.
pub fn connect<S>(
    addr: SocketAddr,
    timeout_ms: i32,
    wrap: impl FnOnce(std::net::TcpStream) -> io::Result<S>,
) -> io::Result<AsyncFloor<S>> {
    let f = Floor::connect(addr, timeout_ms)?;
    let s = f.into_socket();
    s.set_nonblocking(true)?;
    Ok(AsyncFloor {
        s: wrap(s)?,
        buf: vec![0; 64 * 1024],
        start: 0,
        end: 0,
        last_zxid: 0,
    })
}

impl<S: Sock> AsyncFloor<S> {
    /// Writes all of `data`.
    pub async fn write(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.s.try_write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.s.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits for bytes, reads them, and calls `f` for every complete reply; returns how many.
    pub async fn read_replies(&mut self, f: impl FnMut(Seen)) -> io::Result<usize> {
        crate::floor::make_room(&mut self.buf, &mut self.start, &mut self.end);
        let n = loop {
            match self.s.try_read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.s.readable().await?,
                Err(e) => return Err(e),
            }
        };
        self.end += n;
        let (used, count) = floor::walk(&self.buf[self.start..self.end], &mut self.last_zxid, f);
        self.start += used;
        Ok(count)
    }

    /// W1: one pre-encoded request at a time; each one's latency.
    pub async fn sequential(&mut self, frame: &[u8], n: usize) -> io::Result<Vec<Duration>> {
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            self.write(frame).await?;
            while self.read_replies(|_| {}).await? == 0 {}
            lat.push(t.elapsed());
        }
        Ok(lat)
    }

    /// W2/W3: as [`Floor::pipeline`], at most `window` unanswered; latencies and error replies.
    pub async fn pipeline(
        &mut self,
        frames: &[u8],
        offs: &[usize],
        window: usize,
    ) -> io::Result<(Vec<Duration>, u64)> {
        let mut p = Pipeline::new(frames, offs, window);
        while !p.finished() {
            if let Some(batch) = p.next_batch() {
                self.write(batch).await?;
                p.batch_sent();
            }
            self.read_replies(|r| {
                p.reply(r);
            })
            .await?;
            p.replies_read();
        }
        Ok(p.finish())
    }
}
