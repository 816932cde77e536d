//! One client session and everything it reported, with the questions tests ask of
//! that record.

use std::time::Instant;

use bytes::Bytes;

use crate::config::HostAddr;
use crate::error::ZkError;
use crate::ops::Response;
use crate::session::{ConnId, Event, RequestId, Session, SessionState, WatchedEvent};
use crate::watches::WatcherId;

/// One client session and everything it reported.
#[derive(Debug)]
pub struct SimClient {
    /// The state machine under test.
    pub session: Session,
    /// Every event it emitted, with the time it was polled.
    pub events: Vec<(Instant, Event)>,
    /// Every transmit it made: time, connection, bytes.
    pub sent: Vec<(Instant, ConnId, Bytes)>,
    /// Every connection it asked for: time, connection, host.
    pub connects: Vec<(Instant, ConnId, HostAddr)>,
}

impl SimClient {
    /// The outcome of a request, if it completed.
    pub fn completion(&self, id: RequestId) -> Option<&Result<Response, ZkError>> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::Completed { id: i, result } if *i == id => Some(result),
            _ => None,
        })
    }

    /// How many times a request completed.
    pub fn completions(&self, id: RequestId) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Completed { id: i, .. } if *i == id))
            .count()
    }

    /// The states entered, in order.
    pub fn states(&self) -> Vec<SessionState> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::StateChanged { to, .. } => Some(*to),
                _ => None,
            })
            .collect()
    }

    /// When the session first entered `state`.
    pub fn entered(&self, state: SessionState) -> Option<Instant> {
        self.events.iter().find_map(|(t, e)| match e {
            Event::StateChanged { to, .. } if *to == state => Some(*t),
            _ => None,
        })
    }

    /// The events delivered to one watch registration.
    pub fn watch_events(&self, watcher: WatcherId) -> Vec<WatchedEvent> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Watch { watcher: w, event } if *w == watcher => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the registration ended with [`Event::WatcherRemoved`].
    pub fn watcher_removed(&self, watcher: WatcherId) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, Event::WatcherRemoved { watcher: w, .. } if *w == watcher))
    }
}
