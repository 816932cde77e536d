//! SASL in the session, against a hand-scripted DIGEST-MD5 server: the exchange runs right
//! after the handshake and before anything else (requests made meanwhile wait), the state
//! becomes Connected only when it succeeds, a refusal ends the session as AuthFailed with a
//! reason, and every reconnect runs it again.

use std::time::Duration;

use bytes::Bytes;
use md5::{Digest, Md5};
use std::sync::{Arc, Mutex};
use zk_proto::frame::FrameDecoder;
use zk_proto::jute::{Decode, Encode, Reader};
use zk_proto::records::{PathWatchRequest, ReplyHeader, RequestHeader, Stat};

use zk_proto::sasl::{SaslClient, SaslClientFactory, SaslConfig, SaslError, SaslTarget};
use zk_proto::{
    Action, Config, ConnId, ErrorCode, Event, OpCode, Request, SaslPacket, Session, SessionState,
};

#[path = "common/scripted.rs"]
mod scripted;
use scripted::{connect_response, frame, hosts, t0, Peer};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The server side of DIGEST-MD5 for user `bob` / `pw`, as the Java server computes it.
fn rspauth(response: &str, nonce: &str) -> String {
    let field = |k: &str| {
        let at = response.find(&format!("{k}=")).expect(k) + k.len() + 1;
        let rest = &response[at..];
        if let Some(q) = rest.strip_prefix('"') {
            q[..q.find('"').unwrap()].to_string()
        } else {
            rest.split(',').next().unwrap().to_string()
        }
    };
    let cnonce = field("cnonce");
    assert_eq!(field("digest-uri"), "zookeeper/zk-sasl-md5");
    assert_eq!(field("username"), "bob");
    assert_eq!(field("realm"), "zk-sasl-md5");
    assert_eq!(field("nonce"), nonce);
    let mut a1 = Md5::digest(b"bob:zk-sasl-md5:pw").to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = hex(&Md5::digest(&a1));
    let kd = |a2: &str| {
        let ha2 = hex(&Md5::digest(a2.as_bytes()));
        hex(&Md5::digest(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes(),
        ))
    };
    assert_eq!(
        field("response"),
        kd("AUTHENTICATE:zookeeper/zk-sasl-md5"),
        "the client's digest response"
    );
    kd(":zookeeper/zk-sasl-md5")
}

impl Peer {
    fn new() -> Peer {
        Peer::with(SaslConfig::digest_md5("bob", "pw"))
    }

    fn with(sasl: SaslConfig) -> Peer {
        let now = t0();
        let mut c = Config::new(hosts(1));
        c.sasl = Some(sasl);
        let s = Session::new(c, now);
        let mut p = Peer {
            s,
            conn: ConnId(0),
            now,
            events: Vec::new(),
        };
        p.handshake();
        p
    }

    /// Connects the transport and answers the ConnectRequest.
    fn handshake(&mut self) {
        let conn = loop {
            match self.s.poll_action() {
                Some(Action::Connect { conn, .. }) => break conn,
                Some(_) => {}
                None => {
                    self.now += Duration::from_secs(1);
                    self.s.handle_timeout(self.now);
                }
            }
        };
        self.conn = conn;
        self.s.handle_connected(conn, self.now);
        assert!(
            self.s.poll_transmit(self.now).is_some(),
            "the ConnectRequest"
        );
        let resp = connect_response(10_000);
        self.s.handle_input(conn, &resp, self.now);
    }

    /// The reason of the session's SaslFailed event.
    fn sasl_failed(&mut self) -> String {
        self.events()
            .iter()
            .find_map(|e| match e {
                Event::SaslFailed { reason } => Some(reason.clone()),
                _ => None,
            })
            .expect("a SaslFailed event")
    }

