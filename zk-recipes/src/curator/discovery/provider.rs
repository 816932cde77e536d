//! [`ServiceProvider`]: picks an instance of a service from a
//! [`ServiceCache`], with Curator's strategies and down-instance policy.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::now;
use crate::curator::discovery::{ServiceCache, ServiceInstance};
use crate::mailbox::lock;

/// How a [`ServiceProvider`] picks (Curator's `ProviderStrategy`s).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderStrategy {
    /// `RandomStrategy`: any instance, uniformly.
    Random,
    /// `RoundRobinStrategy` (Curator's default): each in turn, in id order.
    RoundRobin,
    /// `StickyStrategy`: the same instance for as long as it is registered
    /// (and not down); when it goes, the inner strategy picks the next.
    Sticky(Box<ProviderStrategy>),
}

/// When an instance that errors is left out (Curator's `DownInstancePolicy`:
/// by default 2 errors make it down for 30 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownInstancePolicy {
    /// How long it stays out.
    pub timeout: Duration,
    /// Errors before it is out.
    pub error_threshold: u32,
}

impl Default for DownInstancePolicy {
    fn default() -> Self {
        DownInstancePolicy {
            timeout: Duration::from_secs(30),
            error_threshold: 2,
        }
    }
}

#[derive(Default)]
struct Picks {
    next: usize,
    sticky: Option<String>,
    errors: HashMap<String, (u32, Instant)>,
}

/// Curator's `ServiceProvider`: an instance of one service for each call,
/// chosen by a [`ProviderStrategy`] among the cached instances that are not
/// down.
///
/// ```no_run
/// # fn demo(d: &zk_recipes::curator::ServiceDiscovery) -> zk_client::Result<()> {
/// use zk_recipes::curator::{ProviderStrategy, ServiceCache, ServiceProvider};
/// let cache = ServiceCache::new(d, "api")?;
/// cache.wait_initialized(Some(std::time::Duration::from_secs(10)))?;
/// let p = ServiceProvider::new(cache, ProviderStrategy::RoundRobin);
/// if let Some(i) = p.get_instance() {
///     println!("calling {:?}", i.build_uri());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ServiceProvider {
    cache: ServiceCache,
    strategy: ProviderStrategy,
    policy: DownInstancePolicy,
    picks: Mutex<Picks>,
}

impl std::fmt::Debug for Picks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picks").field("next", &self.next).finish()
    }
}

impl ServiceProvider {
    /// A provider over `cache`.
    pub fn new(cache: ServiceCache, strategy: ProviderStrategy) -> ServiceProvider {
        ServiceProvider::with_policy(cache, strategy, DownInstancePolicy::default())
    }

    /// A provider with a down-instance policy.
    pub fn with_policy(
        cache: ServiceCache,
        strategy: ProviderStrategy,
        policy: DownInstancePolicy,
    ) -> ServiceProvider {
        ServiceProvider {
            cache,
            strategy,
            policy,
            picks: Mutex::new(Picks::default()),
        }
    }

    /// The cache it picks from.
    pub fn cache(&self) -> &ServiceCache {
        &self.cache
    }

    /// Every instance that is not down, by id (Java's `getAllInstances`).
    pub fn all_instances(&self) -> Vec<ServiceInstance> {
        let mut p = lock(&self.picks);
        self.live(&mut p)
    }

    fn live(&self, p: &mut Picks) -> Vec<ServiceInstance> {
        let policy = self.policy;
        p.errors
            .retain(|_, (_, since)| since.elapsed() < policy.timeout);
        let mut v: Vec<_> = self
            .cache
            .instances()
            .into_iter()
            .filter(|i| {
                p.errors
                    .get(&i.id)
                    .is_none_or(|(n, _)| *n < policy.error_threshold)
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// One instance by the strategy, `None` when there is none (Java's
    /// `getInstance`).
    pub fn get_instance(&self) -> Option<ServiceInstance> {
        let mut p = lock(&self.picks);
        let live = self.live(&mut p);
        pick(&self.strategy, &live, &mut p)
    }

    /// Counts an error against `instance` (Java's `noteError`): past the
    /// policy's threshold it is left out until the policy's timeout.
    pub fn note_error(&self, instance: &ServiceInstance) {
        let mut p = lock(&self.picks);
        let e = p.errors.entry(instance.id.clone()).or_insert((0, now()));
        e.0 += 1;
        e.1 = now();
    }
}

fn pick(s: &ProviderStrategy, live: &[ServiceInstance], p: &mut Picks) -> Option<ServiceInstance> {
    if live.is_empty() {
        return None;
    }
    match s {
        ProviderStrategy::Random => Some(live[random_below(live.len())].clone()),
        ProviderStrategy::RoundRobin => {
            let i = p.next % live.len();
            p.next = p.next.wrapping_add(1);
            Some(live[i].clone())
        }
        ProviderStrategy::Sticky(inner) => {
            if let Some(id) = &p.sticky {
                if let Some(i) = live.iter().find(|i| &i.id == id) {
                    return Some(i.clone());
                }
            }
            let chosen = pick(inner, live, p)?;
            p.sticky = Some(chosen.id.clone());
            Some(chosen)
        }
    }
}

/// A uniform index below `n`, from the std hasher's random keys.
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(now().elapsed().as_nanos());
    (h.finish() % n as u64) as usize
}
