//! Requests going out: `submit` and its variants (local checks, the chroot, the
//! watch intent), xids, the outbound buffer and its bound, the queue while
//! disconnected, and `poll_transmit`.

use std::time::Instant;

use crate::config::QueuePolicy;
use crate::error::{UsageError, ZkError};
use crate::frame::write_frame;
use crate::jute::Encode;
use crate::ops::{Request, Response};
use crate::path::Chroot;
use crate::records::{MultiOp, PathWatchRequest, RequestHeader};

use super::{
    paths::prefix_paths, Event, InFlight, Intent, Link, Origin, Queued, RemovalReason, RequestId,
    Session, Submitted, Transmit, CONFIG_NODE, LOCAL_XID,
};

impl Session {
    /// Sends a request (or queues it while disconnected). Paths are client paths:
    /// they are validated and the chroot is applied here, to every path (including
    /// `/zookeeper/config`: see [`submit_get_config`](Session::submit_get_config)).
    ///
    /// Fails with [`UsageError::OutboundFull`] while more than
    /// [`Config::max_outbound`](crate::Config::max_outbound) bytes wait to be taken by
    /// [`poll_transmit`](Session::poll_transmit).
    ///
    /// Why: a caller keeps the returned id to match its [`Event::Completed`], and
    /// the watcher id to match its [`Event::Watch`]; misuse fails here, before any
    /// byte is sent.
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// use zk_proto::{Config, PathWatchRequest, Request, Session, UsageError};
    ///
    /// let now = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut session = Session::new(Config::from_connect_string("zk1:2181/app").unwrap(), now);
    ///
    /// // Not connected yet: the request waits (QueuePolicy::Queue, the default).
    /// let read = Request::GetData(PathWatchRequest { path: "/config".into(), watch: true });
    /// let sent = session.submit(read, now).unwrap();
    /// assert!(sent.watcher.is_some());
    /// assert_eq!(session.outstanding(), 1);
    ///
    /// // Ids are unique for the session's life.
    /// let again = Request::GetData(PathWatchRequest { path: "/config".into(), watch: false });
    /// let second = session.submit(again, now).unwrap();
    /// assert_ne!(second.id, sent.id);
    /// assert_eq!(second.watcher, None);
    ///
    /// // A bad path is refused locally, with the rule it breaks.
    /// let bad = Request::GetData(PathWatchRequest { path: "config".into(), watch: false });
    /// match session.submit(bad, now) {
    ///     Err(UsageError::InvalidPath { path, reason }) => {
    ///         assert_eq!(path, "config");
    ///         assert_eq!(reason, "path must start with /");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// // Pings, auth and closeSession belong to the session itself.
    /// assert!(matches!(
    ///     session.submit(Request::Ping, now),
    ///     Err(UsageError::InvalidRequest(_))
    /// ));
    /// assert_eq!(session.outstanding(), 2);
    /// ```
    pub fn submit(&mut self, req: Request, now: Instant) -> Result<Submitted, UsageError> {
        self.submit_inner(req, true, now)
    }

    /// getConfig: reads (and with `watch`, watches) the ensemble configuration,
    /// [`CONFIG_NODE`] (`/zookeeper/config`), which lives outside any chroot: the
    /// chroot is *not* applied. The reply is a [`Response::GetData`]; watch events
    /// carry the path `/zookeeper/config`. Errors as [`submit`](Session::submit).
    ///
    /// Why: to follow ensemble reconfigurations (and then
    /// [`update_hosts`](Session::update_hosts)) from a client that has a chroot.
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::path::Chroot;
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::{Response, SessionState};
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let mut config = net.config(&[0]);
    /// config.chroot = Chroot::new("/app").unwrap();
    /// let ci = net.add_client(config);
    /// net.run_until(|n| n.state(ci) == SessionState::Connected, Duration::from_secs(5));
    ///
    /// let read = net.with_session(ci, |s, now| s.submit_get_config(true, now)).unwrap();
    /// assert!(read.watcher.is_some());
    /// net.run_until(|n| n.client(ci).completion(read.id).is_some(), Duration::from_secs(5));
    /// // Read from /zookeeper/config itself, not /app/zookeeper/config (which does not exist).
    /// assert!(matches!(net.client(ci).completion(read.id), Some(Ok(Response::GetData(_)))));
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn submit_get_config(
        &mut self,
        watch: bool,
        now: Instant,
    ) -> Result<Submitted, UsageError> {
        let req = Request::GetData(PathWatchRequest {
            path: CONFIG_NODE.to_owned(),
            watch,
        });
        self.submit_unchrooted(req, now)
    }

