//! The network side of the simulated ensemble: connections accepted by a member,
//! bytes in (frames, or a four-letter word on a fresh connection), frames out and
//! closes, in the order the caller drains them.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::error::ErrorCode;
use crate::frame::{write_frame, FrameDecoder};
use crate::jute::Encode;
use crate::ops::Response;
use crate::records::ReplyHeader;
use crate::types::OpCode;

use super::{SimCluster, SimConnId, SimWatches, JUTE_MAXBUFFER};

/// One client connection on a member: its stream, its session and its watches.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) member: usize,
    pub(super) decoder: FrameDecoder,
    /// Set once the ConnectResponse was sent.
    pub(super) session: Option<i64>,
    /// The client sent the read-only byte in its ConnectRequest.
    pub(super) ro_byte: bool,
    pub(super) digest_users: Vec<(String, String)>,
    pub(super) watches: SimWatches,
    pub(super) held: VecDeque<(i32, OpCode, Bytes)>,
    pub(super) hung: bool,
    pub(super) closing: bool,
    /// The first bytes of a fresh connection, until 4 decide whether it is a
    /// four-letter word; `None` once decided.
    pub(super) prefix: Option<Vec<u8>>,
}

impl SimCluster {
    /// A client connected to `member`. Returns false (and remembers nothing) if
    /// the member is down or does not exist: the connect is refused.
    pub fn accept(&mut self, member: usize, conn: SimConnId, now: Instant) -> bool {
        let _ = now;
        match self.members.get(member) {
            Some(m) if m.up => {}
            _ => return false,
        }
        self.conns.insert(
            conn,
            Conn {
                member,
                decoder: FrameDecoder::new(JUTE_MAXBUFFER),
                session: None,
                ro_byte: false,
                digest_users: Vec::new(),
                watches: SimWatches::default(),
                held: VecDeque::new(),
                hung: false,
                closing: false,
                prefix: Some(Vec::new()),
            },
        );
        true
    }

    /// Bytes from the client, in any chunking. Ignored for unknown or closing connections.
    pub fn handle_input(&mut self, conn: SimConnId, data: &[u8], now: Instant) {
        let word = match self.conns.get_mut(&conn) {
            Some(c) if !c.closing => {
                c.decoder.push(data);
                match &mut c.prefix {
                    Some(p) => {
                        p.extend_from_slice(&data[..data.len().min(4 - p.len())]);
                        if p.len() < 4 {
                            return;
                        }
                        let word = std::mem::take(p);
                        c.prefix = None;
                        Some(word)
                    }
                    None => None,
                }
            }
            _ => return,
        };
        if let Some(word) = word {
            if let Some(answer) = self.four_letter_word(conn, &word) {
                self.output.push_back((conn, Bytes::from(answer)));
                self.close_conn(conn, true);
                return;
            }
        }
        loop {
            let frame = match self.conns.get_mut(&conn) {
                Some(c) if !c.closing => c.decoder.next_frame(),
                _ => return,
            };
            match frame {
                Ok(Some(f)) => self.on_frame(conn, f, now),
                Ok(None) => return,
                // Bad length prefix: closed without a reply.
                Err(_) => {
                    self.close_conn(conn, true);
                    return;
                }
            }
        }
    }

    /// The client closed (or the connection broke). Its queued output is dropped,
    /// its watches die; the session lives on until it expires or is resumed.
    pub fn handle_closed(&mut self, conn: SimConnId, now: Instant) {
        let _ = now;
        self.close_conn(conn, false);
        self.closes.retain(|c| *c != conn);
        self.conns.remove(&conn);
    }

    /// The next bytes the server wrote, and for which connection: one whole frame
    /// with its length prefix, or the plain-text answer to a four-letter word.
    pub fn poll_output(&mut self) -> Option<(SimConnId, Bytes)> {
        self.output.pop_front()
    }

    /// A connection the server closed, reported once none of its output is left in
    /// [`SimCluster::poll_output`]'s queue. The connection is then forgotten.
    pub fn poll_close(&mut self) -> Option<SimConnId> {
        let idx = self
            .closes
            .iter()
            .position(|c| !self.output.iter().any(|(o, _)| o == c))?;
        let conn = self.closes.remove(idx)?;
        self.conns.remove(&conn);
        Some(conn)
    }

    /// The server drops one connection (after its queued output).
    pub fn close_connection(&mut self, conn: SimConnId) {
        self.close_conn(conn, true);
    }

