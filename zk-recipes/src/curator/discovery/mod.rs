//! Curator's service discovery (curator-x-discovery 5.x): instances registered
//! at `<base>/<name>/<id>` as Curator's JSON, read and written alike by Java's
//! `ServiceDiscovery` and this one.
//!
//! | Rust | Curator |
//! |---|---|
//! | [`ServiceInstance`], [`UriSpec`], [`ServiceType`] | `ServiceInstance`, `UriSpec`, `ServiceType`, `JsonInstanceSerializer` |
//! | [`ServiceDiscovery`] | `ServiceDiscovery` (`ServiceDiscoveryImpl`) |
//! | [`ServiceCache`] | `ServiceCache` |
//! | [`ServiceProvider`], [`ProviderStrategy`], [`DownInstancePolicy`] | `ServiceProvider`, `RandomStrategy` / `RoundRobinStrategy` / `StickyStrategy`, `DownInstancePolicy` |

mod cache;
mod instance;
mod provider;
mod registry;

pub use cache::ServiceCache;
pub use instance::{ServiceInstance, ServiceType, UriPart, UriSpec, MAP_PAYLOAD_CLASS};
pub use provider::{DownInstancePolicy, ProviderStrategy, ServiceProvider};
pub use registry::{DiscoveryOptions, ServiceDiscovery};
