//! Credentials and SASL: `add_auth`, the credentials replayed on every
//! connection, the auth reply (AuthFailed ends the session), and the SASL exchange
//! that runs on a connection before anything else is sent.

use std::time::Instant;

use bytes::Bytes;

use crate::error::{ErrorCode, UsageError, ZkError};
use crate::jute::{Decode, Reader};
use crate::ops::{Request, Response};
use crate::records::{AuthPacket, SaslPacket};

use super::{Event, Origin, RequestId, Session, SessionState, XID_AUTH};

/// One distinct (scheme, auth) pair: sent once per connection however often it was added.
#[derive(Debug)]
pub(super) struct Credential {
    pub(super) scheme: String,
    pub(super) auth: Bytes,
    /// `add_auth` calls made while disconnected, completed by the next send's reply.
    pub(super) waiting: Vec<RequestId>,
}

/// A SASL exchange running on the current connection, before anything else is sent.
#[derive(Debug)]
pub(super) struct SaslRun {
    pub(super) exchange: crate::sasl::SaslExchange,
    /// Whether the handshake said the server is read-only (applied once SASL is done).
    pub(super) read_only: bool,
}

impl Session {
    /// Adds credentials: sent now if connected, and again after every reconnect.
    /// The returned request completes when the server accepts them (or the
    /// session becomes AuthFailed). Adding a (scheme, auth) pair already added
    /// keeps one credential: it is still sent now if connected (and its request
    /// completes once, as usual), but replayed only once per reconnect.
    ///
    /// Why: `digest` credentials (kazoo's `add_auth`, the Java client's
    /// `addAuthInfo`) give the connection the identity that ACLs check.
    ///
    /// ```
    /// # #[cfg(feature = "testing")]
    /// # fn main() {
    /// use std::time::{Duration, Instant};
    ///
    /// use zk_proto::testing::net::SimNet;
    /// use zk_proto::{Request, Response};
    ///
    /// let start = Instant::now(); // clock-exception: a doc example needs a start instant
    /// let mut net = SimNet::new(1, 1, start);
    /// let config = net.config(&[0]);
    /// let ci = net.add_client(config);
    /// // Added before the connection is up: sent once it is, and after every reconnect.
    /// let id = net.with_session(ci, |s, now| s.add_auth("digest", "alice:secret".into(), now)).unwrap();
    /// net.run_until(|n| n.client(ci).completion(id).is_some(), Duration::from_secs(5));
    /// assert_eq!(net.client(ci).completion(id), Some(&Ok(Response::Empty)));
    ///
    /// let Some(Ok(Response::WhoAmI(me))) = net.call(ci, Request::WhoAmI, Duration::from_secs(5)) else {
    ///     panic!()
    /// };
    /// assert!(me.client_info.iter().any(|c| c.auth_scheme == "digest" && c.user == "alice"));
    /// # }
    /// # #[cfg(not(feature = "testing"))]
    /// # fn main() {}
    /// ```
    pub fn add_auth(
        &mut self,
        scheme: &str,
        auth: Bytes,
        now: Instant,
    ) -> Result<RequestId, UsageError> {
        self.clock(now);
        if let Some(e) = self.terminal_error() {
            return Err(UsageError::SessionTerminated(e));
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let up = self.ready();
        let idx = match self
            .creds
            .iter()
            .position(|c| c.scheme == scheme && c.auth == auth)
        {
            Some(i) => i,
            None => {
                self.creds.push(Credential {
                    scheme: scheme.to_owned(),
                    auth: auth.clone(),
                    waiting: Vec::new(),
                });
                self.creds.len() - 1
            }
        };
        if !up {
            self.creds[idx].waiting.push(id);
        } else {
            self.send_frame(
                XID_AUTH,
                &Request::Auth(AuthPacket {
                    auth_type: 0,
                    scheme: scheme.to_owned(),
                    auth,
                }),
            );
            self.auth_inflight.push_back(vec![id]);
        }
        Ok(id)
    }

    /// Sends one SASL token (a normal xid; the server answers it at once, and
    /// nothing else is outstanding meanwhile).
    pub(super) fn send_sasl(&mut self, token: Bytes, now: Instant) {
        self.send_own(Request::Sasl(SaslPacket { token }), Origin::Sasl, now);
    }

    /// A SASL reply: the next token, the end of the exchange, or its failure.
    pub(super) fn on_sasl_reply(&mut self, err: ErrorCode, r: &mut Reader, now: Instant) {
        let Some(run) = &mut self.sasl else {
            return;
        };
        let step = if !err.is_ok() {
            Err(format!(
                "the server refused SASL {} authentication ({err})",
                self.config.sasl.as_ref().map_or("", |c| c.mechanism_name())
            ))
        } else {
            match SaslPacket::decode(r) {
                Ok(p) => run.exchange.step(&p.token).map_err(|e| {
                    format!(
                        "SASL {}: {e}",
                        self.config.sasl.as_ref().map_or("", |c| c.mechanism_name())
                    )
                }),
                Err(e) => Err(format!("malformed SASL reply: {e}")),
            }
        };
        match step {
            Ok(Some(token)) => self.send_sasl(token, now),
            Ok(None) => {
                let read_only = run.read_only;
                self.sasl = None;
                self.session_ready(read_only, now);
            }
            Err(reason) => {
                self.sasl = None;
                let at = self.current_host().map(|h| h.to_string());
                self.events.push_back(Event::SaslFailed {
                    reason: format!("{}: {reason}", at.unwrap_or_default()),
                });
                self.terminate(SessionState::AuthFailed, ZkError::AuthFailed, now);
            }
        }
    }

    /// Sends every credential again on a new connection (once per distinct pair);
    /// each reply completes the `add_auth` calls that waited for it.
    pub(super) fn replay_auth(&mut self) {
        for i in 0..self.creds.len() {
            let c = &mut self.creds[i];
            let waiting = std::mem::take(&mut c.waiting);
            let req = Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: c.scheme.clone(),
                auth: c.auth.clone(),
            });
            self.send_frame(XID_AUTH, &req);
            self.auth_inflight.push_back(waiting);
        }
    }

    /// The reply to an auth packet: it completes the `add_auth` calls that waited
    /// for that packet; AuthFailed ends the session.
    pub(super) fn on_auth_reply(&mut self, err: ErrorCode, now: Instant) {
        let waiting = self.auth_inflight.pop_front().unwrap_or_default();
        if err == ErrorCode::AuthFailed {
            for id in waiting {
                self.events.push_back(Event::Completed {
                    id,
                    result: Err(ZkError::AuthFailed),
                });
            }
            self.terminate(SessionState::AuthFailed, ZkError::AuthFailed, now);
        } else {
            let result = if err.is_ok() {
                Ok(Response::Empty)
            } else {
                Err(ZkError::Server(err))
            };
            for id in waiting {
                self.events.push_back(Event::Completed {
                    id,
                    result: result.clone(),
                });
            }
        }
    }
}
