//! Tests of the real-server harness itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use zk_tests::server::{
    find_install, four_letter_word, shared_server, zookeeper_install, Ensemble, ServerOptions,
    ZkServer, INSTALL_FIX,
};

const FLW_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound for an election after the leader was killed (about 0.35 s measured on an idle machine).
const ELECTION_BOUND: Duration = Duration::from_secs(20);

fn mode(addr: std::net::SocketAddr) -> Option<String> {
    let srvr = four_letter_word(addr, "srvr", FLW_TIMEOUT).ok()?;
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_string)
}

/// Whether `pid` is (still) a ZooKeeper JVM.
fn is_zookeeper_process(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains("QuorumPeerMain"))
        .unwrap_or(false)
}

fn jvm_args(pid: u32) -> Vec<String> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline of the JVM");
    cmdline
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn standalone_server_serves() {
    let started = Instant::now();
    let server = ZkServer::start();
    eprintln!("standalone server serving after {:?}", started.elapsed());

    assert!(server.is_running());
    assert_eq!(
        server.addr(),
        format!("127.0.0.1:{}", server.port()).parse().unwrap()
    );
    assert_eq!(
        server.connect_string(),
        format!("127.0.0.1:{}", server.port())
    );
    assert_eq!(
        four_letter_word(server.addr(), "ruok", FLW_TIMEOUT).unwrap(),
        "imok"
    );
    let srvr = four_letter_word(server.addr(), "srvr", FLW_TIMEOUT).unwrap();
    assert!(srvr.starts_with("Zookeeper version: 3.8"), "{srvr}");
    assert!(srvr.lines().any(|l| l == "Mode: standalone"), "{srvr}");

    // The default options reach the JVM and zoo.cfg.
    let args = jvm_args(server.pid().unwrap());
    assert!(
        args.iter()
            .any(|a| a == "-Dzookeeper.extendedTypesEnabled=true"),
        "{args:?}"
    );
    assert!(!args.iter().any(|a| a.contains("readonlymode")), "{args:?}");
    let cfg = fs::read_to_string(server.dir().join("zoo.cfg")).unwrap();
    for line in [
        "maxClientCnxns=0",
        "4lw.commands.whitelist=*",
        "admin.enableServer=false",
        "clientPortAddress=127.0.0.1",
        "tickTime=2000",
    ] {
        assert!(cfg.lines().any(|l| l == line), "{line} missing in\n{cfg}");
    }
    // 4lw whitelist = *: a word outside the default whitelist answers.
    let mntr = four_letter_word(server.addr(), "mntr", FLW_TIMEOUT).unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");

    // The log has the server's own INFO lines (slf4j-simple is on the class path).
    let log = fs::read_to_string(server.log_path()).unwrap();
    assert!(
        log.contains("INFO") && log.contains(&server.port().to_string()),
        "{}",
        server.log_tail()
    );
}

#[test]
fn options_reach_the_server() {
    let server = ZkServer::start_with(ServerOptions {
        extended_types: false,
        read_only_mode: true,
        tick_time_ms: 500,
        extra_cfg: vec!["globalOutstandingLimit=777".to_string()],
        extra_jvm_flags: vec!["-Dzk.tests.marker=42".to_string()],
        ..ServerOptions::default()
    });
    let args = jvm_args(server.pid().unwrap());
    assert!(args.iter().any(|a| a == "-Dreadonlymode.enabled=true"));
    assert!(args.iter().any(|a| a == "-Dzk.tests.marker=42"));
    assert!(!args.iter().any(|a| a.contains("extendedTypesEnabled")));
    // `conf` prints the configuration the server runs with.
    let conf = four_letter_word(server.addr(), "conf", FLW_TIMEOUT).unwrap();
    assert!(conf.contains("tickTime=500"), "{conf}");
    assert!(conf.contains("minSessionTimeout=1000"), "{conf}");
    let cfg = fs::read_to_string(server.dir().join("zoo.cfg")).unwrap();
    for line in [
        "localSessionsEnabled=true",
        "localSessionsUpgradingEnabled=true",
        "globalOutstandingLimit=777",
    ] {
        assert!(cfg.lines().any(|l| l == line), "{line} missing in\n{cfg}");
    }
    // A standalone server is never read-only.
    assert_eq!(
        four_letter_word(server.addr(), "isro", FLW_TIMEOUT).unwrap(),
        "rw"
    );
}

