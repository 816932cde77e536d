//! The command line: global options and the commands, as clap parses them. The
//! interactive shell parses its lines with the same [`Command`] enum.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The one-shot command line: `zkcli [OPTIONS] [COMMAND]`.
#[derive(Debug, Parser)]
#[command(
    name = "zkcli",
    version,
    args_override_self = true,
    about = "A ZooKeeper command-line client.",
    long_about = "A ZooKeeper command-line client. With a command it runs that one command \
                  and exits; with none it opens an interactive shell (history in \
                  $ZKCLI_HISTORY, else ~/.zkcli_history).",
    after_help = "Exit codes: 0 ok, 1 ZooKeeper error (NoNode, NodeExists, BadVersion, \
                  NoAuth, NotEmpty, ...), 2 usage, 3 connection (cannot connect, \
                  connection loss, session expired)."
)]
pub struct Cli {
    /// Options for the connection and the output.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// The command; none opens the interactive shell.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options that apply to every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Servers as HOST:PORT[,HOST:PORT...][/chroot].
    #[arg(
        short = 'z',
        long = "server",
        value_name = "HOSTS",
        env = "ZK_HOSTS",
        default_value = "127.0.0.1:2181",
        global = true
    )]
    pub server: String,
    /// Session timeout (a number of milliseconds, or with a unit: 500ms, 5s, 1m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", global = true)]
    pub timeout: Duration,
    /// How long to wait for the first session before giving up (default: the session timeout).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true)]
    pub connect_timeout: Option<Duration>,
    /// Credentials sent at connect, as SCHEME:CREDENTIAL (digest:user:password); repeatable.
    /// Unlike the other options it goes before the command: clap keeps only one side's
    /// occurrences of an option allowed on both.
    #[arg(long, value_name = "SCHEME:CREDENTIAL", value_parser = parse_auth)]
    pub auth: Vec<(String, String)>,
    /// Machine output: one JSON document per command (one per event for watches).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print each request's span to stderr as it ends: the operation and path, the
    /// server that answered, the latency and the result (`trace: getData /a
    /// 127.0.0.1:2181 0.41ms ok`).
    #[arg(long, global = true)]
    pub trace: bool,
    /// Connect over TLS (the servers' secureClientPort), trusting the system's roots
    /// unless --ca names a CA. Four-letter words go over TLS too.
    #[arg(long, global = true)]
    pub tls: bool,
    /// The CA certificate(s) to trust, a PEM file (kazoo's ca=); implies --tls.
    #[arg(long, value_name = "PEM_FILE", global = true)]
    pub ca: Option<PathBuf>,
    /// A client certificate chain for mutual TLS, a PEM file (kazoo's certfile=); needs
    /// --key; implies --tls.
    #[arg(long, value_name = "PEM_FILE", requires = "key", global = true)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key, a PEM file (kazoo's keyfile=).
    #[arg(long, value_name = "PEM_FILE", requires = "cert", global = true)]
    pub key: Option<PathBuf>,
    /// Check the servers' certificates against this name instead of the host dialled.
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_server_name: Option<String>,
    /// Check the certificate chain but not the host name in it (kazoo's check_hostname=False).
    #[arg(long, global = true)]
    pub no_hostname_check: bool,
    /// SASL DIGEST-MD5 as this user (a server with DigestLoginModule); the password
    /// comes from --sasl-password or, better (not in the process list), $ZK_SASL_PASSWORD.
    #[arg(long, value_name = "USER", requires = "sasl_password", global = true)]
    pub sasl_user: Option<String>,
    /// The SASL user's password (see --sasl-user).
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "ZK_SASL_PASSWORD",
        hide_env_values = true,
        value_parser = parse_secret,
        global = true
    )]
    pub sasl_password: Option<Secret>,
    /// SASL GSSAPI (Kerberos) with the tickets of the ticket cache ($KRB5CCNAME,
    /// `kinit`) or a client keytab ($KRB5_CLIENT_KTNAME); krb5.conf from $KRB5_CONFIG.
    /// The server is `zookeeper/HOST` (the host dialled) unless --sasl-service or
    /// --server-principal say otherwise.
    #[cfg(feature = "gssapi")]
    #[arg(long, global = true, conflicts_with = "sasl_user")]
    pub sasl_gssapi: bool,
    /// The client principal to use from the cache or keytab (kazoo's sasl_options principal).
    #[cfg(feature = "gssapi")]
    #[arg(
        long,
        value_name = "PRINCIPAL",
        requires = "sasl_gssapi",
        global = true
    )]
    pub sasl_principal: Option<String>,
    /// The server's service name (the Java client's zookeeper.sasl.client.username; default zookeeper).
    #[cfg(feature = "gssapi")]
    #[arg(long, value_name = "NAME", requires = "sasl_gssapi", global = true)]
    pub sasl_service: Option<String>,
    /// The server's whole principal (the Java client's zookeeper.server.principal).
    #[cfg(feature = "gssapi")]
    #[arg(
        long,
        value_name = "PRINCIPAL",
        requires = "sasl_gssapi",
        global = true
    )]
    pub server_principal: Option<String>,
}

