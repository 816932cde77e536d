//! The retry helpers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use zk_client::retry::{Idempotence, Interrupt, RetryPolicy};
use zk_client::{ClientBuilder, CreateMode, Error, ErrorCode, Result};
use zk_tests::facade::{AsyncZk, BlockingZk, Zk};
use zk_tests::server::shared_server;

use super::support::{connect, connect_shared, unique, Ext};

/// Interrupts `flag` 300 ms from now, from a thread of its own.
fn interrupt_later(flag: &Interrupt) -> thread::JoinHandle<()> {
    let flag = flag.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        flag.interrupt();
    })
}

pub(crate) fn retry_blocking() {
    let cs = shared_server().connect_string();
    let zk = connect_shared::<BlockingZk>();
    let p = unique::<BlockingZk>("retry");
    zk.create(&p, "r", CreateMode::Persistent).unwrap();
    let stat = zk.retry(Idempotence::Safe, |zk| zk.exists(&p)).unwrap();
    assert_eq!(stat.expect("the node exists").data_length, 1);

    let policy = RetryPolicy {
        max_tries: Some(3),
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    };
    let mut n = 0;
    let r: Result<()> = zk.retry_with(&policy, Idempotence::Safe, |_| {
        n += 1;
        Err(Error::ConnectionLoss)
    });
    assert_eq!(
        r,
        Err(Error::RetryFailed {
            attempts: 3,
            last: Box::new(Error::ConnectionLoss)
        })
    );
    assert_eq!(n, 3);
    // A plain write is not repeated after an unknown outcome.
    let mut n = 0;
    let r: Result<()> = zk.retry_with(&policy, Idempotence::Write, |_| {
        n += 1;
        Err(Error::ConnectionLoss)
    });
    assert_eq!((n, r), (1, Err(Error::ConnectionLoss)));

    // An Interrupt set from another thread stops an unlimited loop.
    let flag = Interrupt::new();
    let forever = RetryPolicy {
        delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::forever()
    }
    .with_interrupt(flag.clone());
    let setter = interrupt_later(&flag);
    let t = Instant::now();
    let mut n = 0u32;
    let r: Result<()> = zk.retry_with(&forever, Idempotence::Safe, |_| {
        n += 1;
        if t.elapsed() > Duration::from_secs(20) {
            // Never interrupted: end the loop with an error the assert below names.
            return Err(Error::Server(ErrorCode::SystemError));
        }
        Err(Error::ConnectionLoss)
    });
    assert_eq!(r, Err(Error::Interrupted), "after {n} attempts");
    assert!(n > 5, "unlimited tries went past the default 5: {n}");
    setter.join().unwrap();

    // retry() uses the builder's command retry policy.
    let two = connect::<BlockingZk>(&ClientBuilder::new(&cs).command_retry(RetryPolicy {
        max_tries: Some(2),
        delay: Duration::from_millis(10),
        ..Default::default()
    }));
    let mut n = 0;
    let r: Result<()> = two.retry(Idempotence::Safe, |_| {
        n += 1;
        Err(Error::ConnectionLoss)
    });
    assert!(
        matches!(r, Err(Error::RetryFailed { attempts: 2, .. })),
        "{r:?}"
    );
    assert_eq!(n, 2);

    // The async client under a blocking one retries too; its sleeps between tries
    // run on the shared I/O thread's timers (no thread per sleep): three tries
    // 150 ms apart take at least 300 ms (jitter off).
    let paced = connect::<BlockingZk>(&ClientBuilder::new(&cs).command_retry(RetryPolicy {
        max_tries: Some(3),
        delay: Duration::from_millis(150),
        max_delay: Duration::from_millis(150),
        backoff: 1.0,
        max_jitter: 0.0,
        ..Default::default()
    }));
    let tries = AtomicUsize::new(0);
    let t = Instant::now();
    let r: Result<()> = zk_client::blocking::block_on(
        paced.as_async().retry(Idempotence::Safe, || {
            tries.fetch_add(1, Ordering::SeqCst);
            async { Err(Error::ConnectionLoss) }
        }),
        Some(Duration::from_secs(20)),
    )
    .expect("the async retry did not finish");
    let took = t.elapsed();
    assert!(
        matches!(r, Err(Error::RetryFailed { attempts: 3, .. })),
        "{r:?}"
    );
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert!(took >= Duration::from_millis(300), "slept {took:?} in all");
    paced.close().unwrap();
    two.close().unwrap();
    zk.delete(&p, None).unwrap();
    zk.close().unwrap();
}

pub(crate) fn retry_async<R: Ext>() {
    let cs = shared_server().connect_string();
    let zk = connect_shared::<AsyncZk<R>>();
    let c = zk.as_async().clone();
    let p = unique::<AsyncZk<R>>("retry");
    zk.create(&p, "r", CreateMode::Persistent).unwrap();
    let stat = R::retry(&c, Idempotence::Safe, || c.exists(&p)).unwrap();
    assert_eq!(stat.expect("the node exists").data_length, 1);

    // The builder's policy: 3 tries.
    let three = connect::<AsyncZk<R>>(&ClientBuilder::new(&cs).command_retry(RetryPolicy {
        max_tries: Some(3),
        delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    }));
    let mut n = 0;
    let r: Result<()> = R::retry(three.as_async(), Idempotence::Safe, || {
        n += 1;
        std::future::ready(Err(Error::ConnectionLoss))
    });
    assert_eq!(
        r,
        Err(Error::RetryFailed {
            attempts: 3,
            last: Box::new(Error::ConnectionLoss)
        })
    );
    assert_eq!(n, 3);
    three.close().unwrap();

    // Unlimited, stopped by an Interrupt from another thread.
    let flag = Interrupt::new();
    let forever = connect::<AsyncZk<R>>(
        &ClientBuilder::new(&cs).command_retry(
            RetryPolicy {
                delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                ..RetryPolicy::forever()
            }
            .with_interrupt(flag.clone()),
        ),
    );
    let setter = interrupt_later(&flag);
    let t = Instant::now();
    let mut n = 0u32;
    let r: Result<()> = R::retry(forever.as_async(), Idempotence::Safe, || {
        n += 1;
        std::future::ready(if t.elapsed() > Duration::from_secs(20) {
            Err(Error::Server(ErrorCode::SystemError))
        } else {
            Err(Error::ConnectionLoss)
        })
    });
    assert_eq!(r, Err(Error::Interrupted), "after {n} attempts");
    assert!(n > 5, "unlimited tries went past the default 5: {n}");
    setter.join().unwrap();
    forever.close().unwrap();
    zk.delete(&p, None).unwrap();
    zk.close().unwrap();
}
