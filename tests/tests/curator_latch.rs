//! zk-recipes' Curator `LeaderLatch` against Apache Curator 5.4 `LeaderLatch`
//! participants in two JVMs, on a real ZooKeeper 3.8 server, for every adapter:
//! exactly one leader across the four (two Java, two Rust), and the same order
//! of participants seen from both sides, while the leader changes hands by
//! every way a leader goes: its session expired (Java's, then Rust's; each
//! re-joins at the back), its JVM killed (nobody leads until the dead session
//! expires on the server), and its network black-holed (the Rust leader steps
//! down on SUSPENDED, before the server expires it and a Java one takes over;
//! never two leaders while sampled every few milliseconds).

mod recipes_common;

use std::thread;
use std::time::{Duration, Instant};

use recipes_common::{eventually, run, unique, Adapter, WAIT};
use zk_client::SessionInfo;
use zk_tests::curator::Curator;
use zk_tests::facade::{BlockingZk, SmolZk, TokioZk};
use zk_tests::kill_session;
use zk_tests::proxy::Proxy;
use zk_tests::server::shared_server;
use zk_tokio::recipes::curator::{LeaderLatch, Participant};

/// Session timeout of every participant's client (the server's minimum).
const SESSION: Duration = Duration::from_secs(4);

/// One participant, on either side.
enum Who {
    Java(Curator),
    Rust(LeaderLatch),
}

struct Member {
    id: &'static str,
    who: Who,
    alive: bool,
}

impl Member {
    fn leads<Z: Adapter>(&mut self) -> bool {
        if !self.alive {
            return false;
        }
        match &mut self.who {
            Who::Java(j) => j.ok("isLeader l") == "true",
            Who::Rust(l) => l.has_leadership(),
        }
    }
}

fn rust_participants<Z: Adapter>(l: &LeaderLatch) -> Vec<Participant> {
    if Z::NAME == "blocking" {
        l.participants_blocking().unwrap()
    } else {
        Z::exec(l.participants()).unwrap()
    }
}

