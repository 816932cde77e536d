//! The session and the ensemble: `whoami`, `get_config`, `reconfig`, `add_auth`.

use std::future::Future;

use bytes::Bytes;
use zk_proto::{ClientInfo, ReconfigRequest, Request, Response, Stat};

use crate::client::Client;
use crate::data::Data;
use crate::error::Result;

use super::{get_data_result, unexpected, ReplyFuture};

impl Client {
    /// The identities the server associates with this connection (3.7+).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// for id in zk.whoami().await? {
    ///     println!("{} {}", id.auth_scheme, id.user); // e.g. "ip 127.0.0.1", "digest alice"
    /// }
    /// # Ok(()) }
    /// ```
    pub fn whoami(&self) -> impl Future<Output = Result<Vec<ClientInfo>>> + Send + 'static {
        let f = self.send(Request::WhoAmI);
        async move {
            match f.await? {
                Response::WhoAmI(w) => Ok(w.client_info),
                r => Err(unexpected(r)),
            }
        }
    }

    /// The ensemble configuration (the server's `/zookeeper/config`, outside any
    /// chroot) and its Stat. A plain `get_data("/zookeeper/config")` under a chroot
    /// reads the chrooted node of that name instead, as every other call does.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (config, _) = zk.get_config().await?;
    /// let members = zk_client::ensemble::client_hosts(config.to_str().unwrap_or(""));
    /// println!("{} members: {members:?}", members.len());
    /// # Ok(()) }
    /// ```
    pub fn get_config(&self) -> impl Future<Output = Result<(Data, Stat)>> + Send + 'static {
        let f = match self.shared().submit_config() {
            Ok((slot, _)) => ReplyFuture::waiting(self.shared(), slot),
            Err(e) => ReplyFuture::Failed(Some(e.into())),
        };
        async move { get_data_result(f.await?) }
    }

    /// Changes the ensemble membership; returns the new config. `from_config`: expected
    /// config version (-1 for any).
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> impl Future<Output = Result<(Data, Stat)>> + Send + 'static {
        let f = self.send(Request::Reconfig(ReconfigRequest {
            joining_servers: joining.map(Into::into),
            leaving_servers: leaving.map(Into::into),
            new_members: new_members.map(Into::into),
            cur_config_id: from_config,
        }));
        async move { get_data_result(f.await?) }
    }

    /// Adds credentials (e.g. `("digest", "user:password")`); replayed on every
    /// reconnect (once, however often the same credential is added).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{acl, CreateMode, CreateOptions};
    /// zk.add_auth("digest", "alice:secret").await?;
    /// // `creator_all_acl` gives the authenticated creator (alice) every permission.
    /// let opts = CreateOptions {
    ///     acl: Some(acl::creator_all_acl()),
    ///     ..CreateOptions::mode(CreateMode::Persistent)
    /// };
    /// zk.create_with("/private", "x", &opts).await?;
    /// // A client without alice's credential gets Server(NoAuth) on /private.
    /// # Ok(()) }
    /// ```
    pub fn add_auth(
        &self,
        scheme: &str,
        credentials: impl AsRef<[u8]>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let f = match self
            .shared()
            .add_auth(scheme, Bytes::copy_from_slice(credentials.as_ref()))
        {
            Ok(slot) => ReplyFuture::waiting(self.shared(), slot),
            Err(e) => ReplyFuture::Failed(Some(e.into())),
        };
        async move { f.await.map(|_| ()) }
    }
}