#[test]
fn kill_stop_and_restart_keep_the_port() {
    let mut server = ZkServer::start();
    let port = server.port();
    let first_pid = server.pid().unwrap();

    server.kill();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert!(!is_zookeeper_process(first_pid));
    assert!(four_letter_word(server.addr(), "ruok", FLW_TIMEOUT).is_err());

    let started = Instant::now();
    server.restart();
    eprintln!(
        "restart after SIGKILL serving after {:?}",
        started.elapsed()
    );
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_ne!(server.pid(), Some(first_pid));
    assert_eq!(mode(server.addr()).as_deref(), Some("standalone"));

    let stopping = Instant::now();
    server.stop();
    eprintln!("SIGTERM stop took {:?}", stopping.elapsed());
    assert!(stopping.elapsed() < Duration::from_secs(15));
    assert!(!server.is_running());
    assert!(four_letter_word(server.addr(), "ruok", FLW_TIMEOUT).is_err());

    // restart() of a running server stops it first.
    server.restart();
    let pid = server.pid().unwrap();
    server.restart();
    assert!(!is_zookeeper_process(pid));
    assert_eq!(server.port(), port);
    assert_eq!(mode(server.addr()).as_deref(), Some("standalone"));
}

#[test]
fn drop_kills_the_server_and_removes_its_directory() {
    let server = ZkServer::start();
    let dir = server.dir().to_path_buf();
    let addr = server.addr();
    let pid = server.pid().unwrap();
    assert!(dir.join("zoo.cfg").is_file());
    drop(server);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!is_zookeeper_process(pid));
    assert!(four_letter_word(addr, "ruok", FLW_TIMEOUT).is_err());
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let seen: Mutex<Option<(PathBuf, u32)>> = Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let server = ZkServer::start();
        *seen.lock().unwrap() = Some((server.dir().to_path_buf(), server.pid().unwrap()));
        panic!("the test body fails while the server runs");
    });
    assert!(result.is_err());
    let (dir, pid) = seen.lock().unwrap().take().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!is_zookeeper_process(pid));
}

#[test]
fn shared_server_is_started_once() {
    let a = thread::spawn(|| shared_server() as *const ZkServer as usize);
    let b = thread::spawn(|| shared_server() as *const ZkServer as usize);
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a, b);
    assert_eq!(mode(shared_server().addr()).as_deref(), Some("standalone"));
}

/// Run only as a child process by `watchdog_cleans_up_after_the_test_process_exits`.
#[test]
#[ignore = "helper run in a child process by watchdog_cleans_up_after_the_test_process_exits"]
fn child_leaks_the_shared_server() {
    let server = shared_server();
    println!(
        "ZK_CHILD pid={} port={} dir={}",
        server.pid().unwrap(),
        server.port(),
        server.dir().display()
    );
}

#[test]
fn watchdog_cleans_up_after_the_test_process_exits() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_leaks_the_shared_server",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("ZK_CHILD ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no ZK_CHILD line in\n{stdout}"));
    let field = |name: &str| -> String {
        line.split(' ')
            .find_map(|f| f.strip_prefix(name))
            .unwrap()
            .to_string()
    };
    let pid: u32 = field("pid=").parse().unwrap();
    let port: u16 = field("port=").parse().unwrap();
    let dir = PathBuf::from(field("dir="));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();

    // The child process has exited; its server must follow within moments.
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || !is_zookeeper_process(pid)
            && !dir.exists()),
        "JVM {pid} alive: {}, {} exists: {}",
        is_zookeeper_process(pid),
        dir.display(),
        dir.exists()
    );
    eprintln!(
        "watchdog cleaned up {:?} after the child exited",
        started.elapsed()
    );
    assert!(four_letter_word(addr, "ruok", FLW_TIMEOUT).is_err());
}

