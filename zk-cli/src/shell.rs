//! The interactive shell: a line editor with history, each line split like a
//! shell's words and parsed as a command; errors are printed and the shell
//! goes on. `quit`, `exit` or Ctrl-D leave it.

use std::path::PathBuf;

use clap::Parser;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use crate::args::{ShellCommand, ShellLine};
use crate::commands;
use crate::connection::Connection;
use crate::error::{CliError, EXIT_OK};
use crate::output::Printer;
use crate::report;

/// Where history is kept: `$ZKCLI_HISTORY`, else `~/.zkcli_history`.
pub fn history_path() -> Option<PathBuf> {
    match std::env::var_os("ZKCLI_HISTORY") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".zkcli_history")),
    }
}

/// Runs the shell until `quit` or end of input; the exit code.
pub fn run(conn: &mut Connection, p: &mut Printer) -> i32 {
    p.end_data_lines();
    // Connect up front, so the prompt's state means something and a bad server
    // is reported before anything is typed.
    if let Err(e) = conn.client() {
        return report(&e, p);
    }
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("zkcli: cannot start the line editor: {e}");
            return crate::error::EXIT_ZK;
        }
    };
    let history = history_path();
    if let Some(h) = &history {
        // A missing file is a first run.
        let _ = editor.load_history(h);
    }
    loop {
        let line = match editor.readline(&prompt(conn)) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("zkcli: reading input: {e}");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        if let Some(h) = &history {
            if let Err(e) = editor.save_history(h) {
                eprintln!("zkcli: cannot save history to {}: {e}", h.display());
            }
        }
        match run_line(&line, conn, p) {
            LineOutcome::Quit => break,
            LineOutcome::Continue => {}
        }
    }
    EXIT_OK
}

enum LineOutcome {
    Continue,
    Quit,
}

fn run_line(line: &str, conn: &mut Connection, p: &mut Printer) -> LineOutcome {
    let words = match split_words(line) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("zkcli: {e}");
            return LineOutcome::Continue;
        }
    };
    let parsed = match ShellLine::try_parse_from(&words) {
        Ok(l) => l,
        Err(e) => {
            // clap prints `help`, `help ls` and `ls --help` to stdout, errors to stderr.
            let _ = e.print();
            return LineOutcome::Continue;
        }
    };
    match parsed.command {
        ShellCommand::Quit => LineOutcome::Quit,
        ShellCommand::Zk(cmd) => {
            if let Err(e) = commands::run(&cmd, conn, p) {
                report(&e, p);
            }
            let _ = p.flush();
            LineOutcome::Continue
        }
    }
}

fn prompt(conn: &Connection) -> String {
    let state = match conn.existing() {
        Some(c) => format!("{:?}", c.state()),
        None => "NotConnected".into(),
    };
    format!("[zk: {} {}]> ", conn.hosts(), state)
}

/// Splits a line into words like a POSIX shell does: blanks separate words,
/// `'...'` keeps everything, `"..."` keeps everything but `\"` and `\\`, and a
/// backslash outside quotes keeps the next character. `""` is an empty word.
pub fn split_words(line: &str) -> Result<Vec<String>, CliError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(CliError::Usage("unterminated ' quote".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(CliError::Usage("unterminated \" quote".into())),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(CliError::Usage("unterminated \" quote".into())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(CliError::Usage("a line cannot end with \\".into())),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn words() {
        assert_eq!(split("  create  /x hi "), ["create", "/x", "hi"]);
        assert_eq!(split("set /x 'a b'"), ["set", "/x", "a b"]);
        assert_eq!(
            split(r#"set /x "say \"hi\" \n""#),
            ["set", "/x", r#"say "hi" \n"#]
        );
        assert_eq!(split(r"set /x a\ b"), ["set", "/x", "a b"]);
        assert_eq!(split("create /x ''"), ["create", "/x", ""]);
        assert_eq!(split("a'b'\"c\""), ["abc"]);
        assert!(split("").is_empty());
        assert!(split_words("set /x 'oops").is_err());
        assert!(split_words("set /x \"oops").is_err());
        assert!(split_words("set /x oops\\").is_err());
    }
}
