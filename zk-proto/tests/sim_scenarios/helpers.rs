//! What every scenario uses: the fake clock, request builders, the scenario fixture
//! and connected clients, waits for a state, and checks of the net's record.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::jute::from_bytes;
use zk_proto::testing::net::{ClientFrame, SimNet};
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, Config, ConnId, CreateRequest, DeleteRequest,
    DisconnectReason, Event, EventType, OpCode, PathWatchRequest, Request, RequestId, Response,
    SessionState, SetDataRequest, SetWatches, WatchedEvent, WatcherId, ZkError,
};

pub(crate) const S: Duration = Duration::from_secs(1);

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[allow(clippy::disallowed_methods)] // the fake clock needs some instant to start from
fn t0() -> Instant {
    Instant::now()
}

pub(crate) fn net(members: usize, seed: u64) -> SimNet {
    SimNet::new(members, seed, t0())
}

pub(crate) fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open_unsafe(),
        flags,
    })
}

pub(crate) fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

pub(crate) fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

pub(crate) fn get_children(path: &str, watch: bool) -> Request {
    Request::GetChildren(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

pub(crate) fn set_data(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        version: -1,
    })
}

pub(crate) fn delete(path: &str) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version: -1,
    })
}

pub(crate) fn add_watch(path: &str, mode: AddWatchMode) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode,
    })
}

pub(crate) fn ev(event_type: EventType, path: &str) -> WatchedEvent {
    WatchedEvent {
        event_type,
        path: path.into(),
        zxid: None,
    }
}

/// Runs `body` against a client connected to every member of a fresh net of `members`
/// (seeded with `seed`), then checks that the net saw the adapter contract kept.
pub(crate) fn scenario(members: usize, seed: u64, body: impl FnOnce(&mut SimNet, usize)) {
    scenario_with(members, seed, |_| {}, body)
}

/// [`scenario`] with the client's config changed by `tweak` before it connects.
pub(crate) fn scenario_with(
    members: usize,
    seed: u64,
    tweak: impl FnOnce(&mut Config),
    body: impl FnOnce(&mut SimNet, usize),
) {
    let mut n = net(members, seed);
    let all: Vec<usize> = (0..members).collect();
    let ci = connected_client(&mut n, &all, tweak);
    body(&mut n, ci);
    no_violations(&n);
}

/// A net of `members` that are all stopped: every connect is refused.
pub(crate) fn net_down(members: usize, seed: u64) -> SimNet {
    let mut n = net(members, seed);
    for m in 0..members {
        n.stop_member(m);
    }
    n
}

/// A client on the given members, its config changed by `tweak`; it starts
/// connecting at once.
pub(crate) fn add_client(
    net: &mut SimNet,
    members: &[usize],
    tweak: impl FnOnce(&mut Config),
) -> usize {
    let mut c = net.config(members);
    tweak(&mut c);
    net.add_client(c)
}

/// A client on the given members, connected.
pub(crate) fn connected_client(
    net: &mut SimNet,
    members: &[usize],
    tweak: impl FnOnce(&mut Config),
) -> usize {
    let ci = add_client(net, members, tweak);
    assert!(
        net.run_until(|n| n.state(ci).is_connected(), 10 * S),
        "client did not connect: {:?}",
        net.client(ci).states()
    );
    ci
}

pub(crate) fn ok(net: &mut SimNet, ci: usize, req: Request) -> Response {
    match net.call(ci, req.clone(), 10 * S) {
        Some(Ok(r)) => r,
        other => panic!("{req:?} -> {other:?}"),
    }
}

pub(crate) fn submit(net: &mut SimNet, ci: usize, req: Request) -> (RequestId, Option<WatcherId>) {
    let s = net.submit(ci, req).expect("submit");
    (s.id, s.watcher)
}

pub(crate) fn no_violations(net: &SimNet) {
    assert!(net.violations.is_empty(), "{:?}", net.violations);
}

