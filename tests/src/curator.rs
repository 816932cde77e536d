//! Apache Curator 5 (Debian's `libcurator-recipes-java`, `libcurator-discovery-java`)
//! as a peer process for the `curator_*` interop suites: `tests/java/CuratorPeer.java`
//! is compiled with `javac` against the system's jars once per source version (into a
//! temp dir), then run as separate processes beside the Rust clients, on the same paths
//! of a real server. A missing `javac` or jar fails loudly with the command that
//! installs it; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use crate::peer::LinePeer;

/// The peer's source, compiled at test time.
pub const SOURCE: &str = include_str!("../java/CuratorPeer.java");

/// The jars the peer needs (Curator 5 and its dependencies as Debian ships them).
const JARS: &[&str] = &[
    "curator-framework",
    "curator-client",
    "curator-recipes",
    "curator-x-discovery",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
    "slf4j-api",
    "slf4j-nop",
];

const INSTALL: &str =
    "apt-get install -y default-jdk-headless libcurator-recipes-java libcurator-discovery-java";

/// Bound of one answer from the peer.
pub const ANSWER: Duration = Duration::from_secs(30);

/// The class path of the system's Curator jars; panics naming the missing one.
pub fn classpath() -> String {
    let dir = Path::new("/usr/share/java");
    JARS.iter()
        .map(|j| {
            let p = dir.join(format!("{j}.jar"));
            assert!(
                p.exists(),
                "{} is missing: the Curator interop tests need it ({INSTALL})",
                p.display()
            );
            p.display().to_string()
        })
        .collect::<Vec<_>>()
        .join(":")
}

fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not on PATH: the Curator interop tests need a JDK ({INSTALL})")
}

/// The directory holding the compiled peer (compiled once per source version).
pub fn compiled() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        SOURCE.hash(&mut h);
        let dir = std::env::temp_dir().join(format!("zk-curator-peer-{:016x}", h.finish()));
        if dir.join("CuratorPeer.class").exists() {
            return dir;
        }
        // Compiled beside, then renamed into place: test binaries run at once.
        let tmp = std::env::temp_dir().join(format!(
            "zk-curator-peer-build-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("make the peer's build dir");
        let src = tmp.join("CuratorPeer.java");
        std::fs::write(&src, SOURCE).expect("write the peer's source");
        let out = Command::new(tool("javac"))
            .arg("-nowarn")
            .arg("-d")
            .arg(&tmp)
            .arg("-cp")
            .arg(classpath())
            .arg(&src)
            .output()
            .expect("run javac");
        assert!(
            out.status.success(),
            "javac failed on CuratorPeer.java:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another binary got there first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        assert!(
            dir.join("CuratorPeer.class").exists(),
            "compiled peer missing"
        );
        dir
    })
}

/// One Curator process (a JVM with any number of Curator clients).
pub struct Curator {
    peer: LinePeer,
}

/// What a command answered: `Ok(text)` or `Err(the exception)`.
pub type Answer = Result<String, String>;

impl Curator {
    /// Starts a peer on `hosts` with one client named `c` (10 s session).
    pub fn start(hosts: &str) -> Curator {
        let mut c = Curator::bare(hosts);
        c.ok("client c 10000");
        c
    }

    /// Starts a peer with no client yet.
    pub fn bare(hosts: &str) -> Curator {
        let dir = compiled();
        let mut java = Command::new(tool("java"));
        java.arg("-Xshare:auto")
            .arg("-XX:TieredStopAtLevel=1")
            .arg("-cp")
            .arg(format!("{}:{}", dir.display(), classpath()))
            .arg("CuratorPeer")
            .arg(hosts);
        let mut peer = LinePeer::spawn(java, "java", "0 quit", Duration::from_secs(5));
        peer.line(ANSWER, &|l| l == "ready")
            .expect("the Curator peer did not start");
        Curator { peer }
    }

    /// Sends `command` (`name args...`); returns its id.
    pub fn send(&mut self, command: &str) -> u64 {
        let id = self.peer.next_id();
        self.peer.send(&format!("{id} {command}"));
        id
    }

    /// Runs `command` on a thread of the peer's; [`answer`](Curator::answer) waits for it.
    pub fn spawn(&mut self, command: &str) -> u64 {
        self.send(&format!("bg:{command}"))
    }

    /// The answer to command `id`, if it came within `limit`.
    pub fn answer(&mut self, id: u64, limit: Duration) -> Option<Answer> {
        self.peer.answer(id, limit)
    }

    /// Runs `command` and returns its answer.
    pub fn run(&mut self, command: &str) -> Answer {
        let id = self.send(command);
        self.answer(id, ANSWER)
            .unwrap_or_else(|| panic!("Curator: no answer within {ANSWER:?} to {command}"))
    }

    /// Runs `command`; panics on an exception.
    pub fn ok(&mut self, command: &str) -> String {
        self.run(command)
            .unwrap_or_else(|e| panic!("Curator raised {e} on {command}"))
    }

    /// Waits for an `ev <text>` line starting with `prefix`.
    pub fn event(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let p = format!("ev {prefix}");
        self.peer
            .line(limit, &|l: &str| l.starts_with(&p))
            .map(|l| l[3..].to_string())
    }

    /// Runs `command(name)` in the background for each of `names` (clients,
    /// objects); the ids, in order, for [`all_done`](Curator::all_done).
    pub fn spawn_each(&mut self, names: &[&str], command: impl Fn(&str) -> String) -> Vec<u64> {
        names.iter().map(|n| self.spawn(&command(n))).collect()
    }

    /// Waits up to `limit` for each background command of `ids` (holder
    /// loops, adders) to answer `done`; `what` names them in a failure.
    pub fn all_done(&mut self, ids: &[u64], limit: Duration, what: &str) {
        for &id in ids {
            let a = self
                .answer(id, limit)
                .unwrap_or_else(|| panic!("{what}: not done within {limit:?}"));
            assert_eq!(a, Ok("done".to_string()), "{what}");
        }
    }

    /// Java waits on something Rust holds (`wait`: a command whose last
    /// argument, appended here, is the wait's bound in ms): a 300 ms wait
    /// answers "false" (else it panics with `held`); a 20 s wait, sent next,
    /// answers "true" once `release` (run 200 ms later) let go.
    pub fn waits_for_release(&mut self, wait: &str, held: &str, release: impl FnOnce()) {
        assert_eq!(self.ok(&format!("{wait} 300")), "false", "{held}");
        let id = self.send(&format!("{wait} 20000"));
        std::thread::sleep(Duration::from_millis(200));
        release();
        assert_eq!(self.answer(id, ANSWER), Some(Ok("true".into())));
    }

    /// Kills the JVM at once (its sessions stay until they expire).
    pub fn kill(&mut self) {
        self.peer.kill();
    }
}

impl Curator {
    /// The session of the peer's client `client` (id and password), for
    /// `kill_session`.
    pub fn session(&mut self, client: &str) -> zk_client::SessionInfo {
        let s = self.ok(&format!("session {client}"));
        let (id, pw) = s.split_once(' ').expect("id and password");
        zk_client::SessionInfo {
            id: u64::from_str_radix(id, 16).expect("hex session id") as i64,
            password: unhex(pw).into(),
            timeout: None,
            last_zxid: 0,
        }
    }
}

/// Bytes from lowercase hex as the peer prints them (`-` for none).
pub fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Bytes as the peer reads them: lowercase hex, `-` for none.
pub fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