/// A password: kept out of Debug output (clap's, and ours).
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_owned()))
}

/// One line typed into the interactive shell.
#[derive(Debug, Parser)]
#[command(
    name = "zkcli",
    no_binary_name = true,
    disable_version_flag = true,
    override_usage = "<COMMAND> [ARGS]",
    before_help = "Type a command as on the zkcli command line (without zkcli and its \
                   global options); quit, exit or Ctrl-D leaves.",
    help_template = "{before-help}{usage-heading} {usage}\n\n{all-args}"
)]
pub struct ShellLine {
    /// The command.
    #[command(subcommand)]
    pub command: ShellCommand,
}

/// What a shell line can say: a command, or leave.
#[derive(Debug, Subcommand)]
pub enum ShellCommand {
    /// A ZooKeeper command.
    #[command(flatten)]
    Zk(Command),
    /// Leave the shell.
    #[command(visible_alias = "exit")]
    Quit,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List a node's children, sorted.
    Ls(LsArgs),
    /// Print a node's data (raw bytes).
    Get(GetArgs),
    /// Set a node's data.
    Set(SetArgs),
    /// Create a node; prints the created path.
    Create(CreateArgs),
    /// Delete a node.
    Delete(DeleteArgs),
    /// Print a node's Stat.
    Stat(PathArg),
    /// Print the tree of nodes below a path.
    Tree(TreeArgs),
    /// Stream the events of a persistent watch until Ctrl-C (or --count events).
    Watch(WatchArgs),
    /// Print a node's ACL, one SCHEME:ID:PERMS entry per line.
    Getacl(PathArg),
    /// Set a node's ACL.
    Setacl(SetaclArgs),
    /// Add credentials to the session.
    Addauth(AddauthArgs),
    /// Wait until the server has caught up with the leader on a path.
    Sync(PathArg),
    /// Print the identities the server gives this session.
    Whoami,
    /// Print the ensemble configuration.
    Config,
    /// Send a four-letter word (ruok, srvr, stat, mntr, conf, ...) and print its answer.
    #[command(name = "4lw")]
    FourLw(FourLwArgs),
}

/// A command that takes just a path.
#[derive(Debug, Clone, Args)]
pub struct PathArg {
    /// The node.
    pub path: String,
}

/// `ls [-R] [-s] PATH`.
#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Every descendant, as full paths (the path itself first).
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Print the node's Stat after the children.
    #[arg(short = 's', long)]
    pub stat: bool,
    /// The node.
    pub path: String,
}

/// `get [-s] [-w] PATH`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// Print the Stat after the data.
    #[arg(short = 's', long)]
    pub stat: bool,
    /// Then wait for the next change of the node and print it.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// The node.
    pub path: String,
}

/// `set [-v VERSION] PATH DATA`.
#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub struct SetArgs {
    /// Only if the node's data version is this.
    #[arg(short = 'v', long)]
    pub version: Option<i32>,
    /// Print the new Stat.
    #[arg(short = 's', long)]
    pub stat: bool,
    /// The node.
    pub path: String,
    /// The new data.
    pub data: OsString,
}

/// `create [-e] [-s] [-c] [-t TTL_MS] [--parents] PATH [DATA]`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Ephemeral: deleted when this session ends.
    #[arg(short = 'e', long, conflicts_with_all = ["container", "ttl"])]
    pub ephemeral: bool,
    /// Sequential: a 10-digit sequence number is appended to the name.
    #[arg(short = 's', long, conflicts_with = "container")]
    pub sequential: bool,
    /// Container: deleted by the server once its last child is gone.
    #[arg(short = 'c', long, conflicts_with = "ttl")]
    pub container: bool,
    /// Time to live in milliseconds (needs the server's extendedTypesEnabled).
    #[arg(short = 't', long, value_name = "TTL_MS")]
    pub ttl: Option<i64>,
    /// Create missing parents (persistent, empty).
    #[arg(short = 'p', long)]
    pub parents: bool,
    /// The ACL instead of world:anyone:cdrwa (SCHEME:ID:PERMS[,...]).
    #[arg(long)]
    pub acl: Option<String>,
    /// The node.
    pub path: String,
    /// Its data; none creates the node with null data.
    pub data: Option<OsString>,
}

