//! zk-recipes' [`Party`] and [`ShallowParty`] against a real ZooKeeper 3.8
//! server, for every adapter: members join and leave, a killed session's member
//! disappears, kazoo's node names, and which children count. Module `kazoo`:
//! kazoo 2.11 parties and ours on the same paths see each other's members
//! (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::time::Duration;

use recipes_common::{clients, close_all, eventually, run, unique, Adapter, WAIT};
use zk_client::{CreateMode, Data};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{Party, ShallowParty};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn parties<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let base = unique("party", Z::NAME);
    let zs: Vec<Z> = clients(&cs, 3, Duration::from_secs(4));
    let deep = format!("{base}/deep");
    let shallow = format!("{base}/shallow");
    let ps: Vec<Party> = zs
        .iter()
        .enumerate()
        .map(|(i, z)| Party::new(z.as_async(), &deep, Some(&format!("m{i}"))).unwrap())
        .collect();
    let ss: Vec<ShallowParty> = zs
        .iter()
        .enumerate()
        .map(|(i, z)| ShallowParty::new(z.as_async(), &shallow, &format!("s{i}")).unwrap())
        .collect();
    for (p, s) in ps.iter().zip(&ss) {
        Z::exec(p.join()).unwrap();
        Z::exec(s.join()).unwrap();
        Z::exec(p.join()).unwrap(); // twice is fine
    }
    assert_eq!(
        sorted(Z::exec(ps[0].members()).unwrap()),
        ["m0", "m1", "m2"]
    );
    assert_eq!(
        sorted(Z::exec(ss[0].members()).unwrap()),
        ["s0", "s1", "s2"]
    );
    // kazoo's names and data.
    let name = ps[1].node_path();
    let leaf = name.rsplit('/').next().unwrap();
    assert!(
        leaf.len() == 32 + 9 && leaf.ends_with("__party__"),
        "{leaf}"
    );
    assert_eq!(zs[0].get_data(&name).unwrap().0, Data::new("m1"));
    let name = ss[1].node_path();
    let leaf = name.rsplit('/').next().unwrap();
    assert!(leaf.len() == 32 + 3 && leaf.ends_with("-s1"), "{leaf}");
    assert_eq!(zs[0].get_data(&name).unwrap().0, Data::new("s1"));
    // A foreign child: ignored by Party, counted by ShallowParty's len (kazoo).
    zs[0]
        .create(&format!("{deep}/other"), "x", CreateMode::Persistent)
        .unwrap();
    zs[0]
        .create(&format!("{shallow}/other"), "x", CreateMode::Persistent)
        .unwrap();
    assert_eq!(Z::exec(ps[0].len()).unwrap(), 3);
    assert_eq!(Z::exec(ss[0].len()).unwrap(), 4);
    // Leave, and a killed session.
    assert!(Z::exec(ps[2].leave()).unwrap());
    assert!(!Z::exec(ps[2].leave()).unwrap());
    kill_session(&cs, &zs[1].session().unwrap(), WAIT).unwrap();
    eventually(WAIT, "the killed member gone", || {
        ps[0].members_blocking().unwrap() == ["m0"]
    });
    assert_eq!(
        sorted(ss[0].members_blocking().unwrap()),
        ["other", "s0", "s2"]
    );
    zs[0].delete_recursive(&base).unwrap();
    close_all(zs);
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [parties]);

// ============================================================================ kazoo

mod kazoo {
    use super::*;
    use recipes_common::{js, js_list, kazoo_test, Kazoo};

    kazoo_test!(kazoo_and_ours_see_each_other, "kazoo-party", body);

    fn body(_: String, mut kz: Kazoo, zk: TokioZk, base: String) {
        let (deep, shallow) = (format!("{base}/deep"), format!("{base}/shallow"));
        kz.run(&format!(
            "objs['p'] = zk.Party({}, 'py')\nobjs['p'].join()\n\
             objs['s'] = zk.ShallowParty({}, 'pys')\nobjs['s'].join()",
            js(&deep),
            js(&shallow)
        ));
        let p = Party::new(zk.as_async(), &deep, Some("rs")).unwrap();
        let s = ShallowParty::new(zk.as_async(), &shallow, "rss").unwrap();
        TokioZk::exec(p.join()).unwrap();
        TokioZk::exec(s.join()).unwrap();
        assert_eq!(sorted(TokioZk::exec(p.members()).unwrap()), ["py", "rs"]);
        assert_eq!(sorted(TokioZk::exec(s.members()).unwrap()), ["pys", "rss"]);
        assert_eq!(kz.run("result = sorted(objs['p'])"), js_list(&["py", "rs"]));
        assert_eq!(
            kz.run("result = sorted(objs['s'])"),
            js_list(&["pys", "rss"])
        );
        assert_eq!(kz.run("result = len(objs['p'])"), "2");
        assert_eq!(kz.run("result = len(objs['s'])"), "2");
        // We leave: kazoo sees it; kazoo leaves: we see it.
        assert!(TokioZk::exec(p.leave()).unwrap());
        assert!(TokioZk::exec(s.leave()).unwrap());
        assert_eq!(kz.run("result = list(objs['p'])"), js_list(&["py"]));
        assert_eq!(kz.run("result = list(objs['s'])"), js_list(&["pys"]));
        kz.run("objs['p'].leave()\nobjs['s'].leave()");
        assert!(TokioZk::exec(p.members()).unwrap().is_empty());
        assert!(TokioZk::exec(s.members()).unwrap().is_empty());
        drop(kz);
        zk.delete_recursive(&base).unwrap();
        zk.close().unwrap();
    }
}
