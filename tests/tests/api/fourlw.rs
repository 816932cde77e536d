//! Four-letter words on the server the client is connected to.

use std::time::Duration;

use zk_client::fourlw::ServerVersion;
use zk_client::{Error, Result};
use zk_tests::facade::{AsyncZk, BlockingZk, Zk};

use super::support::{connect_shared, Ext};

/// `command` runs on the server the session is on: `ruok` answers `imok`, `cons` lists this
/// very session, and `server_version` carries the full string.
pub(crate) fn command_on_current_server<Z: Zk>(
    command: impl Fn(&Z, &str) -> Result<String>,
    version: impl Fn(&Z) -> Result<ServerVersion>,
) {
    let zk = connect_shared::<Z>();
    assert_eq!(command(&zk, "ruok").unwrap(), "imok");
    let sid = zk.session().unwrap().id;
    let cons = command(&zk, "cons").unwrap();
    assert!(
        cons.contains(&format!("sid=0x{sid:x}")),
        "{}: cons does not list session 0x{sid:x}:\n{cons}",
        Z::NAME
    );
    assert!(command(&zk, "srvr").unwrap().contains("Mode: standalone"));
    assert!(matches!(
        command(&zk, "bad\n"),
        Err(Error::InvalidArgument(_))
    ));
    let v = version(&zk).unwrap();
    assert!(v.full.starts_with("3."), "{v:?}");
    assert!(v.full.contains("built on"), "{v:?}");
    assert_eq!((v.major, v.minor), (3, 8), "{v:?}");
    assert!(
        v.full
            .starts_with(&format!("{}.{}.{}", v.major, v.minor, v.patch)),
        "{v:?}"
    );
    zk.close().unwrap();
}

pub(crate) fn command_async<R: Ext>() {
    command_on_current_server::<AsyncZk<R>>(
        |zk, cmd| R::command(zk.as_async(), cmd),
        |zk| R::version(zk.as_async()),
    );
}

pub(crate) fn command_blocking() {
    command_on_current_server::<BlockingZk>(|zk, cmd| zk.command(cmd), BlockingZk::server_version);
    // The async client underneath a blocking one has them too (a thread runs the word).
    let wait = Some(Duration::from_secs(10));
    command_on_current_server::<BlockingZk>(
        |zk, cmd| zk_client::blocking::block_on(zk.as_async().command(cmd), wait).unwrap(),
        |zk| zk_client::blocking::block_on(zk.as_async().server_version(), wait).unwrap(),
    );
}
