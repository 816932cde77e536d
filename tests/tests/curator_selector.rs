//! zk-recipes' Curator `LeaderSelector` and `InterProcessSemaphoreMutex`
//! against Apache Curator 5.4 in a JVM, on a real ZooKeeper 3.8 server, for
//! every adapter: a Java `LeaderSelector` (auto-requeued) and a Rust one take
//! turns, exactly one leading at every step, both listing the same
//! participants with their ids; a Rust term whose session expires is
//! cancelled (the async term dropped, the blocking one told) and Java leads;
//! the Rust selector queues again under its new session. Leadership
//! interrupted from outside (Java's `interruptLeadership`, Rust's
//! `interrupt_leadership`) passes to the other side. Java's and Rust's
//! semaphore mutexes exclude each other both ways.

mod recipes_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use recipes_common::locks::give;
use recipes_common::{either, eventually, run, unique, Adapter, WAIT};
use tokio::sync::oneshot;
use zk_client::SessionInfo;
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{InterProcessSemaphoreMutex, LeaderSelector, Participant};

/// Set while a term runs; cleared however the term ends (even dropped).
struct Flag(Arc<AtomicBool>);

impl Flag {
    fn set(f: &Arc<AtomicBool>) -> Flag {
        assert!(!f.swap(true, Ordering::SeqCst), "two Rust terms at once");
        Flag(f.clone())
    }
}

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What the contender thread tells the test when a term begins.
struct Term {
    stop: oneshot::Sender<()>,
    token: i64,
    session: SessionInfo,
}

impl Term {
    /// A Rust term begins (fencing token `token`): marks it running until
    /// the flag returned drops, and tells the test, with the session it
    /// leads on and the sender that ends it.
    fn begin(
        leading: &Arc<AtomicBool>,
        terms: &mpsc::Sender<Term>,
        zk: &zk_client::Client,
        stop: oneshot::Sender<()>,
        token: i64,
    ) -> Flag {
        let f = Flag::set(leading);
        let session = zk.session().unwrap();
        terms
            .send(Term {
                stop,
                token,
                session,
            })
            .unwrap();
        f
    }
}

