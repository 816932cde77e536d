//! The simulated hosts: `mN` (any port) is member N of the cluster.

use crate::config::HostAddr;

/// Host addresses `m{i}:2181` for the given members.
pub fn sim_hosts(members: &[usize]) -> Vec<HostAddr> {
    members
        .iter()
        .map(|m| HostAddr {
            host: format!("m{m}"),
            port: 2181,
        })
        .collect()
}

/// The member a host name designates (`m3` → 3).
pub fn member_of(host: &HostAddr) -> Option<usize> {
    host.host.strip_prefix('m')?.parse().ok()
}
