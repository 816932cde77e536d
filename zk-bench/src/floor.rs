//! The floor client: one blocking std socket, requests pre-encoded with zk-proto's codec and
//! written in large batches, replies read in large chunks and only counted by walking the
//! frame lengths (plus the reply header's xid and err where a workload needs them).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::frame::write_frame;
use zk_proto::jute::Encode;
use zk_proto::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, PathWatchRequest, Request, RequestHeader,
    SetDataRequest, SetWatches,
};

/// A reply as the floor sees it: xid and err from the header.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub xid: i32,
    pub err: i32,
}

/// The bookkeeping of a pipelined run, the same for the blocking floor and the one on a
/// runtime (they differ only in how they write and read): which batch goes out next (at
/// most `window` unanswered), when each request went out, and the latencies and error
/// replies of those answered. Replies come in request order, so the answered are always
/// the oldest.
pub struct Pipeline<'a> {
    frames: &'a [u8],
    offs: &'a [usize],
    window: usize,
    sent_at: Vec<Instant>,
    lat: Vec<Duration>,
    sent: usize,
    done: usize,
    /// Answered in the read under way, not yet stamped.
    got: usize,
    errors: u64,
}

impl<'a> Pipeline<'a> {
    /// A run of the pre-encoded requests `frames` (request `i` is `offs[i]..offs[i + 1]`).
    pub fn new(frames: &'a [u8], offs: &'a [usize], window: usize) -> Self {
        let n = offs.len() - 1;
        Pipeline {
            frames,
            offs,
            window,
            sent_at: vec![Instant::now(); n],
            lat: vec![Duration::ZERO; n],
            sent: 0,
            done: 0,
            got: 0,
            errors: 0,
        }
    }

    /// Whether every request was answered.
    pub fn finished(&self) -> bool {
        self.done >= self.lat.len()
    }

    /// The bytes of the next batch if the window has room: the requests up to a full
    /// window past the oldest unanswered. [`batch_sent`](Self::batch_sent) once written.
    pub fn next_batch(&self) -> Option<&'a [u8]> {
        let n = self.lat.len();
        (self.sent < n && self.sent - self.done < self.window)
            .then(|| &self.frames[self.offs[self.sent]..self.offs[self.batch_end()]])
    }

    /// The batch [`next_batch`](Self::next_batch) gave was written: its requests went out now.
    pub fn batch_sent(&mut self) {
        let end = self.batch_end();
        self.sent_at[self.sent..end].fill(Instant::now());
        self.sent = end;
    }

    fn batch_end(&self) -> usize {
        (self.done + self.window).min(self.lat.len())
    }

    /// A reply was read; `false` if it is a notification (xid -1), which answers nothing.
    pub fn reply(&mut self, r: Seen) -> bool {
        if r.xid == -1 {
            return false;
        }
        self.got += 1;
        if r.err != 0 {
            self.errors += 1;
        }
        true
    }

    /// The replies of one read are all in: they arrived now.
    pub fn replies_read(&mut self) {
        let now = Instant::now();
        for i in self.done..self.done + self.got {
            self.lat[i] = now - self.sent_at[i];
        }
        self.done += std::mem::take(&mut self.got);
    }

    /// Each request's latency (batch send to the receipt of its reply's chunk) and the
    /// number of error replies.
    pub fn finish(self) -> (Vec<Duration>, u64) {
        (self.lat, self.errors)
    }
}

/// Calls `f` for every complete reply frame at the start of `buf` (and notes the last zxid);
/// returns the bytes they take and how many there were.
pub fn walk(buf: &[u8], last_zxid: &mut i64, mut f: impl FnMut(Seen)) -> (usize, usize) {
    let (mut at, mut count) = (0, 0);
    loop {
        let b = &buf[at..];
        if b.len() < 4 {
            break;
        }
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if b.len() < 4 + len {
            break;
        }
        if len >= 16 {
            let xid = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let zxid = i64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
            let err = i32::from_be_bytes([b[16], b[17], b[18], b[19]]);
            if zxid > 0 && xid >= 0 {
                *last_zxid = zxid;
            }
            f(Seen { xid, err });
        }
        at += 4 + len;
        count += 1;
    }
    (at, count)
}

