//! What each command does: the calls it makes and what it prints.

use std::time::Duration;

use serde_json::{json, Map, Value};
use zk_blocking::{
    AddWatchMode, CreateMode, CreateOptions, Data, Error, ErrorCode, OneshotWatch, WatchedEvent,
};

use crate::acl;
use crate::args::{
    AddauthArgs, Command, CreateArgs, DeleteArgs, GetArgs, LsArgs, SetArgs, SetaclArgs, WatchArgs,
};
use crate::connection::Connection;
use crate::error::CliError;
use crate::interrupt;
use crate::output::{self, Printer};

/// How often a wait for events looks whether Ctrl-C was pressed.
const POLL: Duration = Duration::from_millis(100);

/// Runs one command.
pub fn run(cmd: &Command, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    match cmd {
        Command::Ls(a) => ls(a, conn, p),
        Command::Get(a) => get(a, conn, p),
        Command::Set(a) => set(a, conn, p),
        Command::Create(a) => create(a, conn, p),
        Command::Delete(a) => delete(a, conn, p),
        Command::Stat(a) => stat(&a.path, conn, p),
        Command::Tree(a) => tree(&a.path, conn, p),
        Command::Watch(a) => watch(a, conn, p),
        Command::Getacl(a) => getacl(&a.path, conn, p),
        Command::Setacl(a) => setacl(a, conn, p),
        Command::Addauth(a) => addauth(a, conn, p),
        Command::Sync(a) => sync(&a.path, conn, p),
        Command::Whoami => whoami(conn, p),
        Command::Config => config(conn, p),
        Command::FourLw(a) => four_letter_word(&a.cmd, conn, p),
    }
}

/// `parent/child`, without doubling the root's slash.
fn join(parent: &str, child: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// A data argument as bytes (any bytes the OS passed, UTF-8 or not).
fn arg_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

fn ls(a: &LsArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let (mut children, stat) = zk
        .get_children_stat(&a.path)
        .map_err(CliError::at(&a.path))?;
    children.sort();
    let listed: Vec<String> = if a.recursive {
        // Depth first, in sorted order; nodes deleted meanwhile are skipped.
        let mut all = vec![a.path.clone()];
        let mut stack: Vec<String> = children.iter().rev().map(|c| join(&a.path, c)).collect();
        while let Some(path) = stack.pop() {
            match zk.get_children(&path) {
                Ok(mut kids) => {
                    kids.sort();
                    stack.extend(kids.iter().rev().map(|c| join(&path, c)));
                    all.push(path);
                }
                Err(Error::Server(ErrorCode::NoNode)) => {}
                Err(e) => return Err(CliError::at(&path)(e)),
            }
        }
        all
    } else {
        children
    };
    if p.json() {
        let mut doc = json!({ "path": a.path });
        doc[if a.recursive { "paths" } else { "children" }] = json!(listed);
        if a.stat {
            doc["stat"] = output::stat_json(&stat);
        }
        p.doc(&doc)?;
    } else {
        for c in &listed {
            p.line(c)?;
        }
        if a.stat {
            p.stat(&stat)?;
        }
    }
    Ok(())
}

fn data_doc(path: &str, data: &Data, stat: &zk_blocking::Stat) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("path".into(), json!(path));
    output::put_data(&mut m, data);
    m.insert("stat".into(), output::stat_json(stat));
    m
}

fn get(a: &GetArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let at = CliError::at(&a.path);
    if !a.watch {
        let (data, stat) = zk.get_data(&a.path).map_err(at)?;
        if p.json() {
            p.doc(&Value::Object(data_doc(&a.path, &data, &stat)))?;
        } else {
            p.data(&data, a.stat)?;
            if a.stat {
                p.stat(&stat)?;
            }
        }
        return Ok(());
    }
    let (data, stat, w) = zk.get_data_watch(&a.path).map_err(at)?;
    let mut doc = data_doc(&a.path, &data, &stat);
    if !p.json() {
        p.data(&data, true)?;
        if a.stat {
            p.stat(&stat)?;
        }
        p.flush()?;
    }
    let Some(event) = wait_oneshot(w).map_err(CliError::at(&a.path))? else {
        // Ctrl-C before any change.
        if p.json() {
            p.doc(&Value::Object(doc))?;
        }
        return Ok(());
    };
    // What the node holds after the change (nothing if it was deleted).
    let after = match zk.get_data(&a.path) {
        Ok(ds) => Some(ds),
        Err(Error::Server(ErrorCode::NoNode)) => None,
        Err(e) => return Err(CliError::at(&a.path)(e)),
    };
    if p.json() {
        let mut change = output::event_json(&event);
        if let Some((d, s)) = &after {
            let (dj, enc) = output::data_json(d);
            change["data"] = dj;
            change["encoding"] = enc;
            change["stat"] = output::stat_json(s);
        }
        doc.insert("change".into(), change);
        p.doc(&Value::Object(doc))?;
    } else {
        p.line(&output::event_line(&event))?;
        if let Some((d, s)) = &after {
            p.data(d, true)?;
            if a.stat {
                p.stat(s)?;
            }
        }
    }
    Ok(())
}