    pub(super) fn close_conn(&mut self, cid: SimConnId, flush: bool) {
        let Some(c) = self.conns.get_mut(&cid) else {
            return;
        };
        if !flush {
            self.output.retain(|(o, _)| *o != cid);
        }
        if c.closing {
            return;
        }
        c.closing = true;
        c.watches = SimWatches::default();
        c.held.clear();
        if let Some(sid) = c.session {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if s.conn == Some(cid) {
                    s.conn = None;
                }
            }
        }
        self.closes.push_back(cid);
    }

    /// The open connections of member `m`, in id order.
    pub(super) fn member_conns(&self, m: usize) -> Vec<SimConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.member == m)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(super) fn close_member_conns(&mut self, m: usize, flush: bool) {
        for id in self.member_conns(m) {
            self.close_conn(id, flush);
        }
    }

    pub(super) fn push_frame(&mut self, cid: SimConnId, f: impl FnOnce(&mut BytesMut)) {
        let mut buf = BytesMut::new();
        write_frame(&mut buf, f);
        self.output.push_back((cid, buf.freeze()));
    }

    pub(super) fn reply(
        &mut self,
        cid: SimConnId,
        xid: i32,
        zxid: i64,
        res: Result<Response, ErrorCode>,
    ) {
        let (err, body) = match res {
            Ok(b) => (ErrorCode::Ok, Some(b)),
            Err(e) => (ErrorCode::from_code(e.code()), None),
        };
        self.push_frame(cid, |b| {
            ReplyHeader { xid, zxid, err }.encode(b);
            if let Some(body) = &body {
                body.encode_body(b);
            }
        });
    }

    /// The answer to a four-letter word sent as the first bytes of a connection
    /// (`None`: not a command; the bytes are a frame length).
    fn four_letter_word(&self, cid: SimConnId, word: &[u8]) -> Option<Vec<u8>> {
        let member = &self.members[self.conns.get(&cid)?.member];
        let text = std::str::from_utf8(word).ok()?;
        Some(match text {
            "isro" => (if member.read_only { "ro" } else { "rw" }).into(),
            "ruok" => "imok".into(),
            "srvr" => format!(
                "Zookeeper version: sim\nZxid: 0x{:x}\nMode: {}\n",
                self.zxid,
                if member.read_only {
                    "read-only"
                } else {
                    "follower"
                }
            )
            .into_bytes(),
            "stat" | "conf" | "cons" | "crst" | "dump" | "envi" | "mntr" | "wchs" | "wchc"
            | "wchp" | "dirs" | "gtmk" | "stmk" | "srst" | "hash" => {
                format!("{text} is not executed because it is not in the whitelist.\n").into_bytes()
            }
            _ => return None,
        })
    }

    fn on_frame(&mut self, cid: SimConnId, frame: Bytes, now: Instant) {
        let Some(c) = self.conns.get(&cid) else {
            return;
        };
        if c.session.is_none() {
            self.handshake(cid, frame, now);
            return;
        }
        if frame.len() < 8 {
            self.close_conn(cid, true);
            return;
        }
        let xid = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let op = OpCode::from_i32(i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]));
        let body = frame.slice(8..);
        self.log.push((cid, xid, op));
        let member = c.member;
        let has_held = !c.held.is_empty();
        if let Some(s) = c.session.and_then(|sid| self.sessions.get_mut(&sid)) {
            s.last_heard = now;
        }
        match op {
            OpCode::Auth => self.auth(cid, xid, body),
            OpCode::Sasl => {
                self.reply(cid, xid, 0, Err(ErrorCode::AuthFailed));
                self.close_conn(cid, true);
            }
            _ if self.members[member].hold || has_held => {
                if let Some(c) = self.conns.get_mut(&cid) {
                    c.held.push_back((xid, op, body));
                }
            }
            _ => self.execute(cid, xid, op, body, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::error::ErrorCode;
    use crate::jute::Encode;
    use crate::records::RequestHeader;
    use crate::testing::server::test_wire::{frame, split, T};
    use crate::types::OpCode;

    #[test]
    fn bad_input_closes() {
        // Unknown opcode: UNIMPLEMENTED with zxid -1, then close.
        let (mut t, a) = T::with_session(1);
        t.send(
            a.conn,
            &frame(|b| {
                RequestHeader {
                    xid: 1,
                    op: OpCode::Unknown(55),
                }
                .encode(b)
            }),
        );
        let frames: Vec<_> = t.out(a.conn).iter().map(split).collect();
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].0.zxid, frames[0].0.err),
            (-1, ErrorCode::Unimplemented)
        );
        assert_eq!(t.closes(), vec![a.conn]);
        // Undecodable header: closed silently.
        let b = t.session(0);
        t.send(b.conn, &frame(|b| b.extend_from_slice(&[1, 2, 3])));
        assert!(t.out(b.conn).is_empty());
        assert_eq!(t.closes(), vec![b.conn]);
        // Bad frame length.
        let c = t.session(0);
        t.send(c.conn, &[0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(t.closes(), vec![c.conn]);
        // Undecodable body of a known op: MARSHALLINGERROR, stays open.
        let d = t.session(0);
        t.send(
            d.conn,
            &frame(|b| {
                RequestHeader {
                    xid: 9,
                    op: OpCode::GetData,
                }
                .encode(b);
                b.extend_from_slice(&[0, 0]);
            }),
        );
        let frames: Vec<_> = t.out(d.conn).iter().map(split).collect();
        assert_eq!(frames[0].0.err, ErrorCode::MarshallingError);
        assert!(t.closes().is_empty());
        // Garbage instead of a ConnectRequest.
        let conn = t.accept(0);
        t.send(conn, &frame(|b| b.extend_from_slice(&[9; 5])));
        assert!(t.out(conn).is_empty());
        assert_eq!(t.closes(), vec![conn]);
    }

    #[test]
    fn four_letter_words_answer_and_close() {
        let mut t = T::new(2);
        t.c.set_read_only(1, true, t.now);
        for (member, expected) in [(0, &b"rw"[..]), (1, &b"ro"[..])] {
            let conn = t.accept(member);
            t.send(conn, b"is");
            assert!(t.out(conn).is_empty());
            t.send(conn, b"ro");
            assert_eq!(t.out(conn), vec![Bytes::from_static(expected)]);
            assert_eq!(t.closes(), vec![conn]);
        }
        let conn = t.accept(0);
        t.send(conn, b"ruok");
        assert_eq!(t.out(conn), vec![Bytes::from_static(b"imok")]);
        // A 4lw on an established session is a huge frame length: closed, no answer.
        let a = t.session(0);
        t.closes();
        t.send(a.conn, b"isro");
        assert!(t.out(a.conn).is_empty());
        assert_eq!(t.closes(), vec![a.conn]);
    }
}