fn show(ps: &[Participant]) -> String {
    ps.iter()
        .map(|p| format!("{}{}", p.id, if p.is_leader { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(",")
}

/// The shared server's connect string, a selector path of its own (tagged
/// `tag`), and a Curator peer whose selector `js` (id `java-sel`) leads on it.
fn java_leads<Z: Adapter>(tag: &str) -> (String, String, Curator) {
    let cs = shared_server().connect_string();
    let path = format!("{}/sel", unique(tag, Z::NAME));
    let mut java = Curator::start(&cs);
    java.ok(&format!("selector js c {path} java-sel"));
    assert!(java.event("lead js", WAIT).is_some(), "Java did not lead");
    (cs, path, java)
}

/// Java's selector ends its term (and queues again).
fn java_abdicates(java: &mut Curator) {
    java.ok("abdicate js");
    assert!(java.event("unlead js", WAIT).is_some());
}

fn selector_turns<Z: Adapter>() {
    let (cs, path, mut java) = java_leads::<Z>("curator-sel");

    let leading = Arc::new(AtomicBool::new(false));
    let (term_tx, terms) = mpsc::channel::<Term>();
    let (l2, cs2, p2) = (leading.clone(), cs.clone(), path.clone());
    let contender = thread::spawn(move || {
        let zk = Z::connect_to(&cs2);
        let sel = LeaderSelector::new(zk.as_async(), &p2, "rust-sel").unwrap();
        let mut out = Vec::new();
        for _ in 0..3 {
            let (stop, mut rx) = oneshot::channel();
            let (leading, term_tx, zk2) = (l2.clone(), term_tx.clone(), zk.as_async().clone());
            let r = if Z::NAME == "blocking" {
                sel.run_blocking(move |l| {
                    let _f = Term::begin(&leading, &term_tx, &zk2, stop, l.fencing_token());
                    // A thread's term looks at its leadership as it goes.
                    while l.is_held() && rx.try_recv().is_err() {
                        thread::sleep(Duration::from_millis(5));
                    }
                })
            } else {
                Z::exec(sel.run(move |l| async move {
                    let _f = Term::begin(&leading, &term_tx, &zk2, stop, l.fencing_token());
                    let _ = rx.await;
                }))
            }
            .unwrap();
            out.push(r.is_some());
        }
        let ps = if Z::NAME == "blocking" {
            sel.participants_blocking()
        } else {
            Z::exec(sel.participants())
        }
        .unwrap();
        zk.close().unwrap();
        (out, ps)
    });
    let one_leader = |java: &mut Curator, rust: bool, order: &str| {
        let j = java.ok("selLeading js") == "true";
        assert_eq!(
            (j, leading.load(Ordering::SeqCst)),
            (!rust, rust),
            "not exactly one leader"
        );
        eventually(WAIT, &format!("Java lists {order}"), || {
            java.ok("selParticipants js") == order
        });
    };

    // Rust queues behind the Java leader; both list the same participants.
    let admin = Z::connect_to(&cs);
    eventually(WAIT, "Rust queued", || {
        admin.get_children(&path).map(|k| k.len()).unwrap_or(0) == 2
    });
    one_leader(&mut java, false, "java-sel*,rust-sel");

    // Java abdicates (and re-queues): Rust's next term begins, Rust alone leads.
    let rust_term = |java: &mut Curator, which: &str| {
        java_abdicates(java);
        let t = terms.recv_timeout(WAIT).expect(which);
        one_leader(java, true, "rust-sel*,java-sel");
        t
    };
    // Java's selector leads again, alone.
    let java_again = |java: &mut Curator, what: &str| {
        assert!(java.event("lead js", WAIT).is_some(), "{what}");
        one_leader(java, false, "java-sel*,rust-sel");
    };

    // 1. Java abdicates (and re-queues): Rust leads until told to stop.
    let t1 = rust_term(&mut java, "Rust's first term");
    t1.stop.send(()).unwrap();
    java_again(&mut java, "Java did not lead again");

    // 2. Again; then Rust's session expires mid-term: the term is cancelled
    //    and Java leads.
    let t2 = rust_term(&mut java, "Rust's second term");
    assert!(t2.token > t1.token, "the fencing token did not rise");
    kill_session(&cs, &t2.session, WAIT).unwrap();
    eventually(WAIT, "the expired Rust term ended", || {
        !leading.load(Ordering::SeqCst)
    });
    java_again(&mut java, "Java did not take over");

    // 3. Rust queued again under its new session; one more turn.
    let t3 = rust_term(&mut java, "Rust's third term");
    assert_ne!(t3.session.id, t2.session.id);
    t3.stop.send(()).unwrap();
    let (terms_led, ps) = contender.join().unwrap();
    assert_eq!(
        terms_led,
        [true, false, true],
        "which terms ran to their end"
    );
    assert!(java.event("lead js", WAIT).is_some());
    assert_eq!(show(&ps), "java-sel*", "Rust's view after its last term");
    java_abdicates(&mut java);
    java.ok("selClose js");
    admin.close().unwrap();
}

/// Java leads; Java interrupts its own term: Rust leads. The test thread
/// interrupts Rust's term: the term ends (`run` returns `None`), Java leads,
/// and Rust, running again, queues behind it. Twice, so that a term begun
/// after an interrupt is not born interrupted.
fn interrupt_leadership<Z: Adapter>() {
    let (cs, path, mut java) = java_leads::<Z>("curator-sel-int");

    let zk = Z::connect_to(&cs);
    let sel = LeaderSelector::new(zk.as_async(), &path, "rust-sel").unwrap();
    let (began, terms) = mpsc::channel::<()>();
    let (ended, ends) = mpsc::channel::<bool>();
    let contender = {
        let sel = sel.clone();
        thread::spawn(move || {
            for _ in 0..2 {
                let began = began.clone();
                let r = if Z::NAME == "blocking" {
                    sel.run_blocking(move |l| {
                        began.send(()).unwrap();
                        while l.is_held() {
                            thread::sleep(Duration::from_millis(5));
                        }
                        assert!(l.is_interrupted(), "the term ended otherwise");
                    })
                } else {
                    Z::exec(sel.run(move |_| async move {
                        began.send(()).unwrap();
                        std::future::pending::<()>().await
                    }))
                }
                .unwrap();
                ended.send(r.is_some()).unwrap();
            }
        })
    };
    eventually(WAIT, "Rust queued", || {
        zk.get_children(&path).map(|k| k.len()).unwrap_or(0) == 2
    });
    assert!(!sel.has_leadership());

    for turn in 0..2 {
        // Java's term is interrupted from outside: Rust leads.
        java.ok("selInterrupt js");
        assert!(
            java.event("unlead js", WAIT).is_some(),
            "Java's term went on"
        );
        terms
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("turn {turn}: Rust did not lead"));
        assert!(sel.has_leadership());
        assert_eq!(java.ok("selLeading js"), "false", "two leaders");
        eventually(WAIT, "Java lists rust-sel*,java-sel", || {
            java.ok("selParticipants js") == "rust-sel*,java-sel"
        });

        // Rust's term is interrupted from outside: it ends, Java leads.
        sel.interrupt_leadership();
        let ran_out = ends
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("turn {turn}: the interrupted Rust term went on"));
        assert!(!ran_out, "an interrupted term counted as run to its end");
        assert!(
            java.event("lead js", WAIT).is_some(),
            "turn {turn}: Java did not lead after Rust's term was interrupted"
        );
        assert!(!sel.has_leadership());
        if turn == 0 {
            eventually(WAIT, "Rust queued again", || {
                java.ok("selParticipants js") == "java-sel*,rust-sel"
            });
        }
    }
    contender.join().unwrap();
    java_abdicates(&mut java);
    java.ok("selClose js");
    zk.close().unwrap();
}

fn semaphore_mutex<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = format!("{}/sm", unique("curator-sm", Z::NAME));
    let mut java = Curator::start(&cs);
    java.ok(&format!("semMutex jm c {path}"));
    assert_eq!(java.ok("smAcquire jm 5000"), "true");
    let zk = Z::connect_to(&cs);
    let m = InterProcessSemaphoreMutex::new(zk.as_async(), &path).unwrap();
    let take = |ms: u64| {
        let limit = Duration::from_millis(ms);
        either::<Z, _, _>(
            || m.acquire_blocking(Some(limit)),
            || m.acquire_timeout(limit),
        )
        .unwrap()
    };
    assert!(take(300).is_none(), "Rust got the mutex Java holds");
    let waiter = java.send("smRelease jm");
    assert_eq!(java.answer(waiter, WAIT), Some(Ok("released".into())));
    let l = take(10_000).expect("Rust did not get the released mutex");
    java.waits_for_release("smAcquire jm", "Java got the mutex Rust holds", || {
        give::<Z, _>(l)
    });
    java.ok("smRelease jm");
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [selector_turns, interrupt_leadership, semaphore_mutex]);
