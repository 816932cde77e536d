//! Path rules (the server's `PathUtils.validatePath`) and chroot handling, as pure
//! functions: an invalid path is refused before anything is sent, because the
//! server checks some rules late and reports them as the wrong error.

use crate::error::UsageError;

fn invalid(path: &str, reason: &'static str) -> UsageError {
    UsageError::InvalidPath {
        path: path.to_owned(),
        reason,
    }
}

fn forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0000}'..='\u{001f}'
        | '\u{007f}'..='\u{009f}'
        // U+D800..U+DFFF cannot occur in a Rust string; the rest of the server's range can.
        | '\u{e000}'..='\u{f8ff}'
        | '\u{fff0}'..='\u{ffff}')
}

/// Checks a node path. `sequential`: the path of a sequential create, which may end in `/`.
///
/// Why: to reject a user's path with the rule it breaks before building a
/// request ([`Session::submit`](crate::Session::submit) runs the same check).
///
/// ```
/// use zk_proto::path::validate_path;
/// use zk_proto::UsageError;
///
/// assert!(validate_path("/", false).is_ok());
/// assert!(validate_path("/app/config", false).is_ok());
/// // A sequential create's path may end in `/`: the server appends the counter.
/// assert!(validate_path("/queue/", true).is_ok());
///
/// let reason = |path: &str| match validate_path(path, false) {
///     Err(UsageError::InvalidPath { reason, .. }) => reason,
///     other => panic!("{path:?}: {other:?}"),
/// };
/// assert_eq!(reason(""), "path must not be empty");
/// assert_eq!(reason("app"), "path must start with /");
/// assert_eq!(reason("/app/"), "path must not end with /");
/// assert_eq!(reason("/app//x"), "empty node name");
/// assert_eq!(reason("/app/../x"), "relative paths not allowed");
/// assert_eq!(reason("/app/."), "relative paths not allowed");
/// assert_eq!(reason("/a\0b"), "null character not allowed");
/// assert_eq!(reason("/a\u{1}b"), "invalid character");
/// assert_eq!(reason("/a\u{fff0}"), "invalid character");
/// ```
pub fn validate_path(path: &str, sequential: bool) -> Result<(), UsageError> {
    if path.is_empty() {
        return Err(invalid(path, "path must not be empty"));
    }
    if !path.starts_with('/') {
        return Err(invalid(path, "path must start with /"));
    }
    if path.len() == 1 {
        return Ok(());
    }
    // A sequential create appends the counter, so a trailing slash is allowed there.
    let checked = if sequential && path.ends_with('/') {
        &path[..path.len() - 1]
    } else {
        path
    };
    if checked.ends_with('/') {
        return Err(invalid(path, "path must not end with /"));
    }
    // The usual path is printable ASCII, which holds no forbidden character: one
    // pass over the bytes checks its node names (a request pays this every call).
    if path.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let names = &checked.as_bytes()[1..];
        let mut start = 0;
        for i in 0..=names.len() {
            if i == names.len() || names[i] == b'/' {
                match &names[start..i] {
                    b"" => return Err(invalid(path, "empty node name")),
                    b"." | b".." => return Err(invalid(path, "relative paths not allowed")),
                    _ => {}
                }
                start = i + 1;
            }
        }
        return Ok(());
    }
    if let Some(c) = path.chars().find(|&c| forbidden_char(c)) {
        return Err(if c == '\0' {
            invalid(path, "null character not allowed")
        } else {
            invalid(path, "invalid character")
        });
    }
    for seg in checked[1..].split('/') {
        match seg {
            "" => return Err(invalid(path, "empty node name")),
            "." | ".." => return Err(invalid(path, "relative paths not allowed")),
            _ => {}
        }
    }
    Ok(())
}

