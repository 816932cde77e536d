//! ACLs as zkCli writes them: `SCHEME:ID:PERMS`, comma-separated, with the
//! permissions as letters from `cdrwa` (create, delete, read, write, admin).
//! The id may hold colons itself (`digest:user:hash`, an IPv6 address): the
//! scheme ends at the first colon and the permissions start after the last.

use zk_blocking::{Acl, Id, Perms};

/// The letters in the order zkCli prints them, with their bits.
const LETTERS: [(char, Perms); 5] = [
    ('c', Perms::CREATE),
    ('d', Perms::DELETE),
    ('r', Perms::READ),
    ('w', Perms::WRITE),
    ('a', Perms::ADMIN),
];

/// Parses `world:anyone:cdrwa,digest:user:hash:rw`.
pub fn parse_acl_list(s: &str) -> Result<Vec<Acl>, String> {
    let acl = s
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(parse_entry)
        .collect::<Result<Vec<_>, _>>()?;
    if acl.is_empty() {
        return Err(format!("empty ACL {s:?}"));
    }
    Ok(acl)
}

/// One `SCHEME:ID:PERMS` entry.
pub fn parse_entry(e: &str) -> Result<Acl, String> {
    let bad = || format!("bad ACL entry {e:?}: expected SCHEME:ID:PERMS (e.g. world:anyone:cdrwa)");
    let (scheme, rest) = e.split_once(':').ok_or_else(bad)?;
    let (id, perms) = rest.rsplit_once(':').ok_or_else(bad)?;
    if scheme.is_empty() {
        return Err(bad());
    }
    Ok(Acl {
        perms: parse_perms(perms).map_err(|m| format!("bad ACL entry {e:?}: {m}"))?,
        id: Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        },
    })
}

/// `cdrwa` letters, in any order.
pub fn parse_perms(s: &str) -> Result<Perms, String> {
    if s.is_empty() {
        return Err("no permissions (letters from cdrwa)".into());
    }
    let mut p = Perms(0);
    for ch in s.chars() {
        let bit = LETTERS
            .iter()
            .find(|(l, _)| *l == ch.to_ascii_lowercase())
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("unknown permission {ch:?} (letters from cdrwa)"))?;
        p = p | bit;
    }
    Ok(p)
}

/// The letters of `p`, in `cdrwa` order.
pub fn format_perms(p: Perms) -> String {
    LETTERS
        .iter()
        .filter(|(_, b)| p.contains(*b))
        .map(|(l, _)| *l)
        .collect()
}

/// `SCHEME:ID:PERMS`, as [`parse_entry`] reads it back.
pub fn format_entry(a: &Acl) -> String {
    format!("{}:{}:{}", a.id.scheme, a.id.id, format_perms(a.perms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let acl = parse_acl_list("world:anyone:cdrwa, digest:bob:9ussi3jBkbd4no1raUvxHSkUEN8=:rw")
            .unwrap();
        assert_eq!(acl.len(), 2);
        assert_eq!(acl[0], Acl::new(Perms::ALL, "world", "anyone"));
        assert_eq!(acl[1].id.scheme, "digest");
        assert_eq!(acl[1].id.id, "bob:9ussi3jBkbd4no1raUvxHSkUEN8=");
        assert_eq!(acl[1].perms, Perms::READ | Perms::WRITE);
        assert_eq!(
            format_entry(&acl[1]),
            "digest:bob:9ussi3jBkbd4no1raUvxHSkUEN8=:rw"
        );
        assert_eq!(format_entry(&acl[0]), "world:anyone:cdrwa");
        let ip = parse_entry("ip:::1:ra").unwrap();
        assert_eq!(ip.id.id, "::1");
        assert_eq!(format_perms(ip.perms), "ra");
        assert_eq!(parse_perms("AWRDC").unwrap(), Perms::ALL);
    }

    #[test]
    fn bad_entries_say_why() {
        assert!(parse_acl_list("").is_err());
        assert!(parse_acl_list("world:anyone").is_err());
        assert!(parse_entry("world").is_err());
        assert!(parse_entry(":anyone:r").is_err());
        assert!(parse_entry("world:anyone:rx").unwrap_err().contains("'x'"));
        assert!(parse_entry("world:anyone:")
            .unwrap_err()
            .contains("no permissions"));
    }
}
