//! The shell: lines from a pipe, and an interactive session through a pty.

use rexpect::session::PtySession;
use serde_json::Value;

use super::support::{lines, Changer, Env};

#[test]
fn shell_reads_lines_from_a_pipe_and_goes_on_after_errors() {
    let env = Env::new("shell-pipe");
    let r = env.run_input(
        &[],
        "create /p 'two words'\nget /nope\nbogus\nget /p\nls /\nexit\nls /never\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r.stdout);
    assert!(out.contains(&"/p"), "{out:?}");
    assert!(out.contains(&"two words"), "{out:?}");
    assert!(out.contains(&"p"), "{out:?}");
    assert!(r.stderr.contains("zkcli: NoNode: /nope"), "{r:?}");
    assert!(
        r.stderr.contains("unrecognized subcommand 'bogus'"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("/never"), "exit stops the shell: {r:?}");
    // --json holds for every line: one document each, errors included.
    let r = env.run_input(&["--json"], "get /p\nget /nope\nls /\n");
    assert_eq!(r.code, 0, "{r:?}");
    let docs: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3, "{r:?}");
    assert_eq!(docs[0]["data"], "two words");
    assert_eq!(docs[1]["error"]["kind"], "NoNode");
    assert_eq!(docs[2]["children"], serde_json::json!(["p"]));
    // End of input leaves with 0 as well; help lists the commands.
    let r = env.run_input(&[], "help\n");
    assert_eq!(r.code, 0);
    for c in ["ls", "getacl", "4lw", "quit"] {
        assert!(r.stdout.contains(c), "{c} in {r:?}");
    }
}

#[test]
fn interactive_shell_through_a_pty() {
    let env = Env::new("shell-pty");
    let _ = std::fs::remove_file(&env.history);
    let mut s = on_a_terminal(&env, &[]);
    s.exp_string("]> ").expect("the prompt");
    s.send_line("create /x hi").unwrap();
    s.exp_regex(r"[\r\n]/x\r?\n")
        .expect("create prints the path");
    s.exp_string("]> ").unwrap();
    s.send_line("get /x").unwrap();
    s.exp_regex(r"[\r\n]hi\r?\n").expect("get prints the data");
    s.exp_string("]> ").unwrap();
    s.send_line("get /nope").unwrap();
    s.exp_string("zkcli: NoNode: /nope").expect("errors print");
    s.exp_string("]> ").expect("and the shell goes on");
    // Ctrl-C ends a watch and gives the prompt back.
    s.send_line("create /w").unwrap();
    s.exp_string("]> ").unwrap();
    s.send_line("watch /w").unwrap();
    let changer = Changer::start(env.client(), "/w");
    s.exp_string("NodeDataChanged /w")
        .expect("the watch prints events");
    drop(changer);
    s.send_control('c').unwrap();
    s.exp_string("]> ")
        .expect("Ctrl-C stops the watch, not the shell");
    s.send_line("4lw ruok").unwrap();
    s.exp_string("imok").unwrap();
    s.exp_string("]> ").unwrap();
    s.send_line("quit").unwrap();
    ends_with_0(s, "quit ends the shell");
    let history = std::fs::read_to_string(&env.history).expect("history was saved");
    for line in ["create /x hi", "get /x", "get /nope", "quit"] {
        assert!(history.lines().any(|l| l == line), "{line} in {history:?}");
    }
    // The node is really there.
    assert_eq!(env.client().get_data("/x").unwrap().0, "hi");

    // Ctrl-D leaves with 0 too.
    let mut s = on_a_terminal(&env, &[]);
    s.exp_string("]> ").unwrap();
    s.send_line("get /x").unwrap();
    s.exp_regex(r"[\r\n]hi\r?\n").unwrap();
    s.exp_string("]> ").unwrap();
    s.send_control('d').unwrap();
    ends_with_0(s, "Ctrl-D ends the shell");

    // A one-shot watch on a terminal: Ctrl-C is its normal end, exit 0.
    let mut s = on_a_terminal(&env, &["watch", "/w"]);
    let changer = Changer::start(env.client(), "/w");
    s.exp_string("NodeDataChanged /w").unwrap();
    drop(changer);
    s.send_control('c').unwrap();
    ends_with_0(s, "Ctrl-C ends the watch");
}

/// `args` run on a terminal (a pty), as a user types at it.
fn on_a_terminal(env: &Env, args: &[&str]) -> PtySession {
    let mut cmd = env.command(args);
    cmd.env("TERM", "xterm");
    rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn in a pty")
}

/// The session ends (`why` it should) and zkcli exits with 0.
fn ends_with_0(mut s: PtySession, why: &str) {
    s.exp_eof().expect(why);
    match s.process().wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => assert_eq!(code, 0),
        other => panic!("{other:?}"),
    }
}