    /// Like [`submit`](Session::submit), but the request's paths are server paths:
    /// validated, the chroot *not* applied, and the reply's paths (created names,
    /// ...) not stripped. For nodes outside the chroot, such as creating the chroot
    /// node itself. Watch events are reported as usual (server path with the
    /// chroot stripped when it is under the chroot).
    ///
    /// Why: a client with a chroot cannot create its own chroot node through
    /// `submit` (that would create `/app/app`); this can.
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::path::Chroot;
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::{Acl, CreateRequest, Request, Response};
    ///
    /// let create = |path: &str| {
    ///     Request::Create(CreateRequest {
    ///         path: path.into(),
    ///         data: None,
    ///         acl: Acl::open_unsafe(),
    ///         flags: 0,
    ///     })
    /// };
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let mut config = net.config(&[0]);
    /// config.chroot = Chroot::new("/app").unwrap();
    /// let ci = net.add_client(config);
    ///
    /// let root = net.with_session(ci, |s, now| s.submit_unchrooted(create("/app"), now)).unwrap();
    /// net.run_until(|n| n.client(ci).completion(root.id).is_some(), Duration::from_secs(5));
    /// let Some(Ok(Response::Create(r))) = net.client(ci).completion(root.id) else { panic!() };
    /// assert_eq!(r.path, "/app"); // a server path, not stripped
    ///
    /// // From now on, client paths live under it.
    /// let Some(Ok(Response::Create(r))) = net.call(ci, create("/x"), Duration::from_secs(5)) else {
    ///     panic!()
    /// };
    /// assert_eq!(r.path, "/x");
    /// assert!(net.cluster.get("/app/x").is_some());
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn submit_unchrooted(
        &mut self,
        req: Request,
        now: Instant,
    ) -> Result<Submitted, UsageError> {
        self.submit_inner(req, false, now)
    }

