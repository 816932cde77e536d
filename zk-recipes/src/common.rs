//! What the coordination recipes share: kazoo's node names (uuid hex, sequence
//! suffixes), a timer that needs no runtime, a cancel flag, and the
//! "wait for a connection, then try again" rule.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use zk_client::{Client, Data, Error, ErrorCode, OneshotWatch, Result, WatchedEvent};

use crate::mailbox::lock;

/// 32 lowercase hex characters laid out like Python's `uuid.uuid4().hex`
/// (version nibble 4, variant bits 10), from the std hasher's per-process
/// random keys mixed with a counter, the time and the thread.
pub(crate) fn uuid_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        std::thread::current().id().hash(&mut h);
        h.finish()
    };
    use std::hash::Hash;
    let (hi, lo) = (word(), word());
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0xc << 60)) | (0x8 << 60); // variant 10xx
    format!("{hi:016x}{lo:016x}")
}

/// Python's `repr(bytes)`: what kazoo writes when it is handed bytes as an
/// identifier (`str(b"x")` is `"b'x'"`), e.g. for a Semaphore's inner lock.
pub(crate) fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::from("b");
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
}

/// The system clock (the recipes' timeouts are wall-clock durations).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// `parent/child` (no double slash under the root).
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The parent of `path` (`None` for the root).
pub(crate) fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// The sequence number of a child named like a kazoo contender: the child's
/// name ends in one of `patterns` followed by `-?\d{10}` (kazoo's regex
/// `(?:P1|P2|…)(-?\d{10})$`, searched anywhere in the name). ZooKeeper's
/// sequence counter is a signed 32-bit integer printed as `%010d`, so after
/// 2^31 creations under one parent it reads `-2147483648`; the number is parsed
/// with its sign and compared as a number (kazoo compares the text: issue 730).
pub(crate) fn contender_seq(name: &str, patterns: &[String]) -> Option<i64> {
    let b = name.as_bytes();
    if b.len() < 10 || !b[b.len() - 10..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (rest, digits) = name.split_at(name.len() - 10);
    let n: i64 = digits.parse().ok()?;
    // kazoo's `-?` is greedy: a '-' before the digits belongs to the number
    // when the pattern still matches without it.
    if let Some(before) = rest.strip_suffix('-') {
        if patterns.iter().any(|p| before.ends_with(p.as_str())) {
            return Some(-n);
        }
    }
    if patterns.iter().any(|p| rest.ends_with(p.as_str())) {
        return Some(n);
    }
    None
}

/// Errors after which the same step is tried again once connected: the
/// connection dropped, the session expired (a new one follows under the
/// default expiry policy), or the client is throttled or its queue is full.
pub(crate) fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::ConnectionLoss
            | Error::Timeout
            | Error::NotConnected
            | Error::SessionExpired
            | Error::QueueFull
            | Error::OutboundFull
            | Error::WatchRemoved
            | Error::Server(
                ErrorCode::ThrottledOp
                    | ErrorCode::NotReadOnly
                    | ErrorCode::ConnectionLoss
                    | ErrorCode::SessionExpired
                    | ErrorCode::OperationTimeout
            )
    )
}

/// Waits until the client is connected, riding through an expiry under the
/// default `NewSession` policy. `Err` once the session can never come back.
pub(crate) async fn wait_connected(client: &Client) -> Result<()> {
    if client.state().is_connected() {
        return Ok(());
    }
    client.wait_connected().await
}

/// After a retryable error: if the client still looks connected (the error came
/// from a request that raced a state change), wait for the next state change so
/// a retry cannot spin; then wait until connected.
pub(crate) async fn settle(client: &Client, e: &Error) -> Result<()> {
    if client.state().is_connected()
        && matches!(
            e,
            Error::QueueFull
                | Error::OutboundFull
                | Error::Server(ErrorCode::ThrottledOp | ErrorCode::NotReadOnly)
        )
    {
        let pause = if matches!(e, Error::Server(ErrorCode::NotReadOnly)) {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(50)
        };
        let mut s = client.state_stream();
        let _ = s.next().await; // the current state
        let _ = Delay::new(pause).or(s.next()).await;
    }
    wait_connected(client).await
}

/// Runs `step` until it is not a retryable error, waiting for a connection
/// between tries.
pub(crate) async fn retrying<T, F, Fut>(client: &Client, mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    loop {
        match step().await {
            Err(e) if retryable(&e) => settle(client, &e).await?,
            r => return r,
        }
    }
}

/// The children of `path`; none when `path` does not exist (a recipe's
/// directory not made yet, or removed as an empty container).
pub(crate) async fn children_or_none(client: &Client, path: &str) -> Result<Vec<String>> {
    match client.get_children(path).await {
        Err(Error::Server(ErrorCode::NoNode)) => Ok(Vec::new()),
        r => r,
    }
}

