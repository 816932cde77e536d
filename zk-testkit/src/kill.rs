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
///
/// ```no_run
/// use std::time::Duration;
/// use zk_client::{ClientBuilder, CreateMode, SessionState};
/// use zk_testkit::{kill_session, shared_server};
///
/// let hosts = shared_server().connect_string();
/// let zk = zk_blocking::connect(&ClientBuilder::new(&hosts)).unwrap();
/// zk.create("/my-lock", "", CreateMode::Ephemeral).unwrap();
/// let old = zk.session().unwrap();
/// let mut states = zk.state_stream();
/// kill_session(&hosts, &old, Duration::from_secs(10)).unwrap();
/// // The client sees Expired, then (the default ExpiryPolicy::NewSession) a new session;
/// // the old session's ephemeral is gone.
/// assert!(std::iter::from_fn(|| states.recv_timeout(Some(Duration::from_secs(10))))
///     .any(|s| s == SessionState::Expired));
/// assert!(zk.exists("/my-lock").unwrap().is_none());
/// ```
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
