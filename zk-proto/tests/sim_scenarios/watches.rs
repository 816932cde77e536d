//! Watches: one-shot, persistent and recursive, removal, fan-out.

use zk_proto::{AddWatchMode, ErrorCode, EventType, ZkError};

use super::helpers::{
    add_watch, create, data_exist_child_watches, delete, ev, failed_with, fired, get_data, ms, ok,
    scenario, set_data, submit,
};

#[test]
fn one_shot_data_exist_and_child_watches_fire_once() {
    scenario(1, 26, |n, ci| {
        ok(n, ci, create("/o", b"", 0));
        let [data, exist, child] = data_exist_child_watches(n, ci, "/o", "/o/new");
        n.advance(ms(10));
        assert_eq!(n.session(ci).watch_count(), 3);
        for _ in 0..2 {
            n.admin(set_data("/o", b"1")).unwrap();
        }
        n.admin(create("/o/new", b"", 0)).unwrap();
        n.admin(create("/o/other", b"", 0)).unwrap();
        n.advance(ms(10));
        assert_eq!(fired(n, ci, data), [ev(EventType::NodeDataChanged, "/o")]);
        assert_eq!(fired(n, ci, exist), [ev(EventType::NodeCreated, "/o/new")]);
        assert_eq!(
            fired(n, ci, child),
            [ev(EventType::NodeChildrenChanged, "/o")]
        );
        assert_eq!(n.session(ci).watch_count(), 0);
        // getData on a missing node arms nothing.
        let (id, w) = submit(n, ci, get_data("/missing", true));
        n.advance(ms(10));
        failed_with(n, ci, &[id], ZkError::Server(ErrorCode::NoNode));
        assert!(n.client(ci).watcher_removed(w.unwrap()));
    });
}

#[test]
fn persistent_and_recursive_watches_keep_firing() {
    scenario(1, 27, |n, ci| {
        let (_, p) = submit(n, ci, add_watch("/p", AddWatchMode::Persistent));
        let (_, r) = submit(n, ci, add_watch("/r", AddWatchMode::PersistentRecursive));
        n.advance(ms(10));
        for req in [
            create("/p", b"", 0),
            set_data("/p", b"1"),
            create("/p/c", b"", 0),
            set_data("/p", b"2"),
            create("/r", b"", 0),
            create("/r/a", b"", 0),
            create("/r/a/b", b"", 0),
            set_data("/r/a/b", b"1"),
            delete("/r/a/b"),
        ] {
            n.admin(req).unwrap();
        }
        n.advance(ms(10));
        assert_eq!(
            fired(n, ci, p),
            [
                ev(EventType::NodeCreated, "/p"),
                ev(EventType::NodeDataChanged, "/p"),
                ev(EventType::NodeChildrenChanged, "/p"),
                ev(EventType::NodeDataChanged, "/p"),
            ]
        );
        assert_eq!(
            fired(n, ci, r),
            [
                ev(EventType::NodeCreated, "/r"),
                ev(EventType::NodeCreated, "/r/a"),
                ev(EventType::NodeCreated, "/r/a/b"),
                ev(EventType::NodeDataChanged, "/r/a/b"),
                ev(EventType::NodeDeleted, "/r/a/b"),
            ]
        );
        assert_eq!(n.session(ci).watch_count(), 2);
    });
}

#[test]
fn removing_a_watcher_stops_its_events_and_the_last_one_removes_the_server_watch() {
    scenario(1, 28, |n, ci| {
        ok(n, ci, create("/x", b"", 0));
        let (_, a) = submit(n, ci, get_data("/x", true));
        let (_, b) = submit(n, ci, get_data("/x", true));
        let (_, p) = submit(n, ci, add_watch("/x", AddWatchMode::Persistent));
        n.advance(ms(10));
        let server_conn = n.server_conn(ci, n.session_conn(ci).unwrap()).unwrap();
        assert_eq!(
            n.cluster.watch_count(server_conn),
            2,
            "one data + one persistent"
        );
        n.remove_watcher(ci, a.unwrap());
        n.remove_watcher(ci, p.unwrap());
        n.advance(ms(10));
        assert!(n.client(ci).watcher_removed(a.unwrap()));
        assert!(n.client(ci).watcher_removed(p.unwrap()));
        assert_eq!(n.cluster.watch_count(server_conn), 2, "b still needs /x");
        n.admin(set_data("/x", b"1")).unwrap();
        n.advance(ms(10));
        assert!(fired(n, ci, a).is_empty());
        assert!(fired(n, ci, p).is_empty());
        assert_eq!(fired(n, ci, b).len(), 1);
        // The last registration on a path takes the server's watch with it.
        let (_, q) = submit(n, ci, add_watch("/q", AddWatchMode::Persistent));
        n.advance(ms(10));
        let before = n.cluster.watch_count(server_conn);
        n.remove_watcher(ci, q.unwrap());
        n.advance(ms(10));
        assert_eq!(n.cluster.watch_count(server_conn), before - 1);
        n.admin(create("/q", b"", 0)).unwrap();
        n.advance(ms(10));
        assert!(fired(n, ci, q).is_empty());
    });
}

#[test]
fn each_registration_has_its_own_id_and_fans_out() {
    scenario(1, 29, |n, ci| {
        ok(n, ci, create("/f", b"", 0));
        let (_, a) = submit(n, ci, get_data("/f", true));
        let (_, b) = submit(n, ci, get_data("/f", true));
        n.advance(ms(10));
        assert_ne!(a, b);
        n.admin(set_data("/f", b"1")).unwrap();
        n.advance(ms(10));
        for w in [a, b] {
            assert_eq!(fired(n, ci, w), [ev(EventType::NodeDataChanged, "/f")]);
        }
    });
}

#[test]
fn node_deleted_fires_data_exist_and_child_watches() {
    scenario(1, 30, |n, ci| {
        ok(n, ci, create("/d", b"", 0));
        let [data, exist, child] = data_exist_child_watches(n, ci, "/d", "/d");
        n.advance(ms(10));
        n.admin(delete("/d")).unwrap();
        n.advance(ms(10));
        for w in [data, exist, child] {
            assert_eq!(fired(n, ci, w), [ev(EventType::NodeDeleted, "/d")]);
        }
        assert_eq!(n.session(ci).watch_count(), 0);
    });
}