/// One connection with a session.
pub struct Floor {
    s: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    pub session_id: i64,
    pub passwd: Bytes,
    pub last_zxid: i64,
}

/// Appends one request frame.
pub fn encode(out: &mut BytesMut, xid: i32, req: &Request) {
    write_frame(out, |b| {
        RequestHeader {
            xid,
            op: req.opcode(),
        }
        .encode(b);
        req.encode_body(b);
    });
}

/// `getData(path, watch)`.
pub fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

/// `create2(path, data)` with the open ACL (what the clients send for a create).
pub fn create(path: &str, data: Bytes) -> Request {
    Request::Create2(CreateRequest {
        path: path.into(),
        data: Some(data),
        acl: Acl::open_unsafe(),
        flags: 0,
    })
}

/// `setData(path, data)`.
pub fn set_data(path: &str, data: Bytes) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data),
        version: -1,
    })
}

/// `delete(path)`.
pub fn delete(path: &str) -> Request {
    Request::Delete(zk_proto::DeleteRequest {
        path: path.into(),
        version: -1,
    })
}

/// Frames of `reqs` with xids 1.., and the byte offset of each (plus the end).
pub fn encode_all(reqs: impl Iterator<Item = Request>, first_xid: i32) -> (Bytes, Vec<usize>) {
    let mut out = BytesMut::new();
    let mut offs = vec![0];
    for (i, r) in reqs.enumerate() {
        encode(&mut out, first_xid + i as i32, &r);
        offs.push(out.len());
    }
    (out.freeze(), offs)
}