/// The member indices of the client's connection attempts, in order.
pub(crate) fn attempts(net: &SimNet, ci: usize) -> Vec<(Duration, String)> {
    let start = net.client(ci).connects.first().map(|c| c.0);
    net.client(ci)
        .connects
        .iter()
        .map(|(t, _, h)| (*t - start.unwrap_or(*t), h.host.clone()))
        .collect()
}

pub(crate) fn disconnect_reasons(net: &SimNet, ci: usize) -> Vec<DisconnectReason> {
    net.client(ci)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Runs the net until the client is in `state`, failing the test if it is not
/// within `max`.
#[track_caller]
pub(crate) fn wait_for(net: &mut SimNet, ci: usize, state: SessionState, max: Duration) {
    assert!(
        net.run_until(|n| n.state(ci) == state, max),
        "not {state:?} within {max:?}: {:?}",
        net.client(ci).states()
    );
}

/// Waits for the client to be connected, and checks it is on `member`.
#[track_caller]
pub(crate) fn connected_to(net: &mut SimNet, ci: usize, member: usize, max: Duration) {
    wait_for(net, ci, SessionState::Connected, max);
    assert_eq!(net.client_member(ci), Some(member));
}

/// Drops the client's connection and waits for it to be connected again.
#[track_caller]
pub(crate) fn reconnect(net: &mut SimNet, ci: usize) {
    net.reset_session_conn(ci);
    wait_for(net, ci, SessionState::Connected, 10 * S);
}

/// Closes the client and waits for it to be closed.
#[track_caller]
pub(crate) fn close(net: &mut SimNet, ci: usize, max: Duration) {
    net.close(ci);
    wait_for(net, ci, SessionState::Closed, max);
}

/// The states of a session that lost its connection once, got it back and closed.
pub(crate) const LOST_ONCE_THEN_CLOSED: [SessionState; 4] = [
    SessionState::Connected,
    SessionState::Suspended,
    SessionState::Connected,
    SessionState::Closed,
];

/// Expires the client's session on the servers and waits for the client to have
/// opened a new one (the default expiry policy); returns the expired session's id.
#[track_caller]
pub(crate) fn expire_and_renew(net: &mut SimNet, ci: usize) -> i64 {
    let sid = net.session(ci).session_id().unwrap();
    net.expire_session(sid);
    assert!(net.run_until(
        |n| n.client(ci).states().ends_with(&[
            SessionState::Expired,
            SessionState::Connecting,
            SessionState::Connected
        ]),
        10 * S
    ));
    sid
}

/// Sets a one-shot data and child watch on `path` and an exist watch on `exists_path`
/// (getData, exists, getChildren, in that order); returns their watchers.
pub(crate) fn data_exist_child_watches(
    net: &mut SimNet,
    ci: usize,
    path: &str,
    exists_path: &str,
) -> [Option<WatcherId>; 3] {
    [
        submit(net, ci, get_data(path, true)).1,
        submit(net, ci, exists(exists_path, true)).1,
        submit(net, ci, get_children(path, true)).1,
    ]
}

/// The events the client's watcher `w` (as returned by [`submit`]) received.
pub(crate) fn fired(net: &SimNet, ci: usize, w: Option<WatcherId>) -> Vec<WatchedEvent> {
    net.client(ci).watch_events(w.expect("a watcher"))
}

/// Checks that each request completed with `err`.
#[track_caller]
pub(crate) fn failed_with(net: &SimNet, ci: usize, ids: &[RequestId], err: ZkError) {
    for id in ids {
        assert_eq!(
            net.client(ci).completion(*id),
            Some(&Err(err.clone())),
            "{id:?}"
        );
    }
}

/// The SetWatches batches (opcode 101) the client sent on connection `conn`.
pub(crate) fn set_watches_sent(net: &SimNet, ci: usize, conn: Option<ConnId>) -> Vec<SetWatches> {
    net.client_frames(ci)
        .into_iter()
        .filter(|f| conn.is_none_or(|c| f.1 == c))
        .filter_map(|f| match f.2 {
            ClientFrame::Request {
                op: OpCode::SetWatches,
                body,
                ..
            } => Some(from_bytes(body).unwrap()),
            _ => None,
        })
        .collect()
}
