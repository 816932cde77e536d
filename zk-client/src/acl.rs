//! ACL helpers with kazoo's names (`kazoo.security`): digest credentials computed
//! as ZooKeeper's `DigestAuthenticationProvider` does, and the usual ACL lists.
//!
//! ```
//! use zk_client::acl::{make_digest_acl, make_digest_acl_credential};
//! use zk_client::Perms;
//! assert_eq!(make_digest_acl_credential("user", "secret"), "user:5w9W4eL3797Y4Wq8AcKUPPk8ha4=");
//! let acl = make_digest_acl("user", "secret", Perms::READ | Perms::WRITE);
//! assert_eq!(acl.id.scheme, "digest");
//! // A client that ran `add_auth("digest", "user:secret")` may now read and write a
//! // node created with `vec![acl]`; others get NoAuth.
//! ```

use zk_proto::{Acl, Id, Perms};

/// `user:base64(sha1("user:password"))`: the id a `digest` ACL entry names, for
/// the credential `user:password` that `add_auth("digest", ...)` sends (kazoo's
/// `make_digest_acl_credential`). ZooKeeper splits the credential at its first
/// `:`, so `user` must not contain one.
///
/// ```
/// // The same digest ZooKeeper's DigestAuthenticationProvider.generateDigest prints:
/// assert_eq!(
///     zk_client::make_digest_acl_credential("super", "secret"),
///     "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
/// );
/// ```
pub fn make_digest_acl_credential(user: &str, password: &str) -> String {
    zk_proto::digest::digest_id(&format!("{user}:{password}"))
}

/// A `digest` ACL entry for `user` with `password` (kazoo's `make_digest_acl`,
/// with the permissions as one [`Perms`] instead of five flags).
///
/// ```
/// use zk_client::{make_digest_acl, Perms};
/// // kazoo: make_digest_acl("alice", "pw", read=True, write=True)
/// let acl = make_digest_acl("alice", "pw", Perms::READ | Perms::WRITE);
/// assert_eq!(acl.id.scheme, "digest");
/// assert!(acl.id.id.starts_with("alice:"));
/// assert_eq!(acl.perms, Perms::READ | Perms::WRITE);
/// ```
pub fn make_digest_acl(user: &str, password: &str, perms: Perms) -> Acl {
    make_acl("digest", &make_digest_acl_credential(user, password), perms)
}

/// An ACL entry for any scheme (kazoo's `make_acl`): `("world", "anyone")`,
/// `("ip", "10.0.0.0/8")`, `("x509", "CN=client,O=example")`, `("sasl", "bob")`,
/// `("auth", "")`, or `("digest", credential)`.
///
/// ```
/// use zk_client::{make_acl, Perms};
/// let lan_reads = make_acl("ip", "10.0.0.0/8", Perms::READ);
/// assert_eq!((lan_reads.id.scheme.as_str(), lan_reads.id.id.as_str()), ("ip", "10.0.0.0/8"));
/// ```
pub fn make_acl(scheme: &str, credential: &str, perms: Perms) -> Acl {
    Acl::new(perms, scheme, credential)
}

/// `world:anyone` (kazoo's and Java's `ANYONE_ID_UNSAFE`).
pub fn anyone_id_unsafe() -> Id {
    Id {
        scheme: "world".into(),
        id: "anyone".into(),
    }
}

/// `auth:` — whichever ids the creating client authenticated with (`AUTH_IDS`).
pub fn auth_ids() -> Id {
    Id {
        scheme: "auth".into(),
        id: String::new(),
    }
}

/// Everything for everyone (`OPEN_ACL_UNSAFE`).
pub fn open_acl_unsafe() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Read for everyone (`READ_ACL_UNSAFE`).
pub fn read_acl_unsafe() -> Vec<Acl> {
    Acl::read_unsafe()
}

/// Everything for the creator's authenticated ids (`CREATOR_ALL_ACL`). A create
/// with it fails with `InvalidAcl` unless the client has authenticated
/// (`add_auth`, SASL or a TLS client certificate).
///
/// ```
/// use zk_client::{acl, Perms};
/// let acl = acl::creator_all_acl();
/// assert_eq!(acl[0].id, acl::auth_ids());
/// assert_eq!(acl[0].perms, Perms::ALL);
/// ```
pub fn creator_all_acl() -> Vec<Acl> {
    Acl::creator_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeepers() {
        // DigestAuthenticationProvider.generateDigest("super:secret") and
        // ("user:secret").
        assert_eq!(
            make_digest_acl_credential("super", "secret"),
            "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
        );
        assert_eq!(
            make_digest_acl_credential("user", "secret"),
            "user:5w9W4eL3797Y4Wq8AcKUPPk8ha4="
        );
    }

    #[test]
    fn acls() {
        let a = make_digest_acl("bob", "pw", Perms::ALL);
        assert_eq!(a.perms, Perms::ALL);
        assert_eq!(a.id.scheme, "digest");
        assert_eq!(a.id.id, make_digest_acl_credential("bob", "pw"));
        let a = make_acl("ip", "127.0.0.1", Perms::READ);
        assert_eq!(
            (a.id.scheme.as_str(), a.id.id.as_str()),
            ("ip", "127.0.0.1")
        );
        assert_eq!(open_acl_unsafe()[0].id, anyone_id_unsafe());
        assert_eq!(creator_all_acl()[0].id, auth_ids());
        assert_eq!(read_acl_unsafe()[0].perms, Perms::READ);
    }
}
