//! `zkcli`: a ZooKeeper command-line client on zk-blocking. One command per
//! run, or an interactive shell when no command is given.
// The argument docs are clap's help text (`HOST:PORT[/chroot]` and the like), not
// rustdoc markup: brackets there are not links.
#![allow(rustdoc::broken_intra_doc_links)]

mod acl;
mod args;
mod commands;
mod connection;
mod error;
mod interrupt;
mod output;
mod shell;
mod trace;

use clap::Parser;

use crate::args::Cli;
use crate::connection::Connection;
use crate::error::{CliError, EXIT_OK};
use crate::output::Printer;

fn main() {
    // clap exits with 2 on a usage error (0 for --help and --version).
    let cli = Cli::parse();
    interrupt::install();
    if cli.global.trace {
        trace::install();
    }
    let mut p = Printer::stdout(cli.global.json);
    let mut conn = Connection::new(cli.global.clone());
    let code = match &cli.command {
        Some(cmd) => match commands::run(cmd, &mut conn, &mut p).and_then(|()| Ok(p.flush()?)) {
            Ok(()) => EXIT_OK,
            Err(e) => report(&e, &mut p),
        },
        None => shell::run(&mut conn, &mut p),
    };
    conn.close();
    std::process::exit(code);
}

/// Prints a failure (`zkcli: NoNode: /path` on stderr; with `--json` also its
/// JSON document on stdout) and returns its exit code. A closed stdout (`| head`)
/// ends quietly.
pub(crate) fn report(e: &CliError, p: &mut Printer) -> i32 {
    if let CliError::Output(io) = e {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return EXIT_OK;
        }
    }
    if p.json() {
        let _ = p.doc(&e.to_json());
    }
    eprintln!("zkcli: {e}");
    e.exit_code()
}
