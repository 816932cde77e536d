//! zk-recipes' [`NonBlockingLease`] and [`MultiNonBlockingLease`] against a
//! real ZooKeeper 3.8 server, for every adapter: kazoo's record (persistent
//! `lease_holder`, JSON as `json.dumps` writes it), denial while another
//! identity holds an unexpired lease, renewal, takeover once it ended, another
//! version left alone, and `count` slots. Module `kazoo`: kazoo 2.11 leases and
//! ours on the same paths (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::time::{Duration, SystemTime};

use recipes_common::{fresh, run, Adapter};
use zk_client::CreateMode;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tokio::recipes::{MultiNonBlockingLease, NonBlockingLease};

fn obtain<Z: Adapter>(
    zk: &Z,
    path: &str,
    secs: u64,
    id: &str,
    now: SystemTime,
) -> NonBlockingLease {
    Z::exec(NonBlockingLease::obtain_at(
        zk.as_async(),
        path,
        Duration::from_secs(secs),
        Some(id),
        now,
    ))
    .unwrap()
}

fn leases<Z: Adapter>() {
    let (_, path, zk) = fresh::<Z>("lease");
    let t0 = SystemTime::now();
    let a = obtain(&zk, &path, 10, "a", t0);
    assert!(a.obtained() && a.holder() == Some("a"));
    let (raw, stat) = zk.get_data(&format!("{path}/lease_holder")).unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "lease_holder must be persistent");
    let text = String::from_utf8(raw.to_vec()).unwrap();
    assert!(
        text.starts_with(r#"{"version": 1, "holder": "a", "end": ""#) && text.ends_with("\"}"),
        "{text}"
    );
    assert_eq!(
        text.len(),
        r#"{"version": 1, "holder": "a", "end": "2026-11-24T17:45:33"}"#.len()
    );
    // Another identity is denied until the end; the holder renews.
    let b = obtain(&zk, &path, 10, "b", t0 + Duration::from_secs(5));
    assert!(!b.obtained());
    assert_eq!(b.holder(), Some("a"));
    assert!(obtain(&zk, &path, 10, "a", t0 + Duration::from_secs(5)).obtained());
    assert!(!obtain(&zk, &path, 10, "b", t0 + Duration::from_secs(12)).obtained());
    let b = obtain(&zk, &path, 10, "b", t0 + Duration::from_secs(16));
    assert!(b.obtained(), "the renewed lease should have ended");
    // Only lease_holder is left (the lock's contender nodes went).
    assert_eq!(zk.get_children(&path).unwrap(), ["lease_holder"]);
    // A record of another version is left alone.
    let v2 = format!("{path}-v2");
    zk.ensure_path(&v2).unwrap();
    zk.create(
        &format!("{v2}/lease_holder"),
        r#"{"version": 2, "holder": "z", "end": "1970-01-01T00:00:00"}"#,
        CreateMode::Persistent,
    )
    .unwrap();
    assert!(!obtain(&zk, &v2, 10, "a", t0).obtained());
    // count slots: two of three obtain.
    let multi = format!("{path}-multi");
    let slots: Vec<_> = ["x", "y", "z"]
        .iter()
        .map(|id| {
            Z::exec(MultiNonBlockingLease::obtain_at(
                zk.as_async(),
                2,
                &multi,
                Duration::from_secs(10),
                Some(id),
                t0,
            ))
            .unwrap()
            .slot()
        })
        .collect();
    assert_eq!(slots, [Some(0), Some(1), None]);
    for p in [path, v2, multi] {
        zk.delete_recursive(&p).unwrap();
    }
    zk.close().unwrap();
}

/// The clock is read once the lease's lock is held (kazoo reads it under the
/// lock): with the lock held by someone else for 2.5 s, a 10 s lease asked
/// for at `t0` ends at least 11 s after `t0` (the record has whole seconds),
/// not 10 s after the call.
fn clock_read_under_lock<Z: Adapter>() {
    let (cs, path, zk) = fresh::<Z>("lease-clock");
    let other = Z::connect_to(&cs);
    let lock = zk_tokio::recipes::Lock::new(other.as_async(), &path, "holder").unwrap();
    let held = Z::exec(lock.acquire()).unwrap();
    let t0 = SystemTime::now();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2500));
        Z::exec(held.release()).unwrap();
    });
    let ten = Duration::from_secs(10);
    let lease = if Z::NAME == "blocking" {
        NonBlockingLease::obtain_blocking(zk.as_async(), &path, ten, Some("a")).unwrap()
    } else {
        Z::exec(NonBlockingLease::obtain(
            zk.as_async(),
            &path,
            ten,
            Some("a"),
        ))
        .unwrap()
    };
    releaser.join().unwrap();
    assert!(lease.obtained());
    let end = lease.end().expect("an end");
    let after = end.duration_since(t0).unwrap_or_default();
    assert!(
        after >= Duration::from_secs(11),
        "{}: the lease ends {after:?} after the call, though the lock came 2.5 s later",
        Z::NAME
    );
    other.close().unwrap();
    zk.close().unwrap();
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [leases, clock_read_under_lock]);