/// `delete [-v VERSION] [-r] PATH`.
#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub struct DeleteArgs {
    /// Only if the node's data version is this.
    #[arg(short = 'v', long, conflicts_with = "recursive")]
    pub version: Option<i32>,
    /// The node and everything below it.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// The node.
    pub path: String,
}

/// `tree [PATH]`.
#[derive(Debug, Clone, Args)]
pub struct TreeArgs {
    /// The top node.
    #[arg(default_value = "/")]
    pub path: String,
}

/// `watch [-r] [--count N] PATH`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Recursive: every node below the path too.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Stop after this many events.
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// The node.
    pub path: String,
}

/// `setacl [-v ACL_VERSION] PATH ACL`.
#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub struct SetaclArgs {
    /// Only if the node's ACL version is this.
    #[arg(short = 'v', long)]
    pub version: Option<i32>,
    /// The node.
    pub path: String,
    /// SCHEME:ID:PERMS[,...], e.g. world:anyone:r,digest:user:HASH:cdrwa (perms from cdrwa).
    pub acl: String,
}

/// `addauth SCHEME AUTH`.
#[derive(Debug, Clone, Args)]
pub struct AddauthArgs {
    /// The scheme (digest, ...).
    pub scheme: String,
    /// The credential (user:password for digest).
    #[arg(value_name = "AUTH")]
    pub credential: String,
}

/// `4lw CMD`.
#[derive(Debug, Clone, Args)]
pub struct FourLwArgs {
    /// The four-letter word.
    pub cmd: String,
}

/// A duration: milliseconds, or a number with `ms`, `s` or `m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (e.g. 500ms, 5s, 1m)"))?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        other => return Err(format!("unknown unit {other:?} (ms, s or m)")),
    };
    if !(1.0..=86_400_000.0).contains(&ms) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// `SCHEME:CREDENTIAL`, split at the first colon.
pub fn parse_auth(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((scheme, cred)) if !scheme.is_empty() => Ok((scheme.to_owned(), cred.to_owned())),
        _ => Err(format!("expected SCHEME:CREDENTIAL, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
        ShellLine::command().debug_assert();
    }

    #[test]
    fn global_options_do_not_clash_with_command_arguments() {
        // A global `--auth` once shared its id with addauth's AUTH argument.
        let cli = Cli::try_parse_from([
            "zkcli",
            "--auth",
            "digest:a:b",
            "addauth",
            "digest",
            "u:p",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.global.auth, [("digest".to_string(), "a:b".to_string())]);
        assert!(cli.global.json);
        match cli.command {
            Some(Command::Addauth(a)) => assert_eq!(
                (a.scheme.as_str(), a.credential.as_str()),
                ("digest", "u:p")
            ),
            other => panic!("{other:?}"),
        }
        // A later --server wins; --auth adds up, and goes before the command.
        let cli = Cli::try_parse_from([
            "zkcli", "-z", "a:1", "--auth", "x:1", "--auth", "y:2", "ls", "/", "-z", "b:2",
        ])
        .unwrap();
        assert_eq!(cli.global.server, "b:2");
        assert_eq!(
            cli.global.auth,
            [("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert!(Cli::try_parse_from(["zkcli", "ls", "/", "--auth", "y:2"]).is_err());
        assert!(Cli::try_parse_from(["zkcli"]).unwrap().command.is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn auth() {
        assert_eq!(
            parse_auth("digest:u:p").unwrap(),
            ("digest".into(), "u:p".into())
        );
        assert!(parse_auth("digest").is_err());
        assert!(parse_auth(":x").is_err());
    }

    #[test]
    fn shell_lines_parse_like_commands() {
        let l = ShellLine::try_parse_from(["create", "-e", "-s", "/x", "hi"]).unwrap();
        match l.command {
            ShellCommand::Zk(Command::Create(c)) => {
                assert!(c.ephemeral && c.sequential);
                assert_eq!(c.path, "/x");
                assert_eq!(c.data.as_deref(), Some("hi".as_ref()));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ShellLine::try_parse_from(["exit"]).unwrap().command,
            ShellCommand::Quit
        ));
        let l = ShellLine::try_parse_from(["set", "-v", "-1", "/x", "d"]).unwrap();
        assert!(matches!(
            l.command,
            ShellCommand::Zk(Command::Set(SetArgs {
                version: Some(-1),
                ..
            }))
        ));
        assert!(ShellLine::try_parse_from(["create", "-c", "-e", "/x"]).is_err());
    }
}
