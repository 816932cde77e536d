//! Where the JVM and ZooKeeper's jars are ([`Install`]); a missing install is a panic
//! naming the fix.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::INSTALL_FIX;

/// Jars added to the class path after `zookeeper.jar` when present: logging, and the Netty codec
/// and resolver that the Netty connection factory (TLS) needs. `zookeeper.jar`'s manifest names
/// the rest of its dependencies.
pub(crate) const OPTIONAL_JARS: &[&str] =
    &["slf4j-simple.jar", "netty-codec.jar", "netty-resolver.jar"];

/// Where the JVM and ZooKeeper's jars are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    /// The `java` binary.
    pub java: PathBuf,
    /// `zookeeper.jar` first, then whichever of the optional jars are installed.
    pub class_path: Vec<PathBuf>,
}

impl Install {
    pub(crate) fn class_path_arg(&self) -> String {
        let parts: Vec<String> = self
            .class_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        parts.join(":")
    }
}

/// Finds the Debian ZooKeeper package on this machine (`/usr/share/java/zookeeper.jar`, java from
/// `$JAVA_HOME` or `/usr/bin/java`). The error says what is missing and how to install it.
pub fn zookeeper_install() -> Result<Install, String> {
    let java_home = std::env::var_os("JAVA_HOME").map(PathBuf::from);
    find_install(Path::new("/"), java_home.as_deref())
}

/// [`zookeeper_install`] under a different file-system root (for testing the detection itself):
/// looks for `<root>/usr/share/java/zookeeper.jar` and for `<java_home>/bin/java`, else
/// `<root>/usr/bin/java`.
pub fn find_install(root: &Path, java_home: Option<&Path>) -> Result<Install, String> {
    let jars = root.join("usr/share/java");
    let jar = jars.join("zookeeper.jar");
    let script = root.join("usr/share/zookeeper/bin/zkServer.sh");
    let fix = format!(
        "The zk-tests harness runs a real ZooKeeper 3.8 server and never skips. \
         Fix: `{INSTALL_FIX}` (or run `scripts/test.sh`, which installs it)."
    );
    if !jar.is_file() {
        let what = if script.is_file() {
            format!(
                "{} exists but {} is missing",
                script.display(),
                jar.display()
            )
        } else {
            format!("neither {} nor {} exists", script.display(), jar.display())
        };
        return Err(format!("ZooKeeper is not installed: {what}. {fix}"));
    }
    let java = java_home
        .map(|home| home.join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| root.join("usr/bin/java"));
    if !java.is_file() {
        return Err(format!(
            "ZooKeeper is installed but there is no Java runtime at {} (nor in $JAVA_HOME). {fix}",
            java.display()
        ));
    }
    let mut class_path = vec![jar];
    class_path.extend(
        OPTIONAL_JARS
            .iter()
            .map(|name| jars.join(name))
            .filter(|path| path.is_file()),
    );
    Ok(Install { java, class_path })
}

/// The installation, looked up once per process; panics loudly when ZooKeeper is missing.
pub(crate) fn install() -> &'static Install {
    static INSTALL: OnceLock<Result<Install, String>> = OnceLock::new();
    match INSTALL.get_or_init(zookeeper_install) {
        Ok(install) => install,
        Err(message) => panic!(
            "\n\n========== zk-tests: ZOOKEEPER IS NOT INSTALLED ==========\n{message}\n\
             ==========================================================\n"
        ),
    }
}
