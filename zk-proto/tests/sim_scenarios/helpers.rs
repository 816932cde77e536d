//! What every scenario uses: the fake clock, request builders, a connected client, and
//! checks of the net's record.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::testing::net::SimNet;
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, Config, CreateRequest, DeleteRequest, DisconnectReason,
    Event, EventType, PathWatchRequest, Request, RequestId, Response, SetDataRequest, WatchedEvent,
    WatcherId,
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

/// A client on the given members, connected.
pub(crate) fn connected_client(
    net: &mut SimNet,
    members: &[usize],
    tweak: impl FnOnce(&mut Config),
) -> usize {
    let mut c = net.config(members);
    tweak(&mut c);
    let ci = net.add_client(c);
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