/// The data of each of `kids` (names under `parent`), in their order, the
/// reads sent together; a child deleted before its read is left out, the first
/// other error ends it.
pub(crate) async fn children_data(
    client: &Client,
    parent: &str,
    kids: Vec<String>,
) -> Result<Vec<(String, Data)>> {
    let reads: Vec<_> = kids
        .iter()
        .map(|k| client.get_data(&join(parent, k)))
        .collect();
    let mut out = Vec::with_capacity(kids.len());
    for (k, r) in kids.into_iter().zip(reads) {
        match r.await {
            Ok((d, _)) => out.push((k, d)),
            Err(Error::Server(ErrorCode::NoNode)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// What a recipe shows as a member's or holder's id: its node's data as text.
pub(crate) fn data_text(d: &[u8]) -> String {
    String::from_utf8_lossy(d).into_owned()
}

/// A Java `UUID.randomUUID().toString()`: [`uuid_hex`] as `8-4-4-4-12`.
pub(crate) fn java_uuid() -> String {
    let h = uuid_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Resolves once `a` or `b` has (`a` asked first), their outputs dropped: a
/// recipe's wait for "the watch fired, or the connection state changed",
/// after which it reads again either way. zk-client's [`either`](zk_client::driver::either)
/// over futures whose outputs do not matter.
pub(crate) async fn either<A: Future, B: Future>(a: A, b: B) {
    let a = async {
        let _ = a.await;
    };
    let b = async {
        let _ = b.await;
    };
    zk_client::driver::either(a, b).await
}

/// The event `watch` fired with, or `None` once `change` (the next connection
/// state) came first or the watch ended without one: a holder's or a
/// waiter's wait on one node, after which it looks again.
pub(crate) async fn fired_or(watch: OneshotWatch, change: impl Future) -> Option<WatchedEvent> {
    let (mut watch, mut change) = (pin!(watch), pin!(change));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = watch.as_mut().poll(cx) {
            return Poll::Ready(r.ok());
        }
        change.as_mut().poll(cx).map(|_| None)
    })
    .await
}

// ------------------------------------------------------------------ timer

struct TimerState {
    entries: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    running: bool,
}

struct Timer {
    state: Mutex<TimerState>,
    cond: Condvar,
}

fn timer() -> &'static Timer {
    static T: OnceLock<Timer> = OnceLock::new();
    T.get_or_init(|| Timer {
        state: Mutex::new(TimerState {
            entries: BTreeMap::new(),
            next_id: 0,
            running: false,
        }),
        cond: Condvar::new(),
    })
}

/// The timer thread: wakes each [`Delay`] once its deadline passed.
fn timer_loop() {
    let t = timer();
    let mut s = lock(&t.state);
    loop {
        let now = now();
        let mut due = Vec::new();
        while let Some(e) = s.entries.first_entry() {
            if e.key().0 > now {
                break;
            }
            due.push(e.remove());
        }
        if !due.is_empty() {
            drop(s);
            due.into_iter().for_each(Waker::wake);
            s = lock(&t.state);
            continue;
        }
        s = match s.entries.keys().next().map(|k| k.0) {
            None => t.cond.wait(s).unwrap_or_else(|p| p.into_inner()),
            Some(at) => {
                t.cond
                    .wait_timeout(s, at.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

/// A future that resolves once `duration` has passed on the system clock,
/// without a runtime: one shared thread wakes every delay whose time is up.
pub(crate) struct Delay {
    deadline: Option<Instant>,
    id: Option<u64>,
}

impl Delay {
    /// `None`: never resolves.
    pub(crate) fn new_opt(duration: Option<Duration>) -> Delay {
        Delay {
            deadline: duration.and_then(|d| now().checked_add(d)),
            id: None,
        }
    }

    pub(crate) fn new(duration: Duration) -> Delay {
        Delay::new_opt(Some(duration))
    }

    /// `self` or `other`, whichever comes first (`None`: the delay did).
    pub(crate) fn or<F: Future>(self, other: F) -> impl Future<Output = Option<F::Output>> {
        let mut delay = self;
        let mut other = Box::pin(other);
        std::future::poll_fn(move |cx| {
            if let Poll::Ready(v) = other.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            Pin::new(&mut delay).poll(cx).map(|()| None)
        })
    }
}

impl Future for Delay {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        if now() >= deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let t = timer();
        let mut s = lock(&t.state);
        if !s.running {
            let started = std::thread::Builder::new()
                .name("zk-recipes-timer".into())
                .spawn(timer_loop);
            match started {
                Ok(_) => s.running = true,
                Err(e) => tracing::error!(error = %e, "could not start the recipes' timer thread"),
            }
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = s.next_id;
                s.next_id += 1;
                id
            }
        };
        let first = s.entries.keys().next().is_none_or(|k| k.0 > deadline);
        s.entries.insert((deadline, id), cx.waker().clone());
        drop(s);
        self.id = Some(id);
        if first {
            t.cond.notify_one();
        }
        Poll::Pending
    }
}

impl Delay {
    fn unregister(&mut self) {
        if let (Some(id), Some(d)) = (self.id.take(), self.deadline) {
            lock(&timer().state).entries.remove(&(d, id));
        }
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        self.unregister();
    }
}

// ------------------------------------------------------------------ cancel

/// Runs `body` (an acquisition) until it ends; [`Error::Interrupted`] once
/// `cancel` fires, `Ok(None)` once `limit` (`None`: none) has passed,
/// whichever comes first (`body` is asked first).
pub(crate) async fn cancellable<T>(
    body: impl Future<Output = Result<Option<T>>>,
    mut cancel: CancelWait,
    limit: Option<Duration>,
) -> Result<Option<T>> {
    let mut body = pin!(body);
    let mut deadline = pin!(Delay::new_opt(limit));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = body.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if cancel.poll_cancelled(cx).is_ready() {
            return Poll::Ready(Err(Error::Interrupted));
        }
        deadline.as_mut().poll(cx).map(|()| Ok(None))
    })
    .await
}

#[derive(Default)]
struct CancelState {
    generation: u64,
    /// The next [`CancelWait`]'s slot.
    next_slot: u64,
    /// The wakers of the waits under way, by slot. A wait takes its entry out
    /// when it ends or is dropped, so a long-lived recipe object keeps nothing
    /// of a finished acquisition (a plain list would keep one waker per
    /// acquiring task for the object's whole life).
    wakers: HashMap<u64, Waker>,
}

/// kazoo's `cancel()`: every wait that began before the call stops.
#[derive(Clone, Default)]
pub(crate) struct Cancel(Arc<Mutex<CancelState>>);

impl Cancel {
    pub(crate) fn generation(&self) -> u64 {
        lock(&self.0).generation
    }

    pub(crate) fn cancel(&self) {
        let wakers = {
            let mut s = lock(&self.0);
            s.generation += 1;
            std::mem::take(&mut s.wakers)
        };
        wakers.into_values().for_each(Waker::wake);
    }

    /// A wait that ends when [`cancel`](Self::cancel) is called after
    /// generation `since` (at once if it already was).
    pub(crate) fn wait(&self, since: u64) -> CancelWait {
        CancelWait {
            cancel: self.clone(),
            since,
            slot: None,
        }
    }
}

/// One wait on a [`Cancel`]: its waker is held only while it is pending.
pub(crate) struct CancelWait {
    cancel: Cancel,
    since: u64,
    slot: Option<u64>,
}

impl CancelWait {
    pub(crate) fn poll_cancelled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(&self.cancel.0);
        if s.generation != self.since {
            if let Some(slot) = self.slot.take() {
                s.wakers.remove(&slot);
            }
            return Poll::Ready(());
        }
        let slot = *self.slot.get_or_insert_with(|| {
            s.next_slot += 1;
            s.next_slot
        });
        match s.wakers.get_mut(&slot) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => {
                s.wakers.insert(slot, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for CancelWait {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            lock(&self.cancel.0).wakers.remove(&slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contender_names_follow_kazoo_regex() {
        let lock = pats(&["__lock__"]);
        assert_eq!(contender_seq("abc__lock__0000000007", &lock), Some(7));
        assert_eq!(
            contender_seq("abc__lock__-2147483648", &lock),
            Some(-2147483648)
        );
        assert_eq!(contender_seq("__lock__0000000001", &lock), Some(1));
        assert_eq!(contender_seq("abc__rlock__0000000007", &lock), None);
        assert_eq!(contender_seq("lease_holder", &lock), None);
        assert_eq!(contender_seq("abc__lock__000000007", &lock), None);
        assert_eq!(contender_seq("abc__lock__x0000000007", &lock), None);
        let curator = pats(&["__lock__", "-lock-"]);
        assert_eq!(
            contender_seq("_c_0f-a-b-lock-0000000012", &curator),
            Some(12)
        );
        assert_eq!(
            contender_seq("_c_0f-a-b-lock--0000000012", &curator),
            Some(-12)
        );
        assert_eq!(contender_seq("_c_0f-a-b-lock-0000000012", &lock), None);
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/"), None);
    }

    #[test]
    fn python_bytes_repr() {
        assert_eq!(py_bytes_repr(b"sem-c"), "b'sem-c'");
        assert_eq!(py_bytes_repr(b""), "b''");
        assert_eq!(py_bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(py_bytes_repr(b"a'\"b"), "b'a\\'\"b'");
        assert_eq!(py_bytes_repr("é\n\\".as_bytes()), "b'\\xc3\\xa9\\n\\\\'");
    }

    #[test]
    fn uuid_hex_looks_like_python_uuid4_hex() {
        let a = uuid_hex();
        let b = uuid_hex();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(&a[12..13], "4");
        assert!("89ab".contains(&a[16..17]), "{a}");
    }

    #[test]
    fn delay_fires_and_or_takes_the_first() {
        let t = now();
        zk_client::blocking::block_on(Delay::new(Duration::from_millis(30)), None).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(30));
        let r = zk_client::blocking::block_on(
            Delay::new(Duration::from_secs(30)).or(async { 5 }),
            None,
        );
        assert_eq!(r, Some(Some(5)));
        let r = zk_client::blocking::block_on(
            Delay::new(Duration::from_millis(10)).or(std::future::pending::<()>()),
            Some(Duration::from_secs(5)),
        );
        assert_eq!(r, Some(None));
    }
}
