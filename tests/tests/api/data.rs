//! Null data and empty data, kept apart by every write and read.

use zk_client::{CreateMode, CreateOptions, Data, Op, OpResult, ReadOp, ReadResult};
use zk_tests::facade::Zk;

use super::support::{base, connect_shared, read};

/// Null data and empty data stay apart through create, set_data, multi and multi_read,
/// written by one adapter and read back by it and by a client of another adapter.
pub(crate) fn null_and_empty_data<Z: Zk, W: Zk>() {
    let zk = connect_shared::<Z>();
    let other = connect_shared::<W>();
    let b = base(&zk, "nulldata");
    let n = format!("{b}/null");
    let e = format!("{b}/empty");
    zk.create(&n, Data::null(), CreateMode::Persistent).unwrap();
    zk.create(&e, "", CreateMode::Persistent).unwrap();
    let (d, _) = zk.get_data(&n).unwrap();
    assert!(d.is_null(), "{}: {d:?}", Z::NAME);
    let (d, _) = zk.get_data(&e).unwrap();
    assert!(!d.is_null() && d.is_empty(), "{}: {d:?}", Z::NAME);
    assert_eq!(d, Data::new(""));
    for (path, want) in [(&n, None), (&e, Some(vec![]))] {
        assert_eq!(read(&zk, path), want, "{} reads {path}", Z::NAME);
        assert_eq!(read(&other, path), want, "{} reads {path}", W::NAME);
    }
    // A watch read sees the same.
    let (d, _, _w) = zk.get_data_watch(&n).unwrap();
    assert!(d.is_null(), "get_data_watch: {d:?}");

    // set_data to null and back, each direction seen by both clients.
    let st = zk.set_data(&e, Data::null(), None).unwrap();
    assert_eq!((st.version, st.data_length), (1, 0));
    assert_eq!(read(&zk, &e), None);
    assert_eq!(read(&other, &e), None);
    zk.set_data(&e, "", None).unwrap();
    assert_eq!(read(&zk, &e), Some(vec![]));
    assert_eq!(read(&other, &e), Some(vec![]));
    zk.set_data(&n, "x", None).unwrap();
    assert_eq!(read(&other, &n), Some(b"x".to_vec()));
    // The other adapter writes null; this one reads it.
    other.set_data(&n, Data::null(), Some(1)).unwrap();
    assert_eq!(read(&zk, &n), None);

    // A transaction creating with null data (and setting null data).
    let m = format!("{b}/multi-null");
    let m2 = format!("{b}/multi-empty");
    let res = zk
        .multi(vec![
            Op::create(&m, Data::null(), CreateMode::Persistent),
            Op::create(&m2, "", CreateMode::Persistent),
            Op::set_data(&e, Data::null(), Some(2)),
        ])
        .unwrap();
    assert_eq!(res.len(), 3);
    assert!(matches!(&res[0], OpResult::Create { path, .. } if *path == m));
    assert!(matches!(&res[2], OpResult::SetData(s) if s.version == 3));
    assert_eq!(read(&zk, &m), None);
    assert_eq!(read(&other, &m), None);
    assert_eq!(read(&other, &m2), Some(vec![]));
    assert_eq!(read(&other, &e), None);

    // create_with keeps null too.
    let c = format!("{b}/create-with-null");
    let (_, st) = zk
        .create_with(&c, Data::null(), &CreateOptions::default())
        .unwrap();
    assert_eq!(st.data_length, 0);
    assert_eq!(read(&other, &c), None);

    // multi_read's GetData keeps them apart as well.
    let reads = other
        .multi_read(vec![
            ReadOp::GetData(m.clone()),
            ReadOp::GetData(m2.clone()),
        ])
        .unwrap();
    assert!(
        matches!(&reads[0], Ok(ReadResult::Data(d, _)) if d.is_null()),
        "{:?}",
        reads[0]
    );
    assert!(
        matches!(&reads[1], Ok(ReadResult::Data(d, _)) if !d.is_null() && d.is_empty()),
        "{:?}",
        reads[1]
    );
    zk.delete_recursive(&b).unwrap();
    other.close().unwrap();
    zk.close().unwrap();
}
