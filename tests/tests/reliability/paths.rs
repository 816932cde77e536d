//! Paths: `ensure_path` under a missing chroot and without CREATE permission, and
//! the config node under a chroot.

use zk_client::{Acl, ClientBuilder, CreateMode, Error, ErrorCode, Perms};
use zk_tests::server::shared_server;

use super::adapter::Adapter;
use super::support::{check, connect_shared, connect_to, unique};

pub(crate) fn ensure_path_under_missing_chroot<Z: Adapter>() {
    let root = connect_shared::<Z>();
    let base = unique::<Z>("fresh");
    assert!(
        root.exists(&base).unwrap().is_none(),
        "{base} must not exist yet"
    );
    let zk = connect_to::<Z>(&ClientBuilder::new(&format!(
        "{}{base}/app",
        shared_server().connect_string()
    )));
    let r = zk.ensure_path("/a/b");
    let full = format!("{base}/app/a/b");
    let created = root.exists(&full).unwrap().is_some();
    let chroot_made = root.exists(&format!("{base}/app")).unwrap().is_some();
    let _ = root.delete_recursive(&base);
    zk.close().unwrap();
    root.close().unwrap();
    assert!(
        r.is_ok() && created,
        "{}: ensure_path(\"/a/b\") under the missing chroot {base}/app returned {r:?}; \
         {full} exists: {created}; chroot {base}/app exists: {chroot_made}",
        Z::NAME
    );
}

pub(crate) fn ensure_path_existing_without_create_perm<Z: Adapter>() {
    let admin = connect_shared::<Z>();
    let locked = unique::<Z>("locked");
    let child = format!("{locked}/child");
    admin.create(&locked, "", CreateMode::Persistent).unwrap();
    admin.create(&child, "", CreateMode::Persistent).unwrap();
    admin
        .set_acl(
            &locked,
            vec![Acl::new(Perms::READ, "world", "anyone")],
            None,
        )
        .unwrap();
    let (acl, _) = admin.get_acl(&locked).unwrap();
    assert_eq!(acl, vec![Acl::new(Perms::READ, "world", "anyone")]);
    let zk = connect_shared::<Z>();
    // The ACL is in force: nothing new can be created under it.
    let refused = zk.create(&format!("{locked}/other"), "", CreateMode::Persistent);
    assert_eq!(
        refused.as_ref().err().map(Error::code),
        Some(ErrorCode::NoAuth),
        "{}: a create under a READ-only node: {refused:?}",
        Z::NAME
    );
    let r = zk.ensure_path(&child);
    zk.close().unwrap();
    admin.close().unwrap();
    // (The READ-only nodes stay: nobody may delete below them. The server is a throwaway.)
    assert!(
        r.is_ok(),
        "{}: ensure_path({child:?}) of an existing node under a READ-only parent: {r:?}",
        Z::NAME
    );
}

pub(crate) fn chroot_config_node<Z: Adapter>() {
    let root = connect_shared::<Z>();
    let base = unique::<Z>("cfg");
    root.create(&base, "", CreateMode::Persistent).unwrap();
    let zk = connect_to::<Z>(&ClientBuilder::new(&format!(
        "{}{base}",
        shared_server().connect_string()
    )));
    zk.ensure_path("/zookeeper").unwrap();
    let created = zk
        .create("/zookeeper/config", "mine", CreateMode::Persistent)
        .unwrap();
    assert_eq!(created, "/zookeeper/config");
    let (inside, _) = root
        .get_data(&format!("{base}/zookeeper/config"))
        .unwrap_or_else(|e| panic!("the chrooted create made no {base}/zookeeper/config: {e:?}"));
    assert_eq!(&inside[..], b"mine");
    let (real, _) = root.get_config().unwrap();
    assert_ne!(&real[..], b"mine");

    let mut failures = Vec::new();
    match zk.get_data("/zookeeper/config") {
        Ok((d, _)) if &d[..] == b"mine" => {}
        other => failures.push(format!(
            "get_data(\"/zookeeper/config\") inside the chroot {base} returned {:?}, not the \
             chrooted node's \"mine\"",
            other.map(|(d, s)| (String::from_utf8_lossy(&d).into_owned(), s.czxid))
        )),
    }
    match zk.get_config() {
        Ok((d, _)) if d == real => {}
        other => failures.push(format!(
            "get_config() inside the chroot returned {:?}, not the server's config {:?}",
            other.map(|(d, _)| String::from_utf8_lossy(&d).into_owned()),
            String::from_utf8_lossy(&real)
        )),
    }
    let _ = root.delete_recursive(&base);
    zk.close().unwrap();
    root.close().unwrap();
    check(&format!("{} chroot_config_node", Z::NAME), failures);
}