impl Floor {
    /// Opens the socket only (the handshake follows with `send_connect` + `finish_connect`).
    pub fn open(addr: SocketAddr, buf_size: usize) -> io::Result<Floor> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Floor {
            s,
            buf: vec![0u8; buf_size],
            start: 0,
            end: 0,
            session_id: 0,
            passwd: Bytes::new(),
            last_zxid: 0,
        })
    }

    /// Connects and handshakes a new session.
    pub fn connect(addr: SocketAddr, timeout_ms: i32) -> io::Result<Floor> {
        let mut f = Floor::open(addr, 1 << 20)?;
        f.send_connect(timeout_ms, None, 0)?;
        f.finish_connect()?;
        Ok(f)
    }

    /// Connects and resumes a session.
    pub fn connect_resume(
        addr: SocketAddr,
        timeout_ms: i32,
        id: i64,
        passwd: Bytes,
        last_zxid: i64,
    ) -> io::Result<Floor> {
        let mut f = Floor::open(addr, 1 << 20)?;
        f.send_connect(timeout_ms, Some((id, passwd)), last_zxid)?;
        f.finish_connect()?;
        f.last_zxid = last_zxid;
        Ok(f)
    }

    /// Writes the ConnectRequest (for batched session opening).
    pub fn send_connect(
        &mut self,
        timeout_ms: i32,
        resume: Option<(i64, Bytes)>,
        last_zxid: i64,
    ) -> io::Result<()> {
        let (session_id, passwd) = resume.unwrap_or((0, Bytes::from_static(&[0u8; 16])));
        let mut out = BytesMut::new();
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout: timeout_ms,
            session_id,
            passwd,
            read_only: Some(false),
        };
        write_frame(&mut out, |b| req.encode(b));
        self.s.write_all(&out)
    }

    /// Reads the ConnectResponse.
    pub fn finish_connect(&mut self) -> io::Result<()> {
        let frame = loop {
            if let Some(f) = self.take_frame() {
                break f;
            }
            self.fill()?;
        };
        let resp: ConnectResponse = zk_proto::jute::from_bytes(frame)
            .map_err(|e| io::Error::other(format!("connect response: {e:?}")))?;
        if resp.timeout <= 0 {
            return Err(io::Error::other("session expired"));
        }
        self.session_id = resp.session_id;
        self.passwd = resp.passwd;
        Ok(())
    }

    fn take_frame(&mut self) -> Option<Bytes> {
        let avail = self.end - self.start;
        if avail < 4 {
            return None;
        }
        let b = &self.buf[self.start..];
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if avail < 4 + len {
            return None;
        }
        let f = Bytes::copy_from_slice(&self.buf[self.start + 4..self.start + 4 + len]);
        self.start += 4 + len;
        Some(f)
    }

    /// One read of whatever arrived (blocking); errors on EOF.
    fn fill(&mut self) -> io::Result<()> {
        make_room(&mut self.buf, &mut self.start, &mut self.end);
        let n = self.s.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        self.end += n;
        Ok(())
    }

    /// Reads one chunk and calls `f` for every complete reply in the buffer; returns how many.
    pub fn read_replies(&mut self, f: impl FnMut(Seen)) -> io::Result<usize> {
        self.fill()?;
        let (used, count) = walk(&self.buf[self.start..self.end], &mut self.last_zxid, f);
        self.start += used;
        Ok(count)
    }

    /// The connected socket (the handshake done, nothing unread), for a floor on a runtime.
    pub fn into_socket(self) -> TcpStream {
        self.s
    }

    /// Writes raw bytes.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.s.write_all(data)
    }

    /// Sends the pre-encoded requests `frames` (offsets `offs`) with at most `window`
    /// unanswered, in batches; returns each one's latency (batch send to chunk receipt)
    /// and the number of error replies. Notifications (xid -1) are passed to `notify`.
    pub fn pipeline(
        &mut self,
        frames: &[u8],
        offs: &[usize],
        window: usize,
        mut notify: impl FnMut(),
    ) -> io::Result<(Vec<Duration>, u64)> {
        let mut p = Pipeline::new(frames, offs, window);
        while !p.finished() {
            if let Some(batch) = p.next_batch() {
                self.s.write_all(batch)?;
                p.batch_sent();
            }
            let mut notes = 0usize;
            self.read_replies(|r| {
                if !p.reply(r) {
                    notes += 1;
                }
            })?;
            for _ in 0..notes {
                notify();
            }
            p.replies_read();
        }
        Ok(p.finish())
    }

    /// Re-arms data watches on `paths` after a reconnect: SetWatches batches of at most
    /// ~128 KiB (xid -8), then a getData barrier; returns when the barrier's reply came.
    pub fn restore_watches(&mut self, paths: &[String], barrier_path: &str) -> io::Result<()> {
        let mut out = BytesMut::new();
        let mut batch = Vec::new();
        let mut size = 0;
        let flush = |out: &mut BytesMut, batch: &mut Vec<String>, zxid: i64| {
            let req = Request::SetWatches(SetWatches {
                relative_zxid: zxid,
                data_watches: std::mem::take(batch),
                exist_watches: Vec::new(),
                child_watches: Vec::new(),
            });
            encode(out, -8, &req);
        };
        for p in paths {
            batch.push(p.clone());
            size += p.len() + 4;
            if size > 128 * 1024 {
                flush(&mut out, &mut batch, self.last_zxid);
                size = 0;
            }
        }
        if !batch.is_empty() {
            flush(&mut out, &mut batch, self.last_zxid);
        }
        encode(&mut out, 1, &get_data(barrier_path, false));
        self.s.write_all(&out)?;
        let mut barrier = false;
        while !barrier {
            self.read_replies(|r| {
                if r.xid == 1 {
                    barrier = true;
                }
            })?;
        }
        Ok(())
    }

    /// Counts notifications until `n` arrived or `timeout` passed.
    pub fn count_notifications(&mut self, n: u64, timeout: Duration) -> u64 {
        let _ = self.s.set_read_timeout(Some(Duration::from_millis(200)));
        let deadline = Instant::now() + timeout;
        let mut got = 0u64;
        while got < n && Instant::now() < deadline {
            match self.read_replies(|r| {
                if r.xid == -1 {
                    got += 1;
                }
            }) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        got
    }
}

/// Before a read into `buf[end..]`: drops the consumed `buf[..start]` (at once
/// if nothing is left, else once it is over half the buffer) and doubles a
/// full buffer. Shared by the blocking and the async floor clients.
pub(crate) fn make_room(buf: &mut Vec<u8>, start: &mut usize, end: &mut usize) {
    if *start == *end {
        (*start, *end) = (0, 0);
    } else if *start > buf.len() / 2 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    }
    if *end == buf.len() {
        let n = buf.len();
        buf.resize(n * 2, 0);
    }
}