/// A chroot: the prefix a client puts before every path it sends and strips from
/// every path it receives. The server knows nothing of it.
///
/// Why: to map between the paths an application uses and the server's, as the
/// session does for requests, replies and watch events (the connect string's
/// `/chroot` suffix).
///
/// ```
/// use zk_proto::path::Chroot;
///
/// let root = Chroot::new("/tenants/a").unwrap();
/// assert_eq!(root.root(), Some("/tenants/a"));
/// assert_eq!(root.prefix("/config"), "/tenants/a/config");
/// assert_eq!(root.prefix("/"), "/tenants/a");
/// assert_eq!(root.strip("/tenants/a/config"), "/config");
/// assert_eq!(root.strip("/tenants/a"), "/");
/// // Outside the root (or a sibling sharing its prefix): unchanged.
/// assert_eq!(root.strip("/zookeeper/config"), "/zookeeper/config");
/// assert_eq!(root.strip("/tenants/ab"), "/tenants/ab");
///
/// let mut p = String::from("/x");
/// root.prefix_in_place(&mut p);
/// assert_eq!(p, "/tenants/a/x");
/// root.strip_in_place(&mut p);
/// assert_eq!(p, "/x");
///
/// // `/` is no chroot; a root must itself be a valid path.
/// assert_eq!(Chroot::new("/").unwrap(), Chroot::none());
/// assert_eq!(Chroot::none().prefix("/x"), "/x");
/// assert!(Chroot::new("/tenants/").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// No chroot.
    pub fn none() -> Chroot {
        Chroot(None)
    }

    /// A chroot at `root` (validated; `/` means none).
    pub fn new(root: &str) -> Result<Chroot, UsageError> {
        validate_path(root, false)?;
        Ok(if root == "/" {
            Chroot(None)
        } else {
            Chroot(Some(root.to_owned()))
        })
    }

    /// The root, if any.
    pub fn root(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The server path for a client path (`/` maps to the root itself).
    pub fn prefix(&self, path: &str) -> String {
        match &self.0 {
            None => path.to_owned(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => {
                let mut s = String::with_capacity(root.len() + path.len());
                s.push_str(root);
                s.push_str(path);
                s
            }
        }
    }

    /// Turns a client path into its server path in place (no allocation without
    /// a chroot).
    pub fn prefix_in_place(&self, path: &mut String) {
        match &self.0 {
            None => {}
            Some(root) if path == "/" => path.clone_from(root),
            Some(root) => path.insert_str(0, root),
        }
    }

    /// The client path for a server path. Paths outside the root (such as
    /// `/zookeeper/config`) pass through unchanged.
    pub fn strip(&self, path: &str) -> String {
        match &self.0 {
            None => path.to_owned(),
            Some(root) => match path.strip_prefix(root.as_str()) {
                Some("") => "/".to_owned(),
                Some(rest) if rest.starts_with('/') => rest.to_owned(),
                _ => path.to_owned(),
            },
        }
    }

    /// Strips in place.
    pub fn strip_in_place(&self, path: &mut String) {
        if self.0.is_some() {
            *path = self.strip(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_paths() {
        for p in ["/", "/a", "/a/b", "/a.b/c..d", "/zookeeper/config", "/é/ü"] {
            assert!(validate_path(p, false).is_ok(), "{p}");
        }
        assert!(validate_path("/lock/", true).is_ok());
        assert!(validate_path("/lock/n-", true).is_ok());
    }

    #[test]
    fn rejects_invalid_paths() {
        for p in [
            "",
            "a",
            "/a/",
            "/a//b",
            "//",
            "/a/./b",
            "/a/../b",
            "/.",
            "/..",
            "/a\0b",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{e000}x",
            "/\u{fff0}",
            "/a/.",
        ] {
            assert!(validate_path(p, false).is_err(), "{p:?}");
        }
        assert!(validate_path("/a//", true).is_err());
        assert!(validate_path("/a/", false).is_err());
    }

    /// The ASCII fast path decides exactly as the general one: every string of up to
    /// six characters over `/`, `.`, `a`, a space, a control character and `é`, both
    /// modes, against the checks as written before the fast path.
    #[test]
    fn fast_path_agrees_with_the_general_checks() {
        fn general(path: &str, sequential: bool) -> bool {
            if path.is_empty() || !path.starts_with('/') {
                return false;
            }
            if path.len() == 1 {
                return true;
            }
            let checked = if sequential && path.ends_with('/') {
                &path[..path.len() - 1]
            } else {
                path
            };
            !checked.ends_with('/')
                && !path.chars().any(forbidden_char)
                && checked[1..]
                    .split('/')
                    .all(|seg| !matches!(seg, "" | "." | ".."))
        }
        let alphabet = ['/', '.', 'a', ' ', '\u{1}', 'é'];
        let mut paths = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..6 {
            let mut next = Vec::new();
            for p in &paths {
                for c in alphabet {
                    let mut q = p.clone();
                    q.push(c);
                    next.push(q);
                }
            }
            all.extend(next.iter().cloned());
            paths = next;
        }
        all.push(String::new());
        for p in &all {
            for seq in [false, true] {
                assert_eq!(
                    validate_path(p, seq).is_ok(),
                    general(p, seq),
                    "{p:?} sequential={seq}"
                );
            }
        }
    }

    #[test]
    fn chroot_round_trip() {
        let c = Chroot::new("/app").unwrap();
        assert_eq!(c.prefix("/"), "/app");
        assert_eq!(c.prefix("/x/y"), "/app/x/y");
        assert_eq!(c.strip("/app"), "/");
        assert_eq!(c.strip("/app/x"), "/x");
        assert_eq!(c.strip("/apple"), "/apple");
        assert_eq!(c.strip("/zookeeper/config"), "/zookeeper/config");
        assert_eq!(Chroot::new("/").unwrap(), Chroot::none());
        assert!(Chroot::new("/app/").is_err());
    }

    /// A refused path names the rule it breaks: a NUL is told apart from the
    /// other forbidden characters (as the server's messages do).
    #[test]
    fn a_forbidden_character_is_named() {
        let reason = |path: &str| match validate_path(path, false) {
            Err(UsageError::InvalidPath { reason, .. }) => reason,
            other => panic!("{path:?}: {other:?}"),
        };
        assert_eq!(reason("/a\0b"), "null character not allowed");
        assert_eq!(reason("/a\u{1}b"), "invalid character");
        assert_eq!(reason("/a\u{fff0}"), "invalid character");
    }
}
