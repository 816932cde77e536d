//! The session a run of zkcli uses: opened on first need (a `4lw` needs none)
//! from the global options, then kept for every later command of the shell.

use std::time::{Duration, Instant};

use zk_blocking::{Client, ClientBuilder, Error};

use crate::args::GlobalOpts;
use crate::error::CliError;

/// The connection options and, once opened, the client.
pub struct Connection {
    opts: GlobalOpts,
    client: Option<Client>,
}

impl Connection {
    /// Nothing is opened yet.
    pub fn new(opts: GlobalOpts) -> Connection {
        Connection { opts, client: None }
    }

    /// The connect string, as given.
    pub fn hosts(&self) -> &str {
        &self.opts.server
    }

    /// How long to wait for a session (and for a four-letter word's answer).
    pub fn connect_timeout(&self) -> Duration {
        self.opts.connect_timeout.unwrap_or(self.opts.timeout)
    }

    fn builder(&self) -> ClientBuilder {
        let mut b = ClientBuilder::new(&self.opts.server)
            .session_timeout(self.opts.timeout)
            .connect_deadline(self.connect_timeout());
        for (scheme, cred) in &self.opts.auth {
            b = b.auth(scheme, cred.clone().into_bytes());
        }
        b
    }

    /// The client, connecting first if need be.
    pub fn client(&mut self) -> Result<&Client, CliError> {
        if self.client.is_none() {
            let started = Instant::now();
            let client =
                zk_blocking::connect(&self.builder()).map_err(|err| CliError::Connect {
                    hosts: self.opts.server.clone(),
                    err,
                    waited: started.elapsed(),
                })?;
            self.client = Some(client);
        }
        Ok(self.client.as_ref().expect("just connected"))
    }

    /// Ends the session, if one was opened (so its ephemeral nodes go now, not
    /// a session timeout after the process is gone).
    pub fn close(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.with_timeout(Some(Duration::from_secs(2))).close();
        }
    }

    /// The client if one is open.
    pub fn existing(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    /// Sends a four-letter word: to the session's server if there is a session,
    /// else to each host of the connect string in turn until one answers.
    pub fn four_letter_word(&self, cmd: &str) -> Result<String, CliError> {
        if let Some(c) = &self.client {
            if c.current_host().is_some() {
                return c.command(cmd).map_err(CliError::call);
            }
        }
        let config = self.builder().config().map_err(|err| CliError::Connect {
            hosts: self.opts.server.clone(),
            err,
            waited: Duration::ZERO,
        })?;
        let mut last = Error::Unreachable;
        for host in &config.hosts {
            match zk_blocking::four_letter_word(host, cmd, self.connect_timeout()) {
                Ok(text) => return Ok(text),
                Err(e @ Error::InvalidArgument(_)) => return Err(CliError::call(e)),
                Err(e) => last = e,
            }
        }
        Err(CliError::Zk {
            err: last,
            path: None,
        })
    }
}