/// Waits for a one-shot watch; `None` if Ctrl-C came first.
fn wait_oneshot(mut w: OneshotWatch) -> Result<Option<WatchedEvent>, Error> {
    let _g = interrupt::waiting();
    loop {
        if let Some(r) = zk_client::blocking::block_on(&mut w, Some(POLL)) {
            return r.map(Some);
        }
        if interrupt::requested() {
            return Ok(None);
        }
    }
}

fn set(a: &SetArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let stat = zk
        .set_data(&a.path, arg_bytes(&a.data), a.version)
        .map_err(CliError::at(&a.path))?;
    if p.json() {
        p.doc(&json!({ "path": a.path, "stat": output::stat_json(&stat) }))?;
    } else if a.stat {
        p.stat(&stat)?;
    }
    Ok(())
}

/// The mode the flags ask for.
fn create_mode(a: &CreateArgs) -> CreateMode {
    match (a.ttl, a.container, a.ephemeral, a.sequential) {
        (Some(t), _, _, true) => CreateMode::PersistentSequentialWithTtl(t),
        (Some(t), _, _, false) => CreateMode::PersistentWithTtl(t),
        (None, true, _, _) => CreateMode::Container,
        (None, false, true, true) => CreateMode::EphemeralSequential,
        (None, false, true, false) => CreateMode::Ephemeral,
        (None, false, false, true) => CreateMode::PersistentSequential,
        (None, false, false, false) => CreateMode::Persistent,
    }
}

fn create(a: &CreateArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let acl = match &a.acl {
        Some(s) => Some(acl::parse_acl_list(s).map_err(CliError::Usage)?),
        None => None,
    };
    let opts = CreateOptions {
        mode: create_mode(a),
        acl,
        make_parents: a.parents,
    };
    let data = match &a.data {
        Some(d) => Data::new(arg_bytes(d)),
        None => Data::null(),
    };
    let zk = conn.client()?;
    let (path, stat) = zk
        .create_with(&a.path, data, &opts)
        .map_err(CliError::at(&a.path))?;
    if p.json() {
        p.doc(&json!({ "path": path, "stat": output::stat_json(&stat) }))?;
    } else {
        p.line(&path)?;
    }
    Ok(())
}

fn delete(a: &DeleteArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let at = CliError::at(&a.path);
    if a.recursive {
        // delete_recursive takes a missing node for done; say NoNode as delete does.
        if zk.exists(&a.path).map_err(CliError::at(&a.path))?.is_none() {
            return Err(at(Error::Server(ErrorCode::NoNode)));
        }
        // A large tree is many round trips: no overall call timeout.
        zk.with_timeout(None)
            .delete_recursive(&a.path)
            .map_err(at)?;
    } else {
        zk.delete(&a.path, a.version).map_err(at)?;
    }
    if p.json() {
        p.doc(&json!({ "path": a.path, "deleted": true }))?;
    }
    Ok(())
}

fn stat(path: &str, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let stat = zk
        .exists(path)
        .map_err(CliError::at(path))?
        .ok_or_else(|| CliError::at(path)(Error::Server(ErrorCode::NoNode)))?;
    if p.json() {
        p.doc(&json!({ "path": path, "stat": output::stat_json(&stat) }))?;
    } else {
        p.stat(&stat)?;
    }
    Ok(())
}

/// A node and what is below it, children sorted.
struct TreeNode {
    name: String,
    path: String,
    children: Vec<TreeNode>,
}

fn tree(path: &str, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let mut root_children = zk.get_children(path).map_err(CliError::at(path))?;
    root_children.sort();
    let root = TreeNode {
        name: path.to_owned(),
        path: path.to_owned(),
        children: build_children(zk, path, root_children)?,
    };
    if p.json() {
        p.doc(&tree_json(&root))?;
    } else {
        p.line(&root.name)?;
        print_tree(&root.children, "", p)?;
    }
    Ok(())
}

fn build_children(
    zk: &zk_blocking::Client,
    parent: &str,
    names: Vec<String>,
) -> Result<Vec<TreeNode>, CliError> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let path = join(parent, &name);
        let mut kids = match zk.get_children(&path) {
            Ok(k) => k,
            // Deleted since its parent was listed.
            Err(Error::Server(ErrorCode::NoNode)) => continue,
            Err(e) => return Err(CliError::at(&path)(e)),
        };
        kids.sort();
        let children = build_children(zk, &path, kids)?;
        out.push(TreeNode {
            name,
            path,
            children,
        });
    }
    Ok(out)
}

fn print_tree(nodes: &[TreeNode], prefix: &str, p: &mut Printer) -> Result<(), CliError> {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        p.line(&format!(
            "{prefix}{}{}",
            if last { "└── " } else { "├── " },
            n.name
        ))?;
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        print_tree(&n.children, &deeper, p)?;
    }
    Ok(())
}

