//! Calls applied in call order: the async adapters' futures, and the blocking
//! adapter's `*_async` calls.

use zk_client::{CreateMode, CreateOptions, Error, ErrorCode, Perms};
use zk_tests::facade::{AsyncZk, BlockingZk, Runner, Zk};

use super::support::{base, connect_shared, unique, wait_until, N, WAIT};

/// 1,000 set_data calls, each followed by a get_data, made in sequence without spawning or
/// polling: the server applies them all before any future is polled, and each get sees the
/// value of the set made just before it. A future dropped unpolled still applies its write.
pub(crate) fn pipelined_in_call_order<R: Runner>() {
    let zk = connect_shared::<AsyncZk<R>>();
    let observer = connect_shared::<BlockingZk>();
    let p = unique::<AsyncZk<R>>("pipelined");
    zk.create(&p, "start", CreateMode::Persistent).unwrap();
    let c = zk.as_async().clone();
    let mut sets = Vec::with_capacity(N);
    let mut gets = Vec::with_capacity(N);
    for i in 0..N {
        sets.push(c.set_data(&p, i.to_string(), None));
        gets.push(c.get_data(&p));
    }
    // Nothing is polled yet, but every request was sent when it was made.
    wait_until(
        WAIT,
        "all writes applied before any future is polled",
        || {
            let v = observer.exists(&p).unwrap().expect("node").version;
            (v == N as i32).then_some(())
        },
    );
    let (set_results, get_results) = R::block_on(async move {
        let mut s = Vec::with_capacity(N);
        for f in sets {
            s.push(f.await);
        }
        let mut g = Vec::with_capacity(N);
        for f in gets {
            g.push(f.await);
        }
        (s, g)
    });
    for (i, (s, g)) in set_results.into_iter().zip(get_results).enumerate() {
        let st = s.unwrap_or_else(|e| panic!("set {i}: {e:?}"));
        assert_eq!(st.version, i as i32 + 1, "set {i}");
        let (d, st) = g.unwrap_or_else(|e| panic!("get {i}: {e:?}"));
        assert_eq!(
            d.to_str(),
            Some(i.to_string().as_str()),
            "get {i} did not see the set just before it"
        );
        assert_eq!(st.version, i as i32 + 1, "get {i}");
    }
    let (d, st) = zk.get_data(&p).unwrap();
    assert_eq!(d, (N - 1).to_string().as_str());
    assert_eq!(st.version, N as i32);

    // Dropped at once, never polled: the write is still applied.
    drop(c.set_data(&p, "dropped", None));
    let (d, st) = R::block_on(c.get_data(&p)).unwrap();
    assert_eq!(d, "dropped");
    assert_eq!(st.version, N as i32 + 1);
    assert_eq!(observer.get_data(&p).unwrap().0, "dropped");
    zk.delete(&p, None).unwrap();
    observer.close().unwrap();
    zk.close().unwrap();
}

pub(crate) fn blocking_async_pipelining() {
    let zk = connect_shared::<BlockingZk>();
    let b = base(&zk, "pending");
    let child = |i: usize| format!("{b}/n{i:04}");
    // All sent from this thread before the first wait.
    let creates: Vec<_> = (0..N)
        .map(|i| zk.create_async(&child(i), i.to_string(), CreateMode::Persistent))
        .collect();
    for (i, p) in creates.into_iter().enumerate() {
        assert_eq!(p.wait().unwrap(), child(i));
    }
    assert_eq!(zk.get_children(&b).unwrap().len(), N);
    assert_eq!(zk.get_all_children_number(&b).unwrap(), N as i32);

    let gets: Vec<_> = (0..N).map(|i| zk.get_async(&child(i))).collect();
    // Behind a thousand requests in flight, this one cannot be answered yet.
    let mut probe = zk.exists_async(&child(N - 1));
    assert!(
        probe.try_get().is_none(),
        "try_get: a result before the reply could have come"
    );
    let mut polls = 1;
    let r = wait_until(WAIT, "try_get gives the result", || {
        polls += 1;
        probe.try_get()
    });
    let st = r.unwrap().expect("the node exists");
    assert_eq!(st.version, 0);
    assert!(polls >= 2);
    assert!(
        probe.try_get().is_none(),
        "try_get gives the result only once"
    );
    for (i, p) in gets.into_iter().enumerate() {
        let (d, _) = p.wait_timeout(Some(WAIT)).unwrap();
        assert_eq!(d.to_str(), Some(i.to_string().as_str()), "get {i}");
    }
    // set_async and delete_async pipeline the same way, errors included.
    let sets: Vec<_> = (0..N)
        .map(|i| zk.set_async(&child(i), "s", Some(if i % 2 == 0 { 0 } else { 7 })))
        .collect();
    for (i, p) in sets.into_iter().enumerate() {
        match (i % 2, p.wait()) {
            (0, Ok(st)) => assert_eq!(st.version, 1),
            (1, Err(Error::Server(ErrorCode::BadVersion))) => {}
            (_, r) => panic!("set {i}: {r:?}"),
        }
    }
    let deletes: Vec<_> = (0..N).map(|i| zk.delete_async(&child(i), None)).collect();
    for p in deletes {
        p.wait().unwrap();
    }
    assert!(zk.get_children(&b).unwrap().is_empty());
    zk.delete(&b, None).unwrap();

    // add_auth_async: the credential is in force once it is answered, and the node a
    // digest ACL guards is this client's, not another's.
    let guarded = format!("{b}-guarded");
    zk.add_auth_async("digest", "pipeliner:pw").wait().unwrap();
    let opts = CreateOptions {
        acl: Some(vec![zk_client::make_digest_acl(
            "pipeliner",
            "pw",
            Perms::ALL,
        )]),
        ..CreateOptions::mode(CreateMode::Persistent)
    };
    zk.create_with(&guarded, "g", &opts).unwrap();
    let stranger = connect_shared::<BlockingZk>();
    assert_eq!(
        stranger.get_data(&guarded).unwrap_err(),
        Error::Server(ErrorCode::NoAuth)
    );
    assert_eq!(&zk.get_data(&guarded).unwrap().0[..], b"g");
    zk.delete(&guarded, None).unwrap();
    stranger.close().unwrap();
    zk.close().unwrap();
}