#[test]
fn ensemble_elects_a_new_leader_when_the_leader_dies() {
    let started = Instant::now();
    let mut ensemble = Ensemble::start(3, ServerOptions::default());
    eprintln!("3-node ensemble serving after {:?}", started.elapsed());

    assert_eq!(ensemble.len(), 3);
    let hosts: Vec<String> = (0..3)
        .map(|i| ensemble.client_addr(i).to_string())
        .collect();
    assert_eq!(ensemble.connect_string(), hosts.join(","));
    assert!(hosts.iter().all(|h| h.starts_with("127.0.0.1:")));

    let leader = ensemble.leader().expect("a leader after start");
    for i in (0..3).filter(|&i| i != leader) {
        assert_eq!(ensemble.mode(i).as_deref(), Some("follower"));
    }

    ensemble.kill(leader);
    assert!(!ensemble.is_running(leader));
    assert_eq!(ensemble.mode(leader), None);
    let killed = Instant::now();
    let mut new_leader = None;
    assert!(
        eventually(ELECTION_BOUND, || {
            new_leader = ensemble.leader();
            new_leader.is_some()
        }),
        "no new leader within {ELECTION_BOUND:?}\n{}",
        (0..3)
            .map(|i| ensemble.log_tail(i))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("new leader after {:?}", killed.elapsed());
    let new_leader = new_leader.unwrap();
    assert_ne!(new_leader, leader);
    let other = (0..3).find(|&i| i != leader && i != new_leader).unwrap();
    assert!(ensemble.wait_for_mode(other, "follower", ELECTION_BOUND));

    let restarting = Instant::now();
    ensemble.start_member(leader);
    assert!(ensemble.wait_for_mode(leader, "follower", ELECTION_BOUND));
    eprintln!(
        "old leader back as follower after {:?}",
        restarting.elapsed()
    );
    assert_eq!(ensemble.leader(), Some(new_leader));

    // A graceful stop of a follower leaves a serving quorum.
    ensemble.stop(other);
    assert!(!ensemble.is_running(other));
    assert_eq!(ensemble.mode(new_leader).as_deref(), Some("leader"));
}

#[test]
fn partitionable_ensemble_cuts_a_member_off_and_heals() {
    // A short tick: a follower that hears nothing from its leader for syncLimit (5) ticks
    // gives up, and so does a leader without a quorum of followers.
    let opts = ServerOptions {
        tick_time_ms: 500,
        ..ServerOptions::default()
    };
    let ensemble = Ensemble::start_partitionable(3, opts);
    let leader = ensemble.leader().expect("a leader after start");
    // Each member dials the others through proxies: its zoo.cfg names no other member's
    // real quorum port.
    let cfg = fs::read_to_string(ensemble.member_dir(leader).join("zoo.cfg")).unwrap();
    assert_eq!(cfg.matches("server.").count(), 3, "{cfg}");

    // The leader alone on its side: it steps down, the other two elect one of them.
    ensemble.isolate(leader);
    let mut new_leader = None;
    assert!(
        eventually(ELECTION_BOUND, || {
            new_leader = ensemble.leader().filter(|&l| l != leader);
            new_leader.is_some() && ensemble.mode(leader).is_none()
        }),
        "no new leader on the majority side, or the old one still serves: {:?}",
        (0..3).map(|i| ensemble.mode(i)).collect::<Vec<_>>()
    );
    // Healed, it comes back as a follower of the new leader.
    ensemble.heal_links();
    assert!(
        ensemble.wait_for_mode(leader, "follower", ELECTION_BOUND),
        "the old leader did not rejoin:\n{}",
        ensemble.log_tail(leader)
    );
    assert_eq!(ensemble.leader(), new_leader);

    // SIGSTOP: the member answers nothing until SIGCONT.
    assert!(ensemble.pause(leader));
    assert_eq!(ensemble.mode(leader), None);
    assert!(ensemble.resume(leader));
    assert!(ensemble.wait_for_mode(leader, "follower", ELECTION_BOUND));
}

#[test]
fn read_only_ensemble_survivor_turns_read_only() {
    let opts = ServerOptions {
        read_only_mode: true,
        ..ServerOptions::default()
    };
    let mut ensemble = Ensemble::start(3, opts);
    ensemble.kill(0);
    ensemble.kill(1);
    assert!(
        ensemble.wait_for_mode(2, "read-only", Duration::from_secs(30)),
        "{}",
        ensemble.log_tail(2)
    );
    assert_eq!(
        four_letter_word(ensemble.client_addr(2), "isro", FLW_TIMEOUT).unwrap(),
        "ro"
    );
    ensemble.start_member(0);
    assert!(eventually(Duration::from_secs(30), || matches!(
        ensemble.mode(2).as_deref(),
        Some("leader" | "follower")
    )));
}

fn fake_root(name: &str) -> PathBuf {
    let root =
        std::env::temp_dir().join(format!("zk-tests-fake-root-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    root
}

fn touch(root: &Path, path: &str) -> PathBuf {
    let file = root.join(path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, b"").unwrap();
    file
}

#[test]
fn missing_zookeeper_is_reported_with_the_fix() {
    let root = fake_root("empty");
    let err = find_install(&root, None).unwrap_err();
    assert!(err.contains(INSTALL_FIX), "{err}");
    assert!(err.contains("scripts/test.sh"), "{err}");
    assert!(err.contains("zookeeper.jar"), "{err}");

    // The scripts without the jar are not enough either.
    touch(&root, "usr/share/zookeeper/bin/zkServer.sh");
    touch(&root, "usr/bin/java");
    let err = find_install(&root, None).unwrap_err();
    assert!(err.contains("zookeeper.jar is missing"), "{err}");
    assert!(err.contains(INSTALL_FIX), "{err}");
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn missing_java_is_reported_with_the_fix() {
    let root = fake_root("nojava");
    touch(&root, "usr/share/java/zookeeper.jar");
    let err = find_install(&root, None).unwrap_err();
    assert!(err.contains("Java"), "{err}");
    assert!(err.contains(INSTALL_FIX), "{err}");
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn install_is_found_with_optional_jars() {
    let root = fake_root("found");
    let jar = touch(&root, "usr/share/java/zookeeper.jar");
    let java = touch(&root, "usr/bin/java");
    let install = find_install(&root, None).unwrap();
    assert_eq!(install.java, java);
    assert_eq!(install.class_path, vec![jar.clone()]);

    let slf4j = touch(&root, "usr/share/java/slf4j-simple.jar");
    let home_java = touch(&root, "opt/jdk/bin/java");
    let install = find_install(&root, Some(&root.join("opt/jdk"))).unwrap();
    assert_eq!(install.java, home_java);
    assert_eq!(install.class_path, vec![jar, slf4j]);
    // A JAVA_HOME without a java falls back to /usr/bin/java.
    let install = find_install(&root, Some(&root.join("nowhere"))).unwrap();
    assert_eq!(install.java, java);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn this_machine_has_zookeeper() {
    let install = zookeeper_install().unwrap_or_else(|e| panic!("{e}"));
    assert!(install.class_path[0].ends_with("zookeeper.jar"));
    assert!(install.java.is_file());
}

#[test]
fn four_letter_word_to_a_closed_port_fails() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    assert!(four_letter_word(addr, "ruok", FLW_TIMEOUT).is_err());
}
