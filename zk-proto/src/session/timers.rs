//! Time: the read timeout, the ping cadence, the connect timeout of an attempt,
//! and the one timer an adapter sleeps on (`poll_timeout`, then `handle_timeout`).

use std::time::{Duration, Instant};

use crate::error::ZkError;
use crate::ops::Request;
use crate::time::later;

use super::{DisconnectReason, Link, Session, SessionState, XID_PING};

const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);

impl Session {
    pub(super) fn session_timeout(&self) -> Duration {
        self.negotiated.unwrap_or(self.config.session_timeout)
    }

    /// Two thirds of the session timeout: a connection silent this long is dead.
    pub fn read_timeout(&self) -> Duration {
        let t = self.session_timeout();
        t.checked_mul(2).map_or(t / 3 * 2, |d| d / 3)
    }

    fn ping_interval(&self) -> Duration {
        (self.read_timeout() / 2).min(MAX_PING_INTERVAL)
    }

    fn next_ping(&self) -> Instant {
        // Normally a ping is due an interval after the last send; after a late ping
        // reply it is due at once (at the reply's time), never in the past.
        later(self.last_send, self.ping_interval()).max(self.ping_ack)
    }

    /// The timeout of each connection attempt (TCP connect plus handshake):
    /// [`Config::connect_timeout`](crate::Config::connect_timeout), or by default the session timeout divided by
    /// the number of hosts, clamped to 100 ms ..= 10 s. Adapters that connect
    /// blocking use it as the connect's own timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout.unwrap_or_else(|| {
            (self.session_timeout() / self.config.hosts.len().max(1) as u32)
                .clamp(Duration::from_millis(100), Duration::from_secs(10))
        })
    }

    /// The deadline from [`poll_timeout`](Session::poll_timeout) was reached. Early calls do nothing.
    /// [`poll_timeout`](Session::poll_timeout)'s example shows both (a ping, then a read timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        if let Some(deadline) = self.closing {
            if now >= deadline {
                self.finish_close(now);
                return;
            }
        }
        match self.link {
            Link::Idle {
                next: Some((host, at)),
            } if now >= at => self.connect(host, now),
            Link::Connecting { deadline, .. } if now >= deadline => {
                self.attempt_failed(now, DisconnectReason::ConnectTimeout, true);
            }
            Link::Handshaking {
                deadline, short, ..
            } if now >= deadline => {
                self.unanswered_handshakes = self.unanswered_handshakes.saturating_add(1);
                let reason = if short {
                    DisconnectReason::HandshakeTimeout
                } else {
                    DisconnectReason::ConnectTimeout
                };
                self.attempt_failed(now, reason, true);
            }
            Link::Up { .. } => {
                if now >= later(self.last_recv, self.read_timeout()) {
                    self.drop_link(now, DisconnectReason::ReadTimeout, true);
                } else if let Some(rt) = self.config.request_timeout {
                    if let Some(front) = self.inflight.front() {
                        if now >= later(front.sent_at, rt) {
                            if let Some(f) = self.inflight.pop_front() {
                                self.complete(f, Err(ZkError::Timeout));
                            }
                            self.drop_link(now, DisconnectReason::RequestTimeout, true);
                        }
                    }
                }
                if matches!(self.link, Link::Up { .. })
                    && !self.ping_inflight
                    && now >= self.next_ping()
                {
                    self.send_frame(XID_PING, &Request::Ping);
                    self.ping_inflight = true;
                }
            }
            _ => {}
        }
        if self.state == SessionState::Suspended && self.config.client_side_expiry {
            if let (Some(t), Some(last)) = (self.negotiated, self.last_contact) {
                if now >= later(last, t) {
                    self.expire(now);
                    return;
                }
            }
        }
        self.probe_timeout(now);
    }

    /// When [`handle_timeout`](Session::handle_timeout) must next be called.
    /// Read it last, after draining the other outputs.
    ///
    /// Why: the adapter's only timer; sleep until this instant (or until input
    /// comes), then call `handle_timeout`. Here an idle connected session pings
    /// after the ping interval, half the [`read_timeout`](Session::read_timeout).
    /// The server's replies are written by hand with the crate's records.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// use bytes::BytesMut;
    /// use zk_proto::error::ErrorCode;
    /// use zk_proto::frame::{write_frame, FrameDecoder, DEFAULT_MAX_FRAME};
    /// use zk_proto::jute::{from_bytes, Encode};
    /// use zk_proto::types::OpCode;
    /// use zk_proto::{
    ///     Action, Config, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, Session,
    ///     SessionState,
    /// };
    ///
    /// let t0 = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1:2181").unwrap(), t0);
    /// let Some(Action::Connect { conn, .. }) = session.poll_action() else { panic!() };
    /// // Until connected, the timer is the connect timeout.
    /// assert_eq!(session.poll_timeout(), Some(t0 + session.connect_timeout()));
    ///
    /// session.handle_connected(conn, t0);
    /// let hello = session.poll_transmit(t0).unwrap().data;
    /// let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME);
    /// frames.push(&hello);
    /// let req: ConnectRequest = from_bytes(frames.next_frame().unwrap().unwrap()).unwrap();
    /// assert_eq!(req.timeout, 10_000);
    ///
    /// // The server grants the 10 s asked for.
    /// let t1 = t0 + Duration::from_millis(5);
    /// let mut reply = BytesMut::new();
    /// let granted = ConnectResponse {
    ///     protocol_version: 0,
    ///     timeout: 10_000,
    ///     session_id: 0x1234,
    ///     passwd: vec![7; 16].into(),
    ///     read_only: Some(false),
    /// };
    /// write_frame(&mut reply, |b| granted.encode(b));
    /// session.handle_input(conn, &reply, t1);
    /// assert_eq!(session.state(), SessionState::Connected);
    /// while session.poll_event().is_some() {}
    ///
    /// // Nothing to send: the next wake-up is the ping.
    /// let ping_at = session.poll_timeout().unwrap();
    /// assert_eq!(ping_at, t1 + session.read_timeout() / 2);
    /// session.handle_timeout(ping_at - Duration::from_millis(1)); // early: nothing
    /// assert!(session.poll_transmit(ping_at).is_none());
    /// session.handle_timeout(ping_at);
    /// let ping = session.poll_transmit(ping_at).unwrap().data;
    /// frames.push(&ping);
    /// let header: RequestHeader = from_bytes(frames.next_frame().unwrap().unwrap()).unwrap();
    /// assert_eq!((header.xid, header.op), (-2, OpCode::Ping));
    ///
    /// // The ping's reply keeps the connection alive; the next ping is an interval on.
    /// let t2 = ping_at + Duration::from_millis(5);
    /// let mut pong = BytesMut::new();
    /// write_frame(&mut pong, |b| ReplyHeader { xid: -2, zxid: 0, err: ErrorCode::Ok }.encode(b));
    /// session.handle_input(conn, &pong, t2);
    /// assert_eq!(session.poll_timeout(), Some(ping_at + session.read_timeout() / 2));
    ///
    /// // Silence past the read timeout: the connection is dropped, the session suspended.
    /// let dead = t2 + session.read_timeout();
    /// session.handle_timeout(dead);
    /// assert_eq!(session.poll_action(), Some(Action::Disconnect { conn }));
    /// assert_eq!(session.state(), SessionState::Suspended);
    /// ```
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if let Some(d) = self.closing {
            at(d);
        }
        match self.link {
            Link::Idle {
                next: Some((_, when)),
            } => at(when),
            Link::Connecting { deadline, .. } | Link::Handshaking { deadline, .. } => at(deadline),
            Link::Up { .. } => {
                at(later(self.last_recv, self.read_timeout()));
                if !self.ping_inflight {
                    at(self.next_ping());
                }
                if let (Some(rt), Some(f)) = (self.config.request_timeout, self.inflight.front()) {
                    at(later(f.sent_at, rt));
                }
            }
            Link::Idle { next: None } => {}
        }
        if self.state == SessionState::Suspended && self.config.client_side_expiry {
            if let (Some(n), Some(last)) = (self.negotiated, self.last_contact) {
                at(later(last, n));
            }
        }
        if let Some(p) = &self.probe {
            match p.conn {
                Some((_, _, deadline)) => at(deadline),
                None => at(p.next_at),
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;
    use crate::session::test_peer::{connect_response, hosts, reply, sent, t0, Peer};
    use crate::session::{Action, Session, SessionState};
    use crate::types::OpCode;

    /// A session timeout too long to double (a config asking for "forever") still
    /// gives a read timeout of two thirds of it, without overflowing.
    #[test]
    fn read_timeout_is_two_thirds_even_of_a_huge_session_timeout() {
        let mut c = Config::new(hosts(1));
        c.session_timeout = Duration::MAX;
        let s = Session::new(c, t0());
        assert_eq!(s.read_timeout(), Duration::MAX / 3 * 2);

        let mut c = Config::new(hosts(1));
        c.session_timeout = Duration::from_secs(30);
        assert_eq!(
            Session::new(c, t0()).read_timeout(),
            Duration::from_secs(20)
        );
    }

    /// A timer call before the connect timeout (an adapter waking early) keeps
    /// the attempt: the transport's connect, when it comes, starts the handshake.
    #[test]
    fn an_early_timer_call_keeps_the_connect() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        let Some(Action::Connect { conn, .. }) = s.poll_action() else {
            panic!("no connect");
        };
        let early = now + s.connect_timeout() - Duration::from_millis(1);
        s.handle_timeout(early);
        assert_eq!(s.poll_action(), None, "the attempt goes on");
        s.handle_connected(conn, early);
        assert_eq!(s.poll_transmit(early).map(|t| t.conn), Some(conn));
    }

    /// A timer call before the handshake's deadline (an adapter waking early)
    /// gives nothing up: the handshake goes on and its reply connects.
    #[test]
    fn an_early_timer_call_keeps_the_handshake() {
        let now = t0();
        let mut s = Session::new(Config::new(hosts(1)), now);
        let Some(Action::Connect { conn, .. }) = s.poll_action() else {
            panic!("no connect");
        };
        s.handle_connected(conn, now);
        let deadline = s.poll_timeout().expect("the handshake's deadline");
        let early = deadline - Duration::from_millis(1);
        s.handle_timeout(early);
        assert_eq!(s.poll_action(), None, "the attempt goes on");
        assert!(s.poll_transmit(early).is_some(), "the ConnectRequest");
        s.handle_input(conn, &connect_response(false), early);
        assert_eq!(s.state(), SessionState::Connected);
    }

    /// After a read timeout, the new connection pings at its interval like the
    /// first (no ping is left counted as in flight from the dead one).
    #[test]
    fn the_next_connection_pings_after_a_read_timeout() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let t = p.now + p.s.read_timeout();
        p.s.handle_timeout(t);
        assert_eq!(p.s.poll_action(), Some(Action::Disconnect { conn: p.conn }));
        let Some(Action::Connect { conn, .. }) = p.s.poll_action() else {
            panic!("no reconnect");
        };
        p.s.handle_connected(conn, t);
        assert!(p.s.poll_transmit(t).is_some(), "the ConnectRequest");
        p.s.handle_input(conn, &connect_response(false), t);
        while p.s.poll_transmit(t).is_some() {}
        // 30 s negotiated: a read timeout of 20 s, a ping every 10 s.
        let ping_at = t + Duration::from_secs(10);
        assert_eq!(p.s.poll_timeout(), Some(ping_at));
        p.s.handle_timeout(ping_at);
        let ping = p.s.poll_transmit(ping_at).expect("a ping");
        assert_eq!(sent(&ping.data), [(-2, OpCode::Ping)]);
    }

    /// A timer call before a backoff wait is over (an adapter waking early)
    /// does not connect: the next attempt waits for its time.
    #[test]
    fn an_early_timer_call_keeps_the_backoff() {
        use crate::config::Backoff;
        let now = t0();
        let mut c = Config::new(hosts(1));
        c.backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        let mut s = Session::new(c, now);
        let Some(Action::Connect { conn, .. }) = s.poll_action() else {
            panic!("no connect");
        };
        s.handle_connect_failed(conn, now);
        let at = now + Duration::from_secs(1);
        assert_eq!(s.poll_timeout(), Some(at));
        s.handle_timeout(at - Duration::from_millis(1));
        assert_eq!(s.poll_action(), None, "no attempt before its time");
        s.handle_timeout(at);
        assert!(matches!(s.poll_action(), Some(Action::Connect { .. })));
    }

    /// `last_received` is when the live connection last brought bytes: the
    /// handshake's answer, then each reply (a ping's too); none once the
    /// connection is given up, a read timeout after it.
    #[test]
    fn last_received_follows_the_connection() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        assert_eq!(p.s.last_received(), Some(p.now));
        // 30 s negotiated: a ping every 10 s, answered a second later.
        let ping_at = p.now + Duration::from_secs(10);
        p.s.handle_timeout(ping_at);
        let ping = p.s.poll_transmit(ping_at).expect("a ping");
        assert_eq!(sent(&ping.data), [(-2, OpCode::Ping)]);
        assert_eq!(p.s.last_received(), Some(p.now), "a send is not a receipt");
        let pong_at = ping_at + Duration::from_secs(1);
        p.s.handle_input(p.conn, &reply(-2, |_| {}), pong_at);
        assert_eq!(p.s.last_received(), Some(pong_at));
        let silent = pong_at + p.s.read_timeout();
        p.s.handle_timeout(silent);
        assert_eq!(p.s.poll_action(), Some(Action::Disconnect { conn: p.conn }));
        assert_eq!(p.s.last_received(), None);
    }

    /// One ping at a time: while a ping is unanswered, a timer call past the
    /// next ping time sends no other.
    #[test]
    fn one_ping_at_a_time() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        // 30 s negotiated: a ping every 10 s, a read timeout of 20 s.
        let ping_at = p.now + Duration::from_secs(10);
        let later = ping_at + Duration::from_secs(1);
        p.s.handle_timeout(ping_at);
        p.s.handle_timeout(later);
        let t = p.s.poll_transmit(later).expect("a ping");
        assert_eq!(sent(&t.data), [(-2, OpCode::Ping)]);
    }
}
