//! [`Party`] and [`ShallowParty`]: kazoo's group membership, node for node.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::{children_data, data_text, join, retrying, uuid_hex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `<uuid>__party__`, identifier in the data.
    Deep,
    /// `<uuid>-<identifier>`, identifier in the name (and the data).
    Shallow,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    path: String,
    data: Vec<u8>,
    node: String,
    kind: Kind,
    ensured: AtomicBool,
}

const PARTY_NAME: &str = "__party__";

impl Inner {
    async fn ensure(&self) -> Result<()> {
        if !self.ensured.load(Ordering::SeqCst) {
            self.client.ensure_path(&self.path).await?;
            self.ensured.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn join_once(&self) -> Result<()> {
        self.ensure().await?;
        match self
            .client
            .create(
                &join(&self.path, &self.node),
                self.data.as_slice(),
                CreateMode::Ephemeral,
            )
            .await
        {
            Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => Ok(()),
            Err(Error::Server(ErrorCode::NoNode)) => {
                self.ensured.store(false, Ordering::SeqCst);
                Err(Error::ConnectionLoss) // make it again, then retry
            }
            Err(e) => Err(e),
        }
    }

    async fn leave_once(&self) -> Result<bool> {
        match self
            .client
            .delete(&join(&self.path, &self.node), None)
            .await
        {
            Ok(()) => Ok(true),
            Err(Error::Server(ErrorCode::NoNode)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn children(&self) -> Result<Vec<String>> {
        self.ensure().await?;
        let kids = self.client.get_children(&self.path).await?;
        Ok(match self.kind {
            Kind::Deep => kids
                .into_iter()
                .filter(|k| k.contains(PARTY_NAME))
                .collect(),
            Kind::Shallow => kids,
        })
    }

    async fn members_once(&self) -> Result<Vec<String>> {
        let kids = self.children().await?;
        match self.kind {
            Kind::Shallow => Ok(kids
                .into_iter()
                .map(|k| match k.find('-') {
                    Some(i) => k[i + 1..].to_string(),
                    None => k,
                })
                .collect()),
            Kind::Deep => Ok(children_data(&self.client, &self.path, kids)
                .await?
                .into_iter()
                .map(|(_, d)| data_text(&d))
                .collect()),
        }
    }
}

macro_rules! party_api {
    ($t:ident) => {
        impl $t {
            /// The party's path.
            pub fn path(&self) -> &str {
                &self.inner.path
            }

            /// This member's node.
            pub fn node_path(&self) -> String {
                join(&self.inner.path, &self.inner.node)
            }

            /// Joins (creates this member's ephemeral node; already there is
            /// fine, e.g. after a lost answer).
            pub fn join(&self) -> impl Future<Output = Result<()>> + Send + 'static {
                let i = self.inner.clone();
                async move { retrying(&i.client, || i.join_once()).await }
            }

            /// Leaves: `true` if this member was in.
            pub fn leave(&self) -> impl Future<Output = Result<bool>> + Send + 'static {
                let i = self.inner.clone();
                async move { retrying(&i.client, || i.leave_once()).await }
            }

            /// The members' identifiers (in the server's order).
            pub fn members(&self) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
                let i = self.inner.clone();
                async move { retrying(&i.client, || i.members_once()).await }
            }

            /// The number of members (kazoo's `len()`).
            pub fn len(&self) -> impl Future<Output = Result<usize>> + Send + 'static {
                let i = self.inner.clone();
                async move { retrying(&i.client, || async { Ok(i.children().await?.len()) }).await }
            }

            /// [`len`](Self::len) from a thread.
            pub fn len_blocking(&self) -> Result<usize> {
                zk_client::blocking::block_on(self.len(), None).unwrap_or(Err(Error::Timeout))
            }

            /// [`join`](Self::join) from a thread.
            pub fn join_blocking(&self) -> Result<()> {
                zk_client::blocking::block_on(self.join(), None).unwrap_or(Ok(()))
            }

            /// [`leave`](Self::leave) from a thread.
            pub fn leave_blocking(&self) -> Result<bool> {
                zk_client::blocking::block_on(self.leave(), None).unwrap_or(Ok(false))
            }

            /// [`members`](Self::members) from a thread.
            pub fn members_blocking(&self) -> Result<Vec<String>> {
                zk_client::blocking::block_on(self.members(), None).unwrap_or(Ok(Vec::new()))
            }
        }
    };
}

/// kazoo's `Party`: members are `<path>/<32 hex>__party__`, EPHEMERAL, data =
/// identifier in UTF-8 (empty if none). Only children whose name contains
/// `__party__` count; [`members`](Party::members) reads their data.
///
/// Membership ends with [`leave`](Party::leave) or the session (kazoo tracks
/// nothing after that either).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// let party = zk_recipes::Party::new(&zk, "/app/members", Some("node-1"))?;
/// party.join().await?;
/// println!("{} members: {:?}", party.len().await?, party.members().await?);
/// party.leave().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Party does nothing until joined"]
pub struct Party {
    inner: Arc<Inner>,
}

/// kazoo's `ShallowParty`: members are `<path>/<32 hex>-<identifier>`,
/// EPHEMERAL, with the identifier as data too, so listing them takes one
/// request. [`members`](ShallowParty::members) is the text after the first
/// `-` of each child; [`len`](ShallowParty::len) counts **all** children, as
/// kazoo's does. The identifier must be usable in a node name (no `/`).
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// let party = zk_recipes::ShallowParty::new(zk, "/app/workers", "worker-7")?;
/// party.join_blocking()?;
/// println!("{:?}", party.members_blocking()?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a ShallowParty does nothing until joined"]
pub struct ShallowParty {
    inner: Arc<Inner>,
}

impl Party {
    /// A member of the party at `path` (`identifier`: its data; `None`: empty).
    pub fn new(client: &Client, path: &str, identifier: Option<&str>) -> Result<Party> {
        zk_proto::path::validate_path(path, false)?;
        Ok(Party {
            inner: Arc::new(Inner {
                client: client.clone(),
                path: path.to_owned(),
                data: identifier.unwrap_or_default().as_bytes().to_vec(),
                node: format!("{}{PARTY_NAME}", uuid_hex()),
                kind: Kind::Deep,
                ensured: AtomicBool::new(false),
            }),
        })
    }
}

impl ShallowParty {
    /// A member of the shallow party at `path`, known as `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<ShallowParty> {
        zk_proto::path::validate_path(path, false)?;
        let node = format!("{}-{identifier}", uuid_hex());
        zk_proto::path::validate_path(&join(path, &node), false)?;
        if identifier.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "a ShallowParty identifier goes in a node name: {identifier:?} has a '/'"
            )));
        }
        Ok(ShallowParty {
            inner: Arc::new(Inner {
                client: client.clone(),
                path: path.to_owned(),
                data: identifier.as_bytes().to_vec(),
                node,
                kind: Kind::Shallow,
                ensured: AtomicBool::new(false),
            }),
        })
    }
}

party_api!(Party);
party_api!(ShallowParty);