/// Participants as Java prints them: `id` per node in order, `*` on the leader.
fn show(ps: &[Participant]) -> String {
    ps.iter()
        .map(|p| format!("{}{}", p.id, if p.is_leader { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(",")
}

fn leaders<Z: Adapter>(ms: &mut [Member]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for m in ms.iter_mut() {
        if m.leads::<Z>() {
            out.push(m.id);
        }
    }
    out
}

/// Waits until `expected` alone leads, then checks that it stays so for a
/// while, and that both sides list `order` (the leader first) alike.
fn settle<Z: Adapter>(ms: &mut [Member], expected: &str, order: &[&str]) {
    let t = Instant::now();
    loop {
        let l = leaders::<Z>(ms);
        assert!(l.len() <= 1, "two leaders at once: {l:?}");
        if l == [expected] {
            break;
        }
        assert!(t.elapsed() < WAIT, "{expected} did not lead: {l:?}");
        thread::sleep(Duration::from_millis(10));
    }
    let want = order
        .iter()
        .enumerate()
        .map(|(i, id)| format!("{id}{}", if i == 0 { "*" } else { "" }))
        .collect::<Vec<_>>()
        .join(",");
    eventually(WAIT, &format!("participants {want}"), || {
        ms.iter_mut().filter(|m| m.alive).all(|m| match &mut m.who {
            Who::Java(j) => j.ok("participants l") == want,
            Who::Rust(l) => show(&rust_participants::<Z>(l)) == want,
        })
    });
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) {
        assert_eq!(leaders::<Z>(ms), [expected], "leadership moved on its own");
    }
}

/// Waits until participant `i`, whose session was killed from outside, no
/// longer claims leadership (it learns it from its connection's end).
fn told<Z: Adapter>(ms: &mut [Member], i: usize) {
    let t = Instant::now();
    while ms[i].leads::<Z>() {
        assert!(
            t.elapsed() < SESSION,
            "{} still leads {:?} after its session was killed",
            ms[i].id,
            t.elapsed()
        );
        thread::sleep(Duration::from_millis(5));
    }
    println!(
        "{} stepped down {:?} after its session was killed",
        ms[i].id,
        t.elapsed()
    );
}

fn java(cs: &str, path: &str, id: &str) -> Curator {
    let mut j = Curator::bare(cs);
    j.ok(&format!("client c {}", SESSION.as_millis()));
    j.ok(&format!("latch l c {path} {id}"));
    j
}

fn java_session(j: &mut Curator) -> SessionInfo {
    let s = j.ok("session c");
    let (id, pw) = s.split_once(' ').unwrap();
    let pw: Vec<u8> = (0..pw.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&pw[i..i + 2], 16).unwrap())
        .collect();
    SessionInfo {
        id: u64::from_str_radix(id, 16).unwrap() as i64,
        password: pw.into(),
        timeout: None,
        last_zxid: 0,
    }
}

fn one_leader<Z: Adapter>() {
    let server = shared_server();
    let cs = server.connect_string();
    let path = format!("{}/latch", unique("curator-latch", Z::NAME));
    let proxy = Proxy::start(server.addr());
    let za = Z::connect_for(&cs, SESSION);
    let zb = Z::connect_for(&proxy.connect_string(), SESSION);
    let ra = LeaderLatch::new(za.as_async(), &path, "rust-a").unwrap();
    let rb = LeaderLatch::new(zb.as_async(), &path, "rust-b").unwrap();
    let mut ms = vec![Member {
        id: "java-a",
        who: Who::Java(java(&cs, &path, "java-a")),
        alive: true,
    }];
    // Joined one by one, so the order is known: java-a, rust-a, java-b, rust-b.
    let joined = |n: usize| {
        let admin = Z::connect_to(&cs);
        eventually(WAIT, "joined", || {
            admin.get_children(&path).map(|k| k.len()).unwrap_or(0) == n
        });
        admin.close().unwrap();
    };
    joined(1);
    ra.start();
    joined(2);
    ms.push(Member {
        id: "rust-a",
        who: Who::Rust(ra.clone()),
        alive: true,
    });
    ms.push(Member {
        id: "java-b",
        who: Who::Java(java(&cs, &path, "java-b")),
        alive: true,
    });
    joined(3);
    rb.start();
    joined(4);
    ms.push(Member {
        id: "rust-b",
        who: Who::Rust(rb.clone()),
        alive: true,
    });
    settle::<Z>(&mut ms, "java-a", &["java-a", "rust-a", "java-b", "rust-b"]);
    let token = ra.leadership().map(|l| l.fencing_token());
    assert_eq!(token, None);

    // 1. The Java leader's session expires: it steps down and re-joins at the back.
    let Who::Java(ja) = &mut ms[0].who else {
        unreachable!()
    };
    let s = java_session(ja);
    kill_session(&cs, &s, WAIT).unwrap();
    // The server deleted the leader's node before its client can know: the
    // next one may lead a few milliseconds before the old one hears it (true
    // of any ZooKeeper election, Java's alone too). It must hear it promptly.
    told::<Z>(&mut ms, 0);
    settle::<Z>(&mut ms, "rust-a", &["rust-a", "java-b", "rust-b", "java-a"]);
    let first = ra.leadership().expect("rust-a leads").fencing_token();

    // 2. The Rust leader's session expires: the same.
    kill_session(&cs, &za.session().unwrap(), WAIT).unwrap();
    told::<Z>(&mut ms, 1);
    settle::<Z>(&mut ms, "java-b", &["java-b", "rust-b", "java-a", "rust-a"]);

    // 3. The Java leader's JVM dies: its node stays until the server expires
    //    the session, and meanwhile nobody else may lead.
    let Who::Java(jb) = &mut ms[2].who else {
        unreachable!()
    };
    jb.kill();
    ms[2].alive = false;
    let t = Instant::now();
    while t.elapsed() < SESSION / 2 {
        assert_eq!(
            leaders::<Z>(&mut ms),
            Vec::<&str>::new(),
            "a participant led while the dead leader's session lived"
        );
    }
    settle::<Z>(&mut ms, "rust-b", &["rust-b", "java-a", "rust-a"]);
    let second = rb.leadership().expect("rust-b leads").fencing_token();
    assert!(second > first, "the fencing token did not rise");

    // 4. The Rust leader's network goes silent: it must step down (SUSPENDED,
    //    Curator's standard policy) before the server expires its session and
    //    java-a takes over; never two leaders meanwhile.
    proxy.black_hole(true);
    let t = Instant::now();
    loop {
        let l = leaders::<Z>(&mut ms);
        assert!(
            l.len() <= 1,
            "two leaders at once: {l:?} after {:?}",
            t.elapsed()
        );
        if l == ["java-a"] {
            break;
        }
        assert!(t.elapsed() < WAIT, "java-a did not take over: {l:?}");
        thread::sleep(Duration::from_millis(5));
    }
    let stepped_down = t.elapsed();
    proxy.black_hole(false);
    settle::<Z>(&mut ms, "java-a", &["java-a", "rust-a", "rust-b"]);
    println!(
        "{}: java-a led {stepped_down:?} after rust-b's network went silent",
        Z::NAME
    );

    for m in ms.iter_mut() {
        match &mut m.who {
            Who::Java(j) if m.alive => {
                j.ok("latchClose l");
            }
            Who::Rust(l) => {
                if Z::NAME == "blocking" {
                    l.close_blocking()
                } else {
                    Z::exec(l.close())
                }
            }
            _ => {}
        }
    }
    let admin = Z::connect_to(&cs);
    eventually(WAIT, "every node gone", || {
        admin
            .get_children(&path)
            .map(|k| k.is_empty())
            .unwrap_or(true)
    });
    admin.close().unwrap();
    za.close().unwrap();
    zb.close().unwrap();
}

zk_tests::adapter_suites!(tokio_mt: TokioZk, smol: SmolZk, blocking: BlockingZk => [one_leader]);
