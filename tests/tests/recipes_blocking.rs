//! The `_blocking` forms that the crate docs promise for every recipe call,
//! named here one by one and run from plain threads on zk-blocking against a
//! real ZooKeeper 3.8 server: the queues' `put`, `put_all`, `len` and
//! `holds_lock`, the parties' `len`, and the holders' `lost` / `not_held`
//! (a lock's, a semaphore lease's and a leader's), before and after the
//! holder's session is killed. (The other `_blocking` forms are exercised by
//! each recipe's own suite.)

mod recipes_common;

use std::time::Duration;

use recipes_common::{run, unique, Adapter, WAIT};
use zk_tests::facade::BlockingZk;
use zk_tests::kill_session;
use zk_tests::server::shared_server;
use zk_tokio::recipes::{
    Election, Holding, Lock, LockingQueue, Party, Queue, Semaphore, ShallowParty,
};

const SHORT: Option<Duration> = Some(Duration::from_millis(100));

#[test]
fn queues_and_parties() {
    run("queues_and_parties", || {
        let cs = shared_server().connect_string();
        let zk = BlockingZk::connect_to(&cs);
        let base = unique("blocking-forms", "blocking");

        let q = Queue::new(zk.as_async(), &format!("{base}/q")).unwrap();
        q.put_blocking("a", 1).unwrap();
        q.put_blocking("b", 2).unwrap();
        assert_eq!(q.len_blocking().unwrap(), 2);
        assert_eq!(q.get_blocking().unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(q.len_blocking().unwrap(), 1);

        let lq = LockingQueue::new(zk.as_async(), &format!("{base}/lq")).unwrap();
        let node = lq.put_blocking("x", 5).unwrap();
        assert!(node.contains("/entries/entry-005-"), "{node}");
        lq.put_all_blocking(vec![b"y".to_vec(), b"z".to_vec()], 7)
            .unwrap();
        assert_eq!(lq.len_blocking().unwrap(), 3);
        assert!(!lq.holds_lock_blocking().unwrap());
        assert_eq!(
            lq.get_blocking(Some(WAIT)).unwrap().as_deref(),
            Some(&b"x"[..])
        );
        assert!(lq.holds_lock_blocking().unwrap());
        assert!(lq.consume_blocking().unwrap());
        assert!(!lq.holds_lock_blocking().unwrap());
        assert_eq!(lq.len_blocking().unwrap(), 2);

        let party = Party::new(zk.as_async(), &format!("{base}/party"), Some("p1")).unwrap();
        assert_eq!(party.len_blocking().unwrap(), 0);
        party.join_blocking().unwrap();
        assert_eq!(party.len_blocking().unwrap(), 1);
        let shallow = ShallowParty::new(zk.as_async(), &format!("{base}/shallow"), "s1").unwrap();
        shallow.join_blocking().unwrap();
        assert_eq!(shallow.len_blocking().unwrap(), 1);
        assert!(shallow.leave_blocking().unwrap());
        assert_eq!(shallow.len_blocking().unwrap(), 0);
        zk.delete_recursive(&base).unwrap();
        zk.close().unwrap();
    })
}

#[test]
fn holders_learn_their_loss() {
    run("holders_learn_their_loss", || {
        let cs = shared_server().connect_string();
        let base = unique("blocking-loss", "blocking");

        // A lock and a semaphore lease, held by one session that is then killed.
        let zk = BlockingZk::connect_to(&cs);
        let lock = Lock::new(zk.as_async(), &format!("{base}/lock"), "l").unwrap();
        let guard = lock.acquire_blocking(None).unwrap().unwrap();
        let sem = Semaphore::new(zk.as_async(), &format!("{base}/sem"), "s", 2).unwrap();
        let lease = sem.acquire_blocking(None).unwrap().unwrap();
        assert!(!guard.lost_blocking(SHORT), "held: not lost");
        assert_eq!(guard.not_held_blocking(SHORT), None, "held");
        assert!(!lease.lost_blocking(SHORT), "held: not lost");
        kill_session(&cs, &zk.session().unwrap(), WAIT).unwrap();
        assert!(guard.lost_blocking(Some(WAIT)), "the lock's loss is seen");
        assert_eq!(guard.not_held_blocking(SHORT), Some(Holding::Lost));
        assert!(lease.lost_blocking(Some(WAIT)), "the lease's loss is seen");
        drop((guard, lease));
        zk.close().unwrap();

        // A leader whose session is killed while it leads.
        let zk = BlockingZk::connect_to(&cs);
        let election = Election::new(zk.as_async(), &format!("{base}/election"), "e").unwrap();
        let (cs2, session) = (cs.clone(), zk.session().unwrap());
        let seen = election
            .run_blocking(|l| {
                let before = (l.lost_blocking(SHORT), l.not_held_blocking(SHORT));
                kill_session(&cs2, &session, WAIT).unwrap();
                (before, l.lost_blocking(Some(WAIT)))
            })
            .unwrap()
            .expect("elected");
        assert_eq!(seen, ((false, None), true), "(before the kill, after)");
        zk.close().unwrap();
    })
}
