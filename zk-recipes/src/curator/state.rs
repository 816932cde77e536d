//! Curator's connection-state rules (`ConnectionStateManager`,
//! `ConnectionStateErrorPolicy`) as an option of the Curator-layout recipes.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_client::{Client, ListenerId, SessionState};

use crate::common::{now, Delay};
use crate::lock::{Holding, LockGuard};
use crate::mailbox::lock;

/// Which connection states end a lock holder's or a leader's claim (Curator's
/// `ConnectionStateErrorPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// `StandardConnectionStateErrorPolicy` (Curator's default): SUSPENDED and
    /// LOST both end it. A leader steps down as soon as its connection drops.
    #[default]
    Standard,
    /// `SessionConnectionStateErrorPolicy`: only LOST ends it; a claim rides
    /// through a SUSPENDED connection that comes back within the session.
    Session,
}

/// Curator's connection-state rules for a recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionRules {
    /// Which states end a claim.
    pub error_policy: ErrorPolicy,
    /// SUSPENDED becomes LOST once it has lasted this share of the negotiated
    /// session timeout, in percent (Curator's `simulatedSessionExpirationPercent`,
    /// default 100). 0 turns it off; the client still reports the session
    /// expired once no server was reached within the whole timeout.
    pub simulated_expiration_percent: u32,
}

impl Default for ConnectionRules {
    fn default() -> Self {
        ConnectionRules {
            error_policy: ErrorPolicy::Standard,
            simulated_expiration_percent: 100,
        }
    }
}

impl ConnectionRules {
    /// Whether `h` ends a claim under this policy.
    pub fn is_error(&self, h: Holding) -> bool {
        match h {
            Holding::Held => false,
            Holding::Suspended => self.error_policy == ErrorPolicy::Standard,
            _ => true,
        }
    }
}

/// When the client's connection was last suspended (a listener keeps it).
pub(crate) struct SuspendClock {
    client: Client,
    id: ListenerId,
    since: Arc<Mutex<Option<Instant>>>,
}

impl SuspendClock {
    pub(crate) fn new(client: &Client) -> SuspendClock {
        let since = Arc::new(Mutex::new(
            (client.state() == SessionState::Suspended).then(now),
        ));
        let s2 = since.clone();
        let id = client.add_listener(move |st| {
            let mut s = lock(&s2);
            match st {
                SessionState::Suspended => {
                    s.get_or_insert_with(now);
                }
                _ => *s = None,
            }
        });
        SuspendClock {
            client: client.clone(),
            id,
            since,
        }
    }

    /// How long the connection must stay suspended to count as LOST.
    fn limit(&self, rules: &ConnectionRules) -> Option<Duration> {
        if rules.simulated_expiration_percent == 0 {
            return None;
        }
        let t = self.client.session()?.timeout?;
        Some(t * rules.simulated_expiration_percent / 100)
    }

    /// `h`, made Lost once a suspension outlasted the rules' limit.
    pub(crate) fn apply(&self, rules: &ConnectionRules, h: Holding) -> Holding {
        if h != Holding::Suspended {
            return h;
        }
        match (*lock(&self.since), self.limit(rules)) {
            (Some(t), Some(limit)) if t.elapsed() >= limit => Holding::Lost,
            _ => h,
        }
    }

    /// Time left until the current suspension counts as LOST.
    fn left(&self, rules: &ConnectionRules) -> Option<Duration> {
        let since = (*lock(&self.since))?;
        Some(self.limit(rules)?.saturating_sub(since.elapsed()))
    }
}

impl Drop for SuspendClock {
    fn drop(&mut self) {
        self.client.remove_listener(self.id);
    }
}

/// A claim (a held lock node) judged by Curator's rules.
pub(crate) struct Claim {
    pub(crate) guard: LockGuard,
    pub(crate) rules: ConnectionRules,
    pub(crate) clock: SuspendClock,
    /// Once lost by the rules, lost for good.
    pub(crate) lost: std::sync::atomic::AtomicBool,
}

impl Claim {
    pub(crate) fn new(client: &Client, guard: LockGuard, rules: ConnectionRules) -> Claim {
        Claim {
            clock: SuspendClock::new(client),
            guard,
            rules,
            lost: Default::default(),
        }
    }

    pub(crate) fn status(&self) -> Holding {
        use std::sync::atomic::Ordering;
        if self.lost.load(Ordering::SeqCst) {
            return Holding::Lost;
        }
        let h = self.clock.apply(&self.rules, self.guard.status());
        if h == Holding::Lost {
            self.lost.store(true, Ordering::SeqCst);
        }
        h
    }

    pub(crate) fn is_held(&self) -> bool {
        !self.rules.is_error(self.status())
    }

    /// Resolves once the rules say the claim has ended; returns the status.
    pub(crate) fn ended(self: &Arc<Self>) -> impl Future<Output = Holding> + Send + 'static {
        let this = self.clone();
        async move {
            loop {
                let h = this.status();
                if this.rules.is_error(h) {
                    return h;
                }
                match h {
                    Holding::Held => {
                        let _ = this.guard.not_held().await;
                    }
                    _ => {
                        // Suspended under the Session policy: back to Held,
                        // Lost, or the simulated expiry, whichever comes first.
                        let wait = this
                            .clock
                            .left(&this.rules)
                            .unwrap_or(Duration::from_secs(1));
                        let mut states = this.guard_client().state_stream();
                        let _ = states.next().await;
                        let _ = Delay::new(wait.max(Duration::from_millis(10)))
                            .or(states.next())
                            .await;
                    }
                }
            }
        }
    }

    fn guard_client(&self) -> Client {
        self.clock.client.clone()
    }

    pub(crate) fn clock_client(&self) -> Client {
        self.clock.client.clone()
    }
}