// ============================================================================ kazoo

mod kazoo {
    use super::*;
    use recipes_common::{js, kazoo_test, Kazoo};

    kazoo_test!(kazoo_and_ours_share_leases, "kazoo-lease", body);

    /// Whether kazoo obtains `lease` (a call of a `kazoo.recipe.lease`
    /// constructor, `datetime` imported): "true" or "false".
    fn kazoo_obtains(kz: &mut Kazoo, lease: &str) -> String {
        kz.run(&format!(
            "import datetime\nresult = bool(kazoo.recipe.lease.{lease})"
        ))
    }

    fn body(_: String, mut kz: Kazoo, zk: TokioZk, base: String) {
        let p = format!("{base}/l");
        let pj = js(&p);
        // kazoo holds: ours is denied and reads kazoo's record.
        assert_eq!(
            kazoo_obtains(
                &mut kz,
                &format!(
                    "NonBlockingLease(zk, {pj}, datetime.timedelta(seconds=3), identifier='py')"
                )
            ),
            "true"
        );
        let now = SystemTime::now();
        let ours = obtain(&zk, &p, 3, "rs", now);
        assert!(!ours.obtained());
        assert_eq!(ours.holder(), Some("py"));
        // After kazoo's end (our clock moved on), ours takes over; kazoo reads
        // our record with json.loads + strptime and is denied.
        let ours = obtain(&zk, &p, 60, "rs", now + Duration::from_secs(5));
        assert!(ours.obtained());
        assert_eq!(
            kz.run(&format!(
                "import json, datetime\nd = json.loads(zk.get({pj} + '/lease_holder')[0].decode())\n\
                 datetime.datetime.strptime(d['end'], '%Y-%m-%dT%H:%M:%S')\nresult = [d['version'], d['holder']]"
            )),
            r#"[1, "rs"]"#
        );
        assert_eq!(
            kazoo_obtains(
                &mut kz,
                &format!(
                    "NonBlockingLease(zk, {pj}, datetime.timedelta(seconds=3), identifier='py')"
                )
            ),
            "false"
        );
        // kazoo past our end takes it back; ours is denied by kazoo's record.
        assert_eq!(
            kazoo_obtains(
                &mut kz,
                &format!(
                    "NonBlockingLease(zk, {pj}, datetime.timedelta(seconds=600), identifier='py', \
                 utcnow=lambda: datetime.datetime.utcnow() + datetime.timedelta(seconds=120))"
                )
            ),
            "true"
        );
        assert!(!obtain(
            &zk,
            &p,
            3,
            "rs",
            SystemTime::now() + Duration::from_secs(300)
        )
        .obtained());
        assert_eq!(zk.get_children(&p).unwrap(), ["lease_holder"]);
        // MultiNonBlockingLease: kazoo takes slot 0, ours slot 1, a third is out.
        let m = format!("{base}/m");
        let mj = js(&m);
        assert_eq!(
            kazoo_obtains(&mut kz, &format!("MultiNonBlockingLease(zk, 2, {mj}, datetime.timedelta(seconds=30), identifier='k1')")),
            "true"
        );
        let slot = TokioZk::exec(MultiNonBlockingLease::obtain(
            zk.as_async(),
            2,
            &m,
            Duration::from_secs(30),
            Some("r1"),
        ))
        .unwrap()
        .slot();
        assert_eq!(slot, Some(1));
        assert_eq!(
            kazoo_obtains(&mut kz, &format!("MultiNonBlockingLease(zk, 2, {mj}, datetime.timedelta(seconds=30), identifier='k3')")),
            "false"
        );
        assert_eq!(
            kz.run(&format!(
                "result = zk.get({mj} + '/1/lease_holder')[0].decode()"
            )),
            js(zk
                .get_data(&format!("{m}/1/lease_holder"))
                .unwrap()
                .0
                .to_str()
                .unwrap())
        );
        drop(kz);
        zk.delete_recursive(&base).unwrap();
        zk.close().unwrap();
    }
}