    fn submit_inner(
        &mut self,
        mut req: Request,
        chroot: bool,
        now: Instant,
    ) -> Result<Submitted, UsageError> {
        let now = self.clock(now);
        if let Some(e) = self.terminal_error() {
            return Err(UsageError::SessionTerminated(e));
        }
        match &req {
            Request::Auth(_)
            | Request::Ping
            | Request::CloseSession
            | Request::SetWatches(_)
            | Request::SetWatches2(_) => {
                return Err(UsageError::InvalidRequest(
                    "managed by the session: use add_auth / close",
                ))
            }
            Request::Check(_) => {
                return Err(UsageError::InvalidRequest(
                    "check is only valid inside a multi",
                ))
            }
            Request::Multi(m) if m.ops.iter().any(MultiOp::is_read) => {
                return Err(UsageError::InvalidRequest("reads belong in multi_read"))
            }
            Request::MultiRead(m) if m.ops.iter().any(|o| !o.is_read()) => {
                return Err(UsageError::InvalidRequest("writes belong in multi"))
            }
            Request::CreateTtl(r) if !(1..(1i64 << 40)).contains(&r.ttl) => {
                return Err(UsageError::InvalidRequest("TTL must be 1 ms to 2^40-1 ms"))
            }
            _ => {}
        }
        if chroot {
            prefix_paths(&mut req, &self.config.chroot)?;
        } else {
            prefix_paths(&mut req, &Chroot::none())?;
        }
        if matches!(self.link, Link::Up { .. }) && self.tx.len() > self.config.max_outbound {
            return Err(UsageError::OutboundFull);
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let watch = self.intent_for(&req);
        let watcher = watch.as_ref().map(|w| w.id);
        if is_empty_multi(&req) && self.inflight.is_empty() && self.queued.is_empty() {
            // Nothing to ask the server, and nothing ahead of it to wait for.
            self.events.push_back(Event::Completed {
                id,
                result: Ok(Response::Multi(Default::default())),
            });
            return Ok(Submitted { id, watcher });
        }
        if self.ready() {
            self.send_user(id, req, watch, !chroot, false, now);
        } else {
            match self.config.queue_policy {
                QueuePolicy::FailFast => {
                    self.events.push_back(Event::Completed {
                        id,
                        result: Err(ZkError::NotConnected),
                    });
                    if let Some(w) = watch {
                        self.events.push_back(Event::WatcherRemoved {
                            watcher: w.id,
                            reason: RemovalReason::NotSet(ZkError::NotConnected),
                        });
                    }
                }
                QueuePolicy::Queue => {
                    if self.queued.len() >= self.config.queue_limit {
                        return Err(UsageError::QueueFull);
                    }
                    self.queued.push_back(Queued {
                        id,
                        req,
                        watch,
                        unchrooted: !chroot,
                        traced: false,
                    });
                }
            }
        }
        Ok(Submitted { id, watcher })
    }

    /// Whether requests go out now: connected, and no SASL exchange running.
    pub(super) fn ready(&self) -> bool {
        matches!(self.link, Link::Up { .. }) && self.sasl.is_none() && self.closing.is_none()
    }

    /// Next bytes to write. Should be called after every input and command; `now`
    /// stamps the send time, which the ping timer counts from.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let now = self.clock(now);
        if let Some(t) = self.side_tx.pop_front() {
            return Some(t);
        }
        if self.tx.is_empty() {
            return None;
        }
        match self.link {
            Link::Handshaking { conn, .. } | Link::Up { conn, .. } => {
                self.last_send = now;
                Some(Transmit {
                    conn,
                    data: self.tx.split().freeze(),
                })
            }
            _ => {
                self.tx.clear();
                None
            }
        }
    }

    /// Whether [`poll_transmit`](Session::poll_transmit) has bytes to hand out.
    pub fn wants_transmit(&self) -> bool {
        !self.side_tx.is_empty() || !self.tx.is_empty()
    }

    /// Bytes the session holds for the transport that
    /// [`poll_transmit`](Session::poll_transmit) has not handed out yet.
    pub fn outbound_bytes(&self) -> usize {
        self.tx.len() + self.side_tx.iter().map(|t| t.data.len()).sum::<usize>()
    }

    /// Asks for the wire details of a request just submitted (its xid and
    /// its request and reply sizes), reported as [`Event::RequestTraced`] before
    /// its completion; `false` if `id` is not the latest request still waiting or
    /// in flight (it completed at once, or others were submitted since).
    ///
    /// Why: a client's per-request trace span records them, and only requests
    /// someone traces pay for the extra event.
    pub fn trace_request(&mut self, id: RequestId) -> bool {
        if let Some(q) = self.queued.back_mut().filter(|q| q.id == id) {
            q.traced = true;
            return true;
        }
        match self.inflight.back_mut() {
            Some(f) if f.origin == Origin::User(id) => {
                f.traced = true;
                true
            }
            _ => false,
        }
    }

    pub(super) fn next_xid(&mut self) -> i32 {
        self.xid = if self.xid >= i32::MAX - 1 {
            1
        } else {
            self.xid + 1
        };
        self.xid
    }

