//! The lock core every lock recipe shares: which contender nodes a lock makes
//! and which it waits for (kazoo's rules or Curator's), the path, the options,
//! and the listing of contenders. Acquiring is in `attempt.rs`.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, Error, Result};

use super::order::{curator_seq, curator_sorted, sorted_contenders};
use crate::common::{children_data, children_or_none, data_text, retrying, Cancel};
use crate::runtime::Spawner;

/// The infix of an exclusive (or write) lock's contender nodes.
pub(crate) const LOCK_NAME: &str = "__lock__";
/// The infix of a read lock's contender nodes.
pub(crate) const RLOCK_NAME: &str = "__rlock__";

/// Options of a [`Lock`](crate::Lock) (and of the locks built on it).
#[derive(Clone, Debug, Default)]
pub struct LockOptions {
    /// Written, UTF-8, as the contender node's data; `contenders()` lists it.
    /// `None` writes empty data (kazoo's `identifier=None`).
    pub identifier: Option<String>,
    /// More name patterns that mark a child as a contender (kazoo's
    /// `extra_lock_patterns`): a child counts when its name ends in one of the
    /// patterns followed by a 10-digit sequence number. `"-lock-"` makes
    /// Curator's and go-zookeeper's lock nodes (`_c_<uuid>-lock-<seq>`) count,
    /// so this lock waits for them. (A Curator mutex does not wait for kazoo's
    /// names in turn: see the [module docs](crate::Lock#curator).)
    pub extra_lock_patterns: Vec<String>,
    /// Where the removal of an abandoned contender node runs when it cannot be
    /// done at once (an acquisition dropped while disconnected, a guard dropped
    /// without [`release`](crate::LockGuard::release)). Default: a thread of its own.
    pub spawner: Spawner,
}

impl LockOptions {
    /// The defaults with contender nodes carrying `identifier` (what the
    /// kazoo recipes' `new(client, path, identifier)` take).
    pub(crate) fn identified(identifier: &str) -> LockOptions {
        LockOptions {
            identifier: Some(identifier.to_owned()),
            ..LockOptions::default()
        }
    }
}

/// Whose rules a lock core follows: kazoo's (names, numeric order, waits for
/// matching names only) or Curator's `LockInternals` (every child sorted by the
/// text after the last lock name, held by the first `max_leases`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Kazoo,
    /// Curator's `StandardLockInternalsDriver`: the first `max_leases` in
    /// order hold; a waiter watches the one `max_leases` places ahead.
    Curator {
        max_leases: usize,
    },
    /// Curator's read lock (`readLockPredicate`): held while no writer comes
    /// before; a waiter watches the first writer.
    CuratorRead,
}

/// What kind of contender a lock object creates and which ones it waits for.
pub(crate) struct LockCore {
    pub(super) flavor: Flavor,
    /// Curator: the names whose suffix is the sort key
    /// (`standardFixForSorting`, applied in turn).
    pub(crate) sort_names: &'static [&'static str],
    pub(crate) client: Client,
    pub(crate) path: String,
    pub(super) data: Vec<u8>,
    /// `__lock__` or `__rlock__`.
    pub(super) node_name: &'static str,
    /// The contender patterns this lock waits for.
    pub(super) waits_for: Vec<String>,
    /// The patterns `contenders()` lists (`waits_for` plus its own kind).
    listed: Vec<String>,
    pub(super) spawner: Spawner,
    pub(super) cancel: Cancel,
    /// The path is known to exist (kazoo's `assured_path`): later acquisitions
    /// skip `ensure_path` until a create answers NoNode.
    pub(super) assured: AtomicBool,
}

impl LockCore {
    pub(crate) fn new(
        client: &Client,
        path: &str,
        opts: LockOptions,
        node_name: &'static str,
        waits_for: &[&str],
    ) -> Result<Arc<LockCore>> {
        zk_proto::path::validate_path(path, false)?;
        if path == "/" {
            return Err(Error::InvalidArgument(
                "a lock needs a path below the root".into(),
            ));
        }
        let mut w: Vec<String> = waits_for.iter().map(|s| s.to_string()).collect();
        for p in opts.extra_lock_patterns {
            if !w.contains(&p) {
                w.push(p);
            }
        }
        let mut listed = w.clone();
        if !listed.iter().any(|p| p == node_name) {
            listed.push(node_name.to_string());
        }
        Ok(Arc::new(LockCore {
            flavor: Flavor::Kazoo,
            sort_names: &[],
            client: client.clone(),
            path: path.to_owned(),
            data: opts.identifier.unwrap_or_default().into_bytes(),
            node_name,
            waits_for: w,
            listed,
            spawner: opts.spawner,
            cancel: Cancel::default(),
            assured: AtomicBool::new(false),
        }))
    }

    /// A core with Curator's rules: contenders `_c_<uuid>-<node_name><seq>`
    /// (protected) with `data`, sorted by the text after the last of
    /// `sort_names`, parents made as containers.
    pub(crate) fn curator(
        client: &Client,
        path: &str,
        data: Vec<u8>,
        node_name: &'static str,
        sort_names: &'static [&'static str],
        flavor: Flavor,
        spawner: Spawner,
    ) -> Result<Arc<LockCore>> {
        zk_proto::path::validate_path(path, false)?;
        if path == "/" {
            return Err(Error::InvalidArgument(
                "a lock needs a path below the root".into(),
            ));
        }
        Ok(Arc::new(LockCore {
            flavor,
            sort_names,
            client: client.clone(),
            path: path.to_owned(),
            data,
            node_name,
            waits_for: Vec::new(),
            listed: Vec::new(),
            spawner,
            cancel: Cancel::default(),
            assured: AtomicBool::new(false),
        }))
    }

    pub(crate) fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    pub(crate) fn cancel(&self) {
        self.cancel.cancel()
    }

    /// The children in this core's contender order, with their sequence
    /// numbers (0 when a name has none).
    fn ordered(&self, kids: Vec<String>) -> Vec<(i64, String)> {
        if self.flavor == Flavor::Kazoo {
            return sorted_contenders(kids, &self.listed);
        }
        curator_sorted(kids, self.sort_names)
            .into_iter()
            .map(|k| (curator_seq(&k), k))
            .collect()
    }

    /// The contenders' identifiers, holder first.
    pub(crate) fn contenders(
        self: &Arc<Self>,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let core = self.clone();
        async move { retrying(&core.client, || core.try_contenders()).await }
    }

    async fn try_contenders(&self) -> Result<Vec<String>> {
        let c = &self.client;
        let kids = children_or_none(c, &self.path).await?;
        let names = self.ordered(kids).into_iter().map(|(_, n)| n).collect();
        // Pipelined: every read goes out at once. Null data is not listed.
        Ok(children_data(c, &self.path, names)
            .await?
            .into_iter()
            .filter(|(_, d)| !d.is_null())
            .map(|(_, d)| data_text(&d))
            .collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Until acquired.
    Forever,
    /// Not at all: give up if someone is ahead.
    No,
    /// At most this long.
    For(Duration),
}

impl Wait {
    /// How long the wait may last (`None`: no limit of its own).
    pub(crate) fn limit(self) -> Option<Duration> {
        match self {
            Wait::For(d) => Some(d),
            Wait::Forever | Wait::No => None,
        }
    }
}