    /// Every request frame sent so far: (xid, op, the SASL token if it is one).
    fn sent(&mut self) -> Vec<(i32, OpCode, Option<Bytes>)> {
        let mut dec = FrameDecoder::new(1 << 20);
        while let Some(t) = self.s.poll_transmit(self.now) {
            dec.push(&t.data);
        }
        let mut out = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            let mut r = Reader::new(f);
            let h = RequestHeader::decode(&mut r).unwrap();
            let token = (h.op == OpCode::Sasl).then(|| SaslPacket::decode(&mut r).unwrap().token);
            out.push((h.xid, h.op, token));
        }
        out
    }

    fn sasl_reply(&mut self, xid: i32, err: ErrorCode, token: &[u8]) {
        let f = frame(|b| {
            ReplyHeader { xid, zxid: 0, err }.encode(b);
            SaslPacket {
                token: Bytes::copy_from_slice(token),
            }
            .encode(b);
        });
        self.s.handle_input(self.conn, &f, self.now);
    }

    /// Runs the whole exchange; returns the requests sent after it.
    fn authenticate(&mut self, nonce: &str) -> Vec<(i32, OpCode, Option<Bytes>)> {
        let sent = self.sent();
        assert_eq!(
            sent.len(),
            1,
            "only the first SASL token goes out: {sent:?}"
        );
        let (xid, op, token) = &sent[0];
        assert_eq!(*op, OpCode::Sasl);
        assert!(
            token.as_ref().unwrap().is_empty(),
            "DIGEST-MD5 starts with an empty token"
        );
        // Connecting (first connection) or Suspended (a reconnect): not connected yet.
        assert!(!self.s.state().is_connected(), "{:?}", self.s.state());
        let challenge = format!(
            "realm=\"zk-sasl-md5\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess,qop=\"auth\""
        );
        self.sasl_reply(*xid, ErrorCode::Ok, challenge.as_bytes());
        let sent = self.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (xid, op, token) = &sent[0];
        assert_eq!(*op, OpCode::Sasl);
        let response = String::from_utf8(token.as_ref().unwrap().to_vec()).unwrap();
        let rsp = rspauth(&response, nonce);
        assert!(!self.s.state().is_connected(), "{:?}", self.s.state());
        self.sasl_reply(*xid, ErrorCode::Ok, format!("rspauth={rsp}").as_bytes());
        self.sent()
    }
}

#[test]
fn sasl_runs_first_and_requests_wait_for_it() {
    let mut p = Peer::new();
    // A request made during the exchange waits for it.
    let id =
        p.s.submit(
            Request::GetData(PathWatchRequest {
                path: "/x".into(),
                watch: false,
            }),
            p.now,
        )
        .unwrap()
        .id;
    let after = p.authenticate("nonce-1");
    assert_eq!(p.s.state(), SessionState::Connected);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].1, OpCode::GetData);
    // Its reply completes it.
    let reply = frame(|b| {
        ReplyHeader {
            xid: after[0].0,
            zxid: 5,
            err: ErrorCode::Ok,
        }
        .encode(b);
        Bytes::from_static(b"v").encode(b);
        Stat::default().encode(b);
    });
    p.s.handle_input(p.conn, &reply, p.now);
    assert!(p.any_event(|e| matches!(e, Event::Completed { id: i, result: Ok(_) } if *i == id)));
    // A reconnect runs the exchange again before anything else.
    p.s.handle_disconnected(p.conn, p.now);
    p.handshake();
    assert_ne!(p.s.state(), SessionState::Connected);
    let after = p.authenticate("nonce-2");
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(p.s.state(), SessionState::Connected);
}

#[test]
fn a_refusal_is_auth_failed_with_a_reason() {
    let mut p = Peer::new();
    let sent = p.sent();
    p.sasl_reply(sent[0].0, ErrorCode::AuthFailed, b"");
    assert_eq!(p.s.state(), SessionState::AuthFailed);
    let reason = p.sasl_failed();
    assert!(reason.contains("refused SASL DIGEST-MD5"), "{reason}");
}

