//! Several ops in one request: `multi`, the `Transaction` builder, `multi_read`.

use std::future::Future;

use zk_proto::{Acl, CreateMode, MultiRequest, MultiResult, Request, Response};

use crate::client::Client;
use crate::data::IntoData;
use crate::error::{Error, Result};
use crate::ops::{Op, OpResult, ReadOp, ReadResult};

use super::{from_wire, unexpected};

/// Collects ops for [`Client::multi`] (kazoo's `transaction()`); made by
/// [`Client::transaction`], which has an example.
pub struct Transaction {
    client: Client,
    ops: Vec<Op>,
}

impl Transaction {
    /// Adds a create (default ACL).
    pub fn create(mut self, path: &str, data: impl IntoData, mode: CreateMode) -> Self {
        self.ops.push(Op::create(path, data, mode));
        self
    }
    /// Adds a create with its own ACL.
    pub fn create_with_acl(
        mut self,
        path: &str,
        data: impl IntoData,
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Self {
        self.ops.push(Op::Create {
            path: path.into(),
            data: data.into_data(),
            acl: Some(acl),
            mode,
        });
        self
    }
    /// Adds a delete.
    pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::delete(path, version));
        self
    }
    /// Adds a set-data.
    pub fn set_data(mut self, path: &str, data: impl IntoData, version: Option<i32>) -> Self {
        self.ops.push(Op::set_data(path, data, version));
        self
    }
    /// Adds a version check.
    pub fn check(mut self, path: &str, version: i32) -> Self {
        self.ops.push(Op::check(path, version));
        self
    }
    /// The ops so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
    /// Commits atomically (sent now). On failure, [`Error::MultiFailed`] carries
    /// every op's result.
    pub fn commit(self) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        self.client.multi(self.ops)
    }
}

impl Client {
    /// Runs writes atomically. On failure nothing is applied and
    /// [`Error::MultiFailed`] says which op failed, with every op's result.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{ErrorCode, Error, Op};
    /// match zk.multi(vec![Op::check("/config", 3), Op::delete("/config", None)]).await {
    ///     Ok(_) => println!("deleted at version 3"),
    ///     Err(Error::MultiFailed { index: 0, code: ErrorCode::BadVersion, .. }) => {
    ///         println!("someone wrote first; nothing was applied")
    ///     }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{CreateMode, Op};
    /// let results = zk
    ///     .multi(vec![
    ///         Op::check("/config", 3),
    ///         Op::set_data("/config", "v4", Some(3)),
    ///         Op::create("/config/history-", "v3", CreateMode::PersistentSequential),
    ///     ])
    ///     .await?;
    /// assert_eq!(results.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn multi(
        &self,
        ops: Vec<Op>,
    ) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        let ops = ops
            .into_iter()
            .map(|o| o.into_proto(&self.opts().default_acl))
            .collect();
        let f = self.send(Request::Multi(MultiRequest { ops }));
        async move {
            match f.await? {
                Response::Multi(m) => {
                    let failed = m.first_error();
                    let results: Vec<OpResult> =
                        m.results.into_iter().map(OpResult::from_proto).collect();
                    match failed {
                        None => Ok(results),
                        Some(code) => {
                            let index = results
                                .iter()
                                .position(|r| matches!(r, OpResult::Error(c) if *c == code))
                                .unwrap_or(0);
                            Err(Error::MultiFailed {
                                index,
                                code,
                                results,
                            })
                        }
                    }
                }
                r => Err(unexpected(r)),
            }
        }
    }

    /// A transaction builder (kazoo's `transaction()`).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{CreateMode, OpResult};
    /// let results = zk
    ///     .transaction()
    ///     .check("/jobs", 7)
    ///     .create("/jobs/job-", "payload", CreateMode::PersistentSequential)
    ///     .set_data("/jobs", "", Some(7))
    ///     .commit()
    ///     .await?;
    /// if let OpResult::Create { path, .. } = &results[1] {
    ///     println!("queued as {path}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            ops: Vec::new(),
        }
    }

    /// Several reads in one round trip; each succeeds or fails alone (3.6+).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{ReadOp, ReadResult};
    /// let results = zk
    ///     .multi_read(vec![ReadOp::GetData("/a".into()), ReadOp::GetChildren("/b".into())])
    ///     .await?;
    /// for r in results {
    ///     match r {
    ///         Ok(ReadResult::Data(data, _stat)) => println!("{} bytes", data.len()),
    ///         Ok(ReadResult::Children(c)) => println!("{} children", c.len()),
    ///         Err(e) if e.is_no_node() => println!("missing"),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn multi_read(
        &self,
        ops: Vec<ReadOp>,
    ) -> impl Future<Output = Result<Vec<Result<ReadResult>>>> + Send + 'static {
        let ops = ops.into_iter().map(ReadOp::into_proto).collect();
        let f = self.send(Request::MultiRead(MultiRequest { ops }));
        async move {
            match f.await? {
                Response::Multi(m) => Ok(m
                    .results
                    .into_iter()
                    .map(|r| match r {
                        MultiResult::GetData(d) => Ok(ReadResult::Data(from_wire(d.data), d.stat)),
                        MultiResult::GetChildren(c) => Ok(ReadResult::Children(c.children)),
                        MultiResult::Error(c) => Err(Error::Server(c)),
                        other => Err(Error::Malformed(format!("{other:?}"))),
                    })
                    .collect()),
                r => Err(unexpected(r)),
            }
        }
    }
}
