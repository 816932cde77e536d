//! The chroot getter.

use zk_client::{ClientBuilder, CreateMode};
use zk_tests::facade::{BlockingZk, Zk};
use zk_tests::server::shared_server;

use super::support::{connect, connect_shared, unique};

pub(crate) fn chroot_getter<Z: Zk>() {
    let cs = shared_server().connect_string();
    let chroot = format!("{}/some/chroot", unique::<Z>("chroot"));
    let zk = connect::<Z>(&ClientBuilder::new(&format!("{cs}{chroot}")));
    assert_eq!(zk.as_async().chroot().as_deref(), Some(chroot.as_str()));
    zk.ensure_path("/").unwrap();
    assert_eq!(zk.as_async().chroot().as_deref(), Some(chroot.as_str()));
    let plain = connect_shared::<Z>();
    assert_eq!(plain.as_async().chroot(), None);
    assert!(
        plain.exists(&chroot).unwrap().is_some(),
        "ensure_path created the chroot"
    );
    // The getter names the prefix the server really applies.
    zk.create("/inside", "c", CreateMode::Persistent).unwrap();
    assert_eq!(plain.get_data(&format!("{chroot}/inside")).unwrap().0, "c");
    plain
        .delete_recursive(chroot.rsplit_once("/some").unwrap().0)
        .unwrap();
    zk.close().unwrap();
    plain.close().unwrap();
}

pub(crate) fn blocking_chroot_getter() {
    chroot_getter::<BlockingZk>();
    let cs = shared_server().connect_string();
    let chroot = format!("{}/some/chroot", unique::<BlockingZk>("chroot"));
    let zk = connect::<BlockingZk>(&ClientBuilder::new(&format!("{cs}{chroot}")));
    assert_eq!(zk.chroot().as_deref(), Some(chroot.as_str()));
    assert_eq!(connect_shared::<BlockingZk>().chroot(), None);
    zk.close().unwrap();
}