#[test]
fn a_server_that_does_not_know_the_password_is_refused() {
    let mut p = Peer::new();
    let sent = p.sent();
    p.sasl_reply(
        sent[0].0,
        ErrorCode::Ok,
        b"realm=\"zk-sasl-md5\",nonce=\"n\",charset=utf-8,algorithm=md5-sess,qop=\"auth\"",
    );
    let sent = p.sent();
    p.sasl_reply(
        sent[0].0,
        ErrorCode::Ok,
        b"rspauth=0123456789abcdef0123456789abcdef",
    );
    assert_eq!(p.s.state(), SessionState::AuthFailed);
    assert!(p.any_event(
        |e| matches!(e, Event::SaslFailed { reason } if reason.contains("rspauth does not match"))
    ));
}

/// A plug-in mechanism scripted for the test: it records whom each connection
/// authenticates to, sends `hello <host>`, answers `ping` with `pong`, and is
/// done on `ok`. With `refuse_start` it cannot start (as GSSAPI without credentials).
#[derive(Debug, Default)]
struct Scripted {
    targets: Mutex<Vec<String>>,
    refuse_start: bool,
}

#[derive(Debug)]
struct ScriptedClient;

impl SaslClientFactory for Scripted {
    fn mechanism_name(&self) -> &'static str {
        "X-SCRIPTED"
    }
    fn start(&self, t: SaslTarget<'_>) -> Result<(Box<dyn SaslClient>, Bytes), SaslError> {
        if self.refuse_start {
            return Err("no credentials for the test principal".into());
        }
        self.targets
            .lock()
            .unwrap()
            .push(format!("{}/{}", t.service, t.host));
        Ok((
            Box::new(ScriptedClient),
            Bytes::from(format!("hello {}", t.host)),
        ))
    }
}

impl SaslClient for ScriptedClient {
    fn step(&mut self, challenge: &[u8]) -> Result<Option<Bytes>, SaslError> {
        match challenge {
            b"ping" => Ok(Some(Bytes::from_static(b"pong"))),
            b"ok" => Ok(None),
            other => Err(format!("unexpected {:?}", String::from_utf8_lossy(other)).into()),
        }
    }
}

#[test]
fn a_plug_in_mechanism_runs_on_every_connection_named_by_its_host() {
    let mech = Arc::new(Scripted::default());
    let mut p = Peer::with(SaslConfig::custom(mech.clone()));
    for round in 0..2 {
        let sent = p.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].2.as_deref(), Some(&b"hello h0"[..]));
        assert!(!p.s.state().is_connected());
        p.sasl_reply(sent[0].0, ErrorCode::Ok, b"ping");
        let sent = p.sent();
        assert_eq!(sent[0].2.as_deref(), Some(&b"pong"[..]));
        p.sasl_reply(sent[0].0, ErrorCode::Ok, b"ok");
        assert_eq!(p.s.state(), SessionState::Connected, "round {round}");
        // A reconnect starts a new client for the new connection.
        p.s.handle_disconnected(p.conn, p.now);
        p.handshake();
    }
    assert_eq!(
        *mech.targets.lock().unwrap(),
        vec!["zookeeper/h0".to_string(); 3],
        "the service and the connected host, once per connection"
    );
}

#[test]
fn a_plug_in_that_cannot_start_is_auth_failed_naming_host_and_cause() {
    let mech = Arc::new(Scripted {
        refuse_start: true,
        ..Scripted::default()
    });
    let mut p = Peer::with(SaslConfig::custom(mech));
    assert_eq!(p.s.state(), SessionState::AuthFailed);
    assert!(
        p.sent().is_empty(),
        "nothing is sent for a mechanism that cannot start"
    );
    let reason = p.sasl_failed();
    assert!(
        reason.contains("h0:2181")
            && reason.contains("X-SCRIPTED")
            && reason.contains("no credentials"),
        "{reason}"
    );
}

#[test]
fn a_plug_in_step_error_is_auth_failed() {
    let mut p = Peer::with(SaslConfig::custom(Arc::new(Scripted::default())));
    let sent = p.sent();
    p.sasl_reply(sent[0].0, ErrorCode::Ok, b"garbage");
    assert_eq!(p.s.state(), SessionState::AuthFailed);
    assert!(p.any_event(
        |e| matches!(e, Event::SaslFailed { reason } if reason.contains("unexpected \"garbage\""))
    ));
}
