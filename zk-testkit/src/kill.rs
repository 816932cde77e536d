//! Expiring a session from outside, as Curator's KillSession does.

use std::time::{Duration, Instant};

use zk_client::{ClientBuilder, Error, ExpiryPolicy, Result, SessionInfo};

/// Ends `session` on the server (its ephemerals go, its clients see Expired): a
/// second client resumes the session with its id and password and closes it.
/// `hosts` is a connect string without chroot.
///
/// The session's own client may take the session back between the resume and the
/// close (the server moves a session to whoever connected last); this retries
/// until a fresh resume is refused as expired, or `timeout` passes. For a
/// deterministic kill, cut the client's traffic first (see [`crate::proxy::Proxy`]).
pub fn kill_session(hosts: &str, session: &SessionInfo, timeout: Duration) -> Result<()> {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let resume = ClientBuilder::new(hosts)
        .resume(session.id, session.password.clone())
        .expiry_policy(ExpiryPolicy::Terminal)
        .connect_deadline(timeout);
    loop {
        match zk_blocking::connect(&resume) {
            Ok(killer) => {
                killer.close()?;
            }
            // Refused: the server no longer knows the session.
            Err(Error::SessionExpired) => return Ok(()),
            Err(e) => return Err(e),
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
