//! Where a session stands ([`SessionState`], and kazoo's coarse view of it) and
//! the one place a change of state is announced.

use crate::error::ZkError;

use super::{Event, Session};

/// Where the session stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// No session yet; trying servers. Intermediate.
    Connecting,
    /// Session live on a read-write server. Intermediate.
    Connected,
    /// Session live on a read-only server: reads work, writes fail with NotReadOnly.
    /// The session keeps looking for a read-write server. Intermediate.
    ConnectedReadOnly,
    /// The session exists but its connection was lost; reconnecting. Requests wait
    /// or fail by the queue policy. Intermediate.
    Suspended,
    /// The session is gone (the server said so, or no server was reached within its
    /// timeout). With the default [`ExpiryPolicy::NewSession`](crate::ExpiryPolicy::NewSession) this state is reported
    /// and left at once for `Connecting` (a new session); with
    /// [`ExpiryPolicy::Terminal`](crate::ExpiryPolicy::Terminal) it is terminal.
    Expired,
    /// A server rejected the credentials. Terminal.
    AuthFailed,
    /// Closed by the caller. Terminal.
    Closed,
    /// No server was reached in [`Config::connect_max_rounds`](crate::Config::connect_max_rounds) full rounds over the
    /// host list; the session stopped trying. Terminal: [`restart`](Session::restart)
    /// tries again (a new session). The old session, if there was one, may still be
    /// alive on the servers until it expires; [`credentials`](Session::credentials)
    /// still returns it.
    Unreachable,
}

impl SessionState {
    /// Whether nothing more will happen without a [`restart`](Session::restart).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired
                | SessionState::AuthFailed
                | SessionState::Closed
                | SessionState::Unreachable
        )
    }

    /// Whether requests can be sent now.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    /// kazoo's coarse view.
    ///
    /// Why: listeners written for kazoo's `KazooState` (or Curator's connection
    /// states) want three states, not eight.
    ///
    /// ```
    /// use zk_proto::{CoarseState, SessionState};
    ///
    /// assert_eq!(SessionState::ConnectedReadOnly.coarse(), CoarseState::Connected);
    /// assert_eq!(SessionState::Suspended.coarse(), CoarseState::Suspended);
    /// assert_eq!(SessionState::Expired.coarse(), CoarseState::Lost);
    /// assert!(SessionState::Suspended.coarse() != CoarseState::Lost); // the session may live on
    /// assert!(!SessionState::Suspended.is_terminal() && !SessionState::Suspended.is_connected());
    /// ```
    pub fn coarse(self) -> CoarseState {
        match self {
            SessionState::Connected | SessionState::ConnectedReadOnly => CoarseState::Connected,
            SessionState::Suspended => CoarseState::Suspended,
            _ => CoarseState::Lost,
        }
    }
}

/// kazoo's `KazooState` (and Curator's connection states, folded).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CoarseState {
    /// Connected (read-write or read-only).
    Connected,
    /// Connection lost; the session may still be alive.
    Suspended,
    /// No session (not yet, or no more).
    Lost,
}

impl Session {
    pub(super) fn set_state(&mut self, to: SessionState) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.events.push_back(Event::StateChanged { from, to });
        }
    }

    pub(super) fn terminal_error(&self) -> Option<ZkError> {
        match self.state {
            SessionState::Expired => Some(ZkError::SessionExpired),
            SessionState::AuthFailed => Some(ZkError::AuthFailed),
            SessionState::Closed => Some(ZkError::SessionClosed),
            SessionState::Unreachable => Some(ZkError::Unreachable),
            _ if self.closing.is_some() && !self.restart_pending => Some(ZkError::SessionClosed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CoarseState, SessionState};

    /// kazoo's three states: connected either way, suspended (the session may
    /// live on), and lost for everything else, Connecting included (kazoo's
    /// LOST before the first connection).
    #[test]
    fn coarse_folds_into_kazoos_three_states() {
        use SessionState as S;
        let all = [
            (S::Connecting, CoarseState::Lost),
            (S::Connected, CoarseState::Connected),
            (S::ConnectedReadOnly, CoarseState::Connected),
            (S::Suspended, CoarseState::Suspended),
            (S::Expired, CoarseState::Lost),
            (S::AuthFailed, CoarseState::Lost),
            (S::Closed, CoarseState::Lost),
            (S::Unreachable, CoarseState::Lost),
        ];
        for (s, coarse) in all {
            assert_eq!(s.coarse(), coarse, "{s:?}");
        }
    }
}
