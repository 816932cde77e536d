//! The blocking adapter's transaction.

use zk_client::{Acl, CreateMode, Data, Error, ErrorCode, OpResult, Perms, Result};
use zk_tests::facade::BlockingZk;

use super::support::{base, connect_shared};

/// What a failing transaction reports: the failing op's index and code, and every op's
/// result; panics on any other outcome.
fn failed<T: std::fmt::Debug>(r: Result<T>) -> (usize, ErrorCode, Vec<OpResult>) {
    match r {
        Err(Error::MultiFailed {
            index,
            code,
            results,
        }) => (index, code, results),
        other => panic!("failing transaction: {other:?}"),
    }
}

pub(crate) fn blocking_transaction() {
    let zk = connect_shared::<BlockingZk>();
    let stranger = connect_shared::<BlockingZk>();
    let b = base(&zk, "txn");
    let a = format!("{b}/a");
    let ro = format!("{b}/read-only");
    let seq = format!("{b}/s-");
    let txn = zk
        .transaction()
        .create(&a, "1", CreateMode::Persistent)
        .create_with_acl(&ro, "ro", Acl::read_unsafe(), CreateMode::Persistent)
        .check(&a, 0)
        .set_data(&a, "2", Some(0))
        .create(&seq, Data::null(), CreateMode::PersistentSequential);
    assert_eq!(txn.ops().len(), 5);
    let res = txn.commit().unwrap();
    assert_eq!(res.len(), 5, "{res:?}");
    assert!(
        matches!(&res[0], OpResult::Create { path, .. } if *path == a),
        "{res:?}"
    );
    assert!(
        matches!(&res[1], OpResult::Create { path, .. } if *path == ro),
        "{res:?}"
    );
    assert_eq!(res[2], OpResult::Check);
    assert!(
        matches!(&res[3], OpResult::SetData(s) if s.version == 1),
        "{res:?}"
    );
    assert!(
        matches!(&res[4], OpResult::Create { path, .. } if *path == format!("{seq}0000000002")),
        "{res:?}"
    );
    // Applied, as another client sees it; the per-op ACL holds.
    assert_eq!(stranger.get_data(&a).unwrap().0, "2");
    let (acl, _) = stranger.get_acl(&ro).unwrap();
    assert_eq!(acl, Acl::read_unsafe());
    assert!(acl[0].perms.contains(Perms::READ) && !acl[0].perms.contains(Perms::WRITE));
    assert_eq!(stranger.get_data(&ro).unwrap().0, "ro");
    assert!(matches!(
        stranger.set_data(&ro, "x", None),
        Err(Error::Server(ErrorCode::NoAuth))
    ));

    // A failing check (a's version is 1): nothing applied, every op has a result.
    let never = format!("{b}/never");
    let r = zk
        .transaction()
        .create(&never, "", CreateMode::Persistent)
        .check(&a, 0)
        .set_data(&a, "3", None)
        .commit();
    let (index, code, results) = failed(r);
    assert_eq!((index, code), (1, ErrorCode::BadVersion), "{results:?}");
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[1], OpResult::Error(ErrorCode::BadVersion));
    // The others are rolled back: reported as errors too, not as applied.
    for i in [0, 2] {
        assert!(
            matches!(results[i], OpResult::Error(c) if c != ErrorCode::BadVersion),
            "op {i}: {results:?}"
        );
    }
    assert!(
        stranger.exists(&never).unwrap().is_none(),
        "nothing applied"
    );
    let (d, st) = stranger.get_data(&a).unwrap();
    assert_eq!((d.to_str(), st.version), (Some("2"), 1), "nothing applied");

    // The failing op is the last: its index is reported.
    let r = zk
        .transaction()
        .set_data(&a, "4", Some(1))
        .delete(&ro, None)
        .create(&a, "", CreateMode::Persistent)
        .commit_async()
        .wait();
    let (index, code, results) = failed(r);
    assert_eq!((index, code), (2, ErrorCode::NodeExists), "{results:?}");
    assert_eq!(results.len(), 3);
    assert_eq!(stranger.get_data(&a).unwrap().1.version, 1);
    assert!(stranger.exists(&ro).unwrap().is_some());
    zk.delete_recursive(&b).unwrap();
    stranger.close().unwrap();
    zk.close().unwrap();
}
