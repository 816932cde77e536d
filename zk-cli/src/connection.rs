//! The session a run of zkcli uses: opened on first need (a `4lw` needs none)
//! from the global options, then kept for every later command of the shell.

use std::time::{Duration, Instant};

use std::sync::Arc;

use zk_blocking::tls::{TlsConnector, TlsOptions};
use zk_blocking::{
    four_letter_word_with, Client, ClientBuilder, Connector, Error, SystemClock, TcpConnector,
};

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
        if let (Some(user), Some(pw)) = (&self.opts.sasl_user, &self.opts.sasl_password) {
            b = b.sasl_digest_md5(user, &pw.0);
        }
        #[cfg(feature = "gssapi")]
        if self.opts.sasl_gssapi {
            let mut g = zk_blocking::gssapi::GssapiOptions::new();
            if let Some(p) = &self.opts.sasl_principal {
                g = g.client_principal(p);
            }
            if let Some(s) = &self.opts.sasl_service {
                g = g.service_name(s);
            }
            if let Some(p) = &self.opts.server_principal {
                g = g.server_principal(p);
            }
            b = b.sasl_gssapi(g);
        }
        b
    }

    /// The TLS options the flags ask for, if any (`--tls`, or any TLS file or name).
    fn tls(&self) -> Option<TlsOptions> {
        let o = &self.opts;
        if !(o.tls || o.ca.is_some() || o.cert.is_some() || o.tls_server_name.is_some()) {
            return None;
        }
        let mut t = TlsOptions::new();
        t = match &o.ca {
            Some(ca) => t.ca_file(ca),
            None => t.system_roots(),
        };
        if let (Some(cert), Some(key)) = (&o.cert, &o.key) {
            t = t.client_cert_files(cert, key);
        }
        if let Some(name) = &o.tls_server_name {
            t = t.server_name(name);
        }
        if o.no_hostname_check {
            t = t.skip_hostname_verification();
        }
        Some(t)
    }

    /// The transport every connection and four-letter word uses.
    fn connector(&self) -> Result<Arc<dyn Connector>, CliError> {
        match self.tls() {
            None => Ok(Arc::new(TcpConnector)),
            Some(t) => TlsConnector::new(&t)
                .map(|c| Arc::new(c) as Arc<dyn Connector>)
                .map_err(|e| CliError::Connect {
                    hosts: self.opts.server.clone(),
                    err: Error::InvalidArgument(e.to_string()),
                    waited: Duration::ZERO,
                }),
        }
    }

    /// The client, connecting first if need be.
    pub fn client(&mut self) -> Result<&Client, CliError> {
        if self.client.is_none() {
            let started = Instant::now();
            let connector = self.connector()?;
            let client =
                zk_blocking::connect_with(&self.builder(), connector, Arc::new(SystemClock))
                    .map_err(|err| CliError::Connect {
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
        let connector = self.connector()?;
        let mut last = Error::Unreachable;
        for host in &config.hosts {
            match four_letter_word_with(&*connector, host, cmd, self.connect_timeout()) {
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
