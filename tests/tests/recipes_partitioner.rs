//! zk-recipes' [`SetPartitioner`] against a real ZooKeeper 3.8 server, for
//! every adapter: 3 members divide 9 items by kazoo's default function
//! (`sorted(items)[i::n]`, disjoint, covering), holding one kazoo Lock per item
//! under `locks/`; a member finishing moves the others to Release, and
//! `release_set` re-divides among 2; a member whose session is killed fails.
//! Module `kazoo`: 2 kazoo 2.11 members and ours divide one set, and a 4th (ours)
//! joining re-divides it on both sides (`ZK_KAZOO_PYTHON`; fails without it).

mod recipes_common;

use std::time::Duration;

use recipes_common::{clients, close_all, run, unique, Adapter, WAIT};
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk, Zk};
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{PartitionState, PartitionerOptions, SetPartitioner};

fn items() -> Vec<String> {
    "abcdefghi".chars().map(|c| c.to_string()).collect()
}

fn member<Z: Adapter>(zk: &Z, path: &str, id: &str) -> SetPartitioner {
    SetPartitioner::new(
        zk.as_async(),
        path,
        items(),
        PartitionerOptions {
            identifier: Some(id.into()),
            time_boundary: Duration::from_secs(1),
            max_reaction_time: Duration::from_millis(300),
            ..PartitionerOptions::default()
        },
    )
    .unwrap()
}

/// Waits for `state`: blocking (with [`WAIT`]) for zk-blocking, the async
/// form on the adapter's executor otherwise (bounded by the test's watchdog).
fn reach<Z: Adapter>(p: &SetPartitioner, state: PartitionState) {
    let got = if Z::NAME == "blocking" {
        p.wait_until(Some(WAIT), move |s| s == state)
    } else {
        Z::exec(p.until(move |s| s == state))
    };
    assert_eq!(got, state, "{p:?}");
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn partitions<Z: Adapter>() {
    let cs = shared_server().connect_string();
    let path = unique("part", Z::NAME);
    let zs: Vec<Z> = clients(&cs, 3, Duration::from_secs(4));
    let ps: Vec<SetPartitioner> = zs
        .iter()
        .enumerate()
        .map(|(i, z)| member(z, &path, &format!("w{i}")))
        .collect();
    for p in &ps {
        reach::<Z>(p, PartitionState::Acquired);
    }
    assert_eq!(ps[0].partition(), strs(&["a", "d", "g"]));
    assert_eq!(ps[1].partition(), strs(&["b", "e", "h"]));
    assert_eq!(ps[2].partition(), strs(&["c", "f", "i"]));
    // One kazoo Lock per item, empty data.
    let kids = zs[0].get_children(&format!("{path}/locks/a")).unwrap();
    assert_eq!(kids.len(), 1);
    assert!(kids[0][32..].starts_with("__lock__"), "{kids:?}");
    assert_eq!(
        zs[0]
            .get_data(&format!("{path}/locks/a/{}", kids[0]))
            .unwrap()
            .0,
        zk_client::Data::new("")
    );
    // A member leaves: the others must release and re-divide.
    ps[2].finish();
    reach::<Z>(&ps[2], PartitionState::Failure);
    for p in &ps[..2] {
        reach::<Z>(p, PartitionState::Release);
        assert!(p.partition().is_empty());
        p.release_set();
    }
    for p in &ps[..2] {
        reach::<Z>(p, PartitionState::Acquired);
    }
    assert_eq!(ps[0].partition(), strs(&["a", "c", "e", "g", "i"]));
    assert_eq!(ps[1].partition(), strs(&["b", "d", "f", "h"]));
    // A killed session: that member fails (kazoo's rule), the other releases.
    kill_session(&cs, &zs[1].session().unwrap(), WAIT).unwrap();
    reach::<Z>(&ps[1], PartitionState::Failure);
    reach::<Z>(&ps[0], PartitionState::Release);
    ps[0].release_set();
    reach::<Z>(&ps[0], PartitionState::Acquired);
    assert_eq!(ps[0].partition(), items());
    drop(ps);
    zs[0].delete_recursive(&path).ok();
    close_all(zs);
}

zk_tests::adapter_suites!(tokio: TokioZk, smol: SmolZk, blocking: BlockingZk => [partitions]);

// ============================================================================ kazoo

mod kazoo {
    use super::*;
    use recipes_common::{js, kazoo_test, Kazoo};

    kazoo_test!(kazoo_and_ours_divide_one_set, "kazoo-part", body);

    fn start_kazoo_member(kz: &mut Kazoo, path: &str, name: &str) -> u64 {
        kz.spawn(&format!(
            "p = zk.SetPartitioner({p}, set={items}, identifier={n}, time_boundary=1, max_reaction_time=0.3)\n\
             last = None\n\
             while not objs.get('stop'):\n    st = p.state\n    \
                 if st == 'RELEASE':\n        say('release ' + {n})\n        last = None\n        p.release_set()\n    \
                 elif st == 'ACQUIRED':\n        cur = ','.join(sorted(p))\n        \
                     if cur != last:\n            say('acquired ' + {n} + ' ' + cur)\n            last = cur\n    \
                 elif st == 'FAILURE':\n        say('failed ' + {n})\n        break\n    \
                 time.sleep(0.05)\n\
             p.finish()\nresult = 'done'",
            p = js(path),
            n = js(name),
            items = "['a','b','c','d','e','f','g','h','i']"
        ))
    }

    fn body(cs: String, mut kz: Kazoo, zk: TokioZk, path: String) {
        let k0 = start_kazoo_member(&mut kz, &path, "k0");
        let k2 = start_kazoo_member(&mut kz, &path, "k2");
        let r1 = member(&zk, &path, "r1");
        // Sorted members: k0, k2, r1.
        kz.event("k0's share", |e| e == "acquired k0 a,d,g");
        kz.event("k2's share", |e| e == "acquired k2 b,e,h");
        reach::<TokioZk>(&r1, PartitionState::Acquired);
        assert_eq!(r1.partition(), strs(&["c", "f", "i"]));
        // A 4th member (ours): everyone releases and re-divides by 4.
        let z3 = TokioZk::connect_to(&cs);
        let r3 = member(&z3, &path, "r3");
        kz.event("k0 releases", |e| e == "release k0");
        kz.event("k2 releases", |e| e == "release k2");
        reach::<TokioZk>(&r1, PartitionState::Release);
        r1.release_set();
        kz.event("k0's new share", |e| e == "acquired k0 a,e,i");
        kz.event("k2's new share", |e| e == "acquired k2 b,f");
        reach::<TokioZk>(&r1, PartitionState::Acquired);
        reach::<TokioZk>(&r3, PartitionState::Acquired);
        assert_eq!(r1.partition(), strs(&["c", "g"]));
        assert_eq!(r3.partition(), strs(&["d", "h"]));
        kz.run("objs['stop'] = True");
        assert_eq!(kz.finished(k0, WAIT), Some(Ok(js("done"))));
        assert_eq!(kz.finished(k2, WAIT), Some(Ok(js("done"))));
        drop((r1, r3));
        drop(kz);
        std::thread::sleep(Duration::from_millis(500));
        zk.delete_recursive(&path).ok();
        zk.close().unwrap();
        z3.close().unwrap();
    }
}
