//! The ensemble's own configuration (`/zookeeper/config`), as a client reads it
//! to follow membership changes (Curator's EnsembleTracker).

use zk_proto::HostAddr;

/// The client addresses of every member in a dynamic config:
/// `server.N=host:quorum:election[:role];[clientHost:]clientPort` lines. A client
/// host of `0.0.0.0` (or none) means the member's own host. Observers count: they
/// serve clients too. Lines without a client port are skipped.
pub fn client_hosts(config: &str) -> Vec<HostAddr> {
    let mut out = Vec::new();
    for line in config.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        if !key.trim().starts_with("server.") {
            continue;
        }
        let Some((server, client)) = value.split_once(';') else {
            continue;
        };
        let server_host = match server.trim().strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => server.split(':').next().unwrap_or(""),
        };
        let client = client.trim();
        let (host, port) = match client.rsplit_once(':') {
            Some((h, p)) => (h.trim_matches(|c| c == '[' || c == ']'), p),
            None => ("", client),
        };
        let host = if host.is_empty() || host == "0.0.0.0" || host == "::" {
            server_host
        } else {
            host
        };
        if let (false, Ok(port)) = (host.is_empty(), port.trim().parse::<u16>()) {
            let addr = HostAddr {
                host: host.to_owned(),
                port,
            };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(host: &str, port: u16) -> HostAddr {
        HostAddr {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_the_forms_a_server_writes() {
        let cfg = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                   server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2182\n\
                   server.3=zk3:2888:3888:observer;2183\n\
                   server.4=zk4:2888:3888\n\
                   server.5=[::1]:2888:3888:participant;[::1]:2185\n\
                   version=100000003\n";
        assert_eq!(
            client_hosts(cfg),
            vec![
                h("127.0.0.1", 2181),
                h("10.0.0.2", 2182),
                h("zk3", 2183),
                h("::1", 2185)
            ]
        );
        assert!(client_hosts("").is_empty());
        assert!(client_hosts("garbage\nserver.1=\n").is_empty());
    }
}