    pub(super) fn send_frame(&mut self, xid: i32, req: &Request) {
        write_frame(&mut self.tx, |b| {
            RequestHeader {
                xid,
                op: req.opcode(),
            }
            .encode(b);
            req.encode_body(b);
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_user(
        &mut self,
        id: RequestId,
        req: Request,
        watch: Option<Intent>,
        unchrooted: bool,
        traced: bool,
        now: Instant,
    ) {
        // An empty multi is answered locally, but in its turn: it waits in the
        // in-flight queue (xid 0, never sent) behind the requests before it.
        let mut request_bytes = 0;
        let xid = if is_empty_multi(&req) {
            if self.inflight.is_empty() {
                self.events.push_back(Event::Completed {
                    id,
                    result: Ok(Response::Multi(Default::default())),
                });
                return;
            }
            LOCAL_XID
        } else {
            let xid = self.next_xid();
            let before = self.tx.len();
            self.send_frame(xid, &req);
            request_bytes = u32::try_from(self.tx.len() - before).unwrap_or(u32::MAX);
            xid
        };
        let remove_type = match &req {
            Request::RemoveWatches(r) => Some((r.path.clone(), r.watcher_type)),
            _ => None,
        };
        self.inflight.push_back(InFlight {
            xid,
            op: req.opcode(),
            origin: Origin::User(id),
            watch,
            sent_at: now,
            remove_type,
            unchrooted,
            traced,
            request_bytes,
        });
    }

    /// Sends a packet the session makes itself (the watch restore's and
    /// cancellations' requests, SASL tokens, the close): it takes the next xid and
    /// is tracked in flight like a caller's request, but its reply goes to `origin`,
    /// never to a caller.
    pub(super) fn send_own(&mut self, req: Request, origin: Origin, now: Instant) {
        let xid = self.next_xid();
        self.send_frame(xid, &req);
        self.inflight.push_back(InFlight {
            xid,
            op: req.opcode(),
            origin,
            watch: None,
            sent_at: now,
            remove_type: None,
            unchrooted: false,
            traced: false,
            request_bytes: 0,
        });
    }
}

fn is_empty_multi(req: &Request) -> bool {
    matches!(req, Request::Multi(m) | Request::MultiRead(m) if m.ops.is_empty())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::session::test_peer::{get_data, hosts, Peer};

    /// `wants_transmit` says whether bytes wait for `poll_transmit` (adapters skip
    /// the write path when it says no).
    #[test]
    fn wants_transmit_says_whether_bytes_wait() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        assert!(!p.s.wants_transmit());
        p.s.submit(get_data("/a"), p.now).unwrap();
        assert!(p.s.wants_transmit());
        assert_eq!(p.transmit().len(), 1);
        assert!(!p.s.wants_transmit());
    }

    /// A multi (a transaction of writes) holding a read is refused before
    /// anything is sent: reads go in a multiRead.
    #[test]
    fn a_multi_with_a_read_is_refused() {
        use crate::error::UsageError;
        use crate::ops::Request;
        use crate::records::{MultiOp, MultiRequest, PathWatchRequest};
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let read = MultiOp::GetData(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        });
        let multi = Request::Multi(MultiRequest { ops: vec![read] });
        assert!(matches!(
            p.s.submit(multi, p.now),
            Err(UsageError::InvalidRequest(_))
        ));
        assert_eq!(p.s.outstanding(), 0);
        assert_eq!(p.transmit(), []);
    }

    /// A multiRead (a batch of reads) holding a write is refused before
    /// anything is sent: writes go in a multi.
    #[test]
    fn a_multi_read_with_a_write_is_refused() {
        use crate::error::UsageError;
        use crate::ops::Request;
        use crate::records::{DeleteRequest, MultiOp, MultiRequest};
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let write = MultiOp::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        });
        let multi = Request::MultiRead(MultiRequest { ops: vec![write] });
        assert_eq!(
            p.s.submit(multi, p.now).err(),
            Some(UsageError::InvalidRequest("writes belong in multi"))
        );
        assert_eq!(p.s.outstanding(), 0);
        assert_eq!(p.transmit(), []);
    }

    /// `outbound_bytes` counts the side connection's bytes too: a read-only
    /// probe's `isro` waits beside the session's own frames.
    #[test]
    fn outbound_bytes_counts_the_probes_bytes_too() {
        let (mut p, probe, t) = Peer::probing();
        p.s.handle_connected(probe, t);
        assert_eq!(p.s.outbound_bytes(), 4, "isro");
        p.s.submit(get_data("/a"), t).unwrap();
        let waiting = p.s.outbound_bytes();
        let handed: usize = std::iter::from_fn(|| p.s.poll_transmit(t))
            .map(|t| t.data.len())
            .sum();
        assert_eq!(waiting, handed);
        assert!(handed > 4);
        assert_eq!(p.s.outbound_bytes(), 0);
    }

    /// `outbound_bytes` is what waits for `poll_transmit`: nothing when idle, a
    /// request's whole frame once submitted, nothing once it was handed out.
    #[test]
    fn outbound_bytes_counts_what_waits_for_transmit() {
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        assert_eq!(p.s.outbound_bytes(), 0);
        p.s.submit(get_data("/a"), p.now).unwrap();
        let waiting = p.s.outbound_bytes();
        let t = p.s.poll_transmit(p.now).expect("the getData");
        assert_eq!(waiting, t.data.len());
        assert_eq!(p.s.outbound_bytes(), 0);
    }

    /// The outbound bound refuses a request only while more than `max_outbound`
    /// bytes wait: with exactly that many waiting, one more is still taken.
    #[test]
    fn outbound_full_only_past_the_bound() {
        use crate::error::UsageError;
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        p.s.submit(get_data("/a"), p.now).unwrap();
        p.s.config.max_outbound = p.s.outbound_bytes();
        assert!(p.s.submit(get_data("/a"), p.now).is_ok(), "at the bound");
        assert!(matches!(
            p.s.submit(get_data("/a"), p.now),
            Err(UsageError::OutboundFull)
        ));
        assert_eq!(p.transmit().len(), 2);
    }

    /// A TTL must be 1 ms to 2^40 - 1 ms (the server's bound): outside it a
    /// createTTL is refused before anything is sent; at both ends it goes out.
    #[test]
    fn a_ttl_out_of_range_is_refused() {
        use crate::error::UsageError;
        use crate::ops::Request;
        use crate::records::{Acl, CreateTtlRequest};
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let create = |ttl| {
            Request::CreateTtl(CreateTtlRequest {
                path: "/t".into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 5,
                ttl,
            })
        };
        for ttl in [0, -1, 1 << 40] {
            assert!(
                matches!(
                    p.s.submit(create(ttl), p.now),
                    Err(UsageError::InvalidRequest(_))
                ),
                "{ttl}"
            );
        }
        for ttl in [1, (1 << 40) - 1] {
            assert!(p.s.submit(create(ttl), p.now).is_ok(), "{ttl}");
        }
        assert_eq!(p.transmit().len(), 2);
    }

    /// An empty multi with nothing ahead of it completes at once, without a
    /// byte sent.
    #[test]
    fn an_empty_multi_is_answered_locally() {
        use crate::ops::{Request, Response};
        use crate::records::MultiRequest;
        use crate::session::test_peer::events;
        use crate::session::Event;
        let mut p = Peer::connected(Config::new(hosts(1)), false);
        let id = p.s.submit(Request::Multi(MultiRequest::default()), p.now);
        let id = id.unwrap().id;
        assert_eq!(
            events(&mut p.s),
            [Event::Completed {
                id,
                result: Ok(Response::Multi(Default::default())),
            }]
        );
        assert_eq!(p.transmit(), []);
    }
}