fn tree_json(n: &TreeNode) -> Value {
    json!({
        "name": n.name,
        "path": n.path,
        "children": n.children.iter().map(tree_json).collect::<Vec<_>>(),
    })
}

fn watch(a: &WatchArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    if a.count == Some(0) {
        return Ok(());
    }
    let zk = conn.client()?;
    let mode = if a.recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let mut stream = zk.add_watch(&a.path, mode).map_err(CliError::at(&a.path))?;
    let _g = interrupt::waiting();
    let mut seen = 0u64;
    while !interrupt::requested() {
        match stream.recv_timeout(Some(POLL)) {
            Err(Error::Timeout) => continue,
            Err(e) => return Err(CliError::at(&a.path)(e)),
            // The session ended: the watch is gone with it.
            Ok(None) => return Err(CliError::at(&a.path)(Error::SessionExpired)),
            Ok(Some(ev)) => {
                if p.json() {
                    p.doc(&output::event_json(&ev))?;
                } else {
                    p.line(&output::event_line(&ev))?;
                    p.flush()?;
                }
                seen += 1;
                if a.count.is_some_and(|n| seen >= n) {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn getacl(path: &str, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let (acl, stat) = zk.get_acl(path).map_err(CliError::at(path))?;
    if p.json() {
        let entries: Vec<Value> = acl
            .iter()
            .map(|a| {
                json!({
                    "scheme": a.id.scheme,
                    "id": a.id.id,
                    "perms": acl::format_perms(a.perms),
                })
            })
            .collect();
        p.doc(&json!({ "path": path, "acl": entries, "stat": output::stat_json(&stat) }))?;
    } else {
        for a in &acl {
            p.line(&acl::format_entry(a))?;
        }
    }
    Ok(())
}

fn setacl(a: &SetaclArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let acl = acl::parse_acl_list(&a.acl).map_err(CliError::Usage)?;
    let zk = conn.client()?;
    let stat = zk
        .set_acl(&a.path, acl, a.version)
        .map_err(CliError::at(&a.path))?;
    if p.json() {
        p.doc(&json!({ "path": a.path, "stat": output::stat_json(&stat) }))?;
    }
    Ok(())
}

fn addauth(a: &AddauthArgs, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    zk.add_auth(&a.scheme, a.credential.as_bytes())
        .map_err(CliError::call)?;
    if p.json() {
        p.doc(&json!({ "scheme": a.scheme, "added": true }))?;
    }
    Ok(())
}

fn sync(path: &str, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let synced = zk.sync(path).map_err(CliError::at(path))?;
    if p.json() {
        p.doc(&json!({ "path": synced }))?;
    }
    Ok(())
}

fn whoami(conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let ids = zk.whoami().map_err(CliError::call)?;
    if p.json() {
        let ids: Vec<Value> = ids
            .iter()
            .map(|i| json!({ "scheme": i.auth_scheme, "user": i.user }))
            .collect();
        p.doc(&json!({ "identities": ids }))?;
    } else {
        for i in &ids {
            p.line(&format!("{}: {}", i.auth_scheme, i.user))?;
        }
    }
    Ok(())
}

fn config(conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let zk = conn.client()?;
    let (data, stat) = zk.get_config().map_err(CliError::call)?;
    if p.json() {
        p.doc(&Value::Object(data_doc("/zookeeper/config", &data, &stat)))?;
    } else {
        p.data(&data, true)?;
    }
    Ok(())
}

fn four_letter_word(cmd: &str, conn: &mut Connection, p: &mut Printer) -> Result<(), CliError> {
    let cmd = cmd.to_ascii_lowercase();
    let text = conn.four_letter_word(&cmd)?;
    if text.is_empty() {
        // What a server does with a word it does not know.
        return Err(CliError::NoAnswer(format!(
            "no answer to {cmd:?} (a word the server does not know?)"
        )));
    }
    if p.json() {
        p.doc(&json!({ "command": cmd, "output": text }))?;
    } else {
        p.text(&text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn modes() {
        let base = CreateArgs {
            ephemeral: false,
            sequential: false,
            container: false,
            ttl: None,
            parents: false,
            acl: None,
            path: "/x".into(),
            data: None,
        };
        let with = |f: fn(&mut CreateArgs)| {
            let mut a = base.clone();
            f(&mut a);
            create_mode(&a)
        };
        assert_eq!(with(|_| {}), CreateMode::Persistent);
        assert_eq!(with(|a| a.ephemeral = true), CreateMode::Ephemeral);
        assert_eq!(
            with(|a| a.sequential = true),
            CreateMode::PersistentSequential
        );
        assert_eq!(
            with(|a| {
                a.ephemeral = true;
                a.sequential = true
            }),
            CreateMode::EphemeralSequential
        );
        assert_eq!(with(|a| a.container = true), CreateMode::Container);
        assert_eq!(with(|a| a.ttl = Some(5)), CreateMode::PersistentWithTtl(5));
        assert_eq!(
            with(|a| {
                a.ttl = Some(5);
                a.sequential = true
            }),
            CreateMode::PersistentSequentialWithTtl(5)
        );
    }
}
