//! zk-blocking's runtime hooks (`zk_client::runtime`): sleeps on the shared I/O
//! thread's timers for the async client's retries and `connect`'s deadline, and
//! four-letter words over the client's connector on
//! a thread, so `as_async()`'s `retry`, `command` and `server_version` work on a
//! blocking client too.

use std::sync::Arc;
use std::time::Duration;

use zk_client::runtime::{on_thread, BoxFuture, Runtime};

use crate::{four_letter_word_with, Connector, Error, HostAddr, Result};

pub(crate) struct BlockingRuntime {
    pub(crate) connector: Arc<dyn Connector>,
}

impl Runtime for BlockingRuntime {
    fn sleep(&self, d: Duration) -> BoxFuture<()> {
        crate::io_thread::sleep(d)
    }

    fn four_letter_word(
        &self,
        host: HostAddr,
        cmd: String,
        timeout: Duration,
    ) -> BoxFuture<Result<String>> {
        let connector = self.connector.clone();
        let done = on_thread("zk-4lw", move || {
            four_letter_word_with(&*connector, &host, &cmd, timeout)
        });
        Box::pin(async move {
            done.await
                .unwrap_or_else(|| Err(Error::Io("could not start a thread".into())))
        })
    }
}
