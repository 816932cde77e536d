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
    format!(
        "{user}:{}",
        base64(&sha1(format!("{user}:{password}").as_bytes()))
    )
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

/// SHA-1 (FIPS 180-4): ZooKeeper's digest scheme hashes with it. Not for anything
/// that needs a collision-resistant hash.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeepers() {
        // DigestAuthenticationProvider.generateDigest("super:secret") and
        // ("user:secret"), and FIPS 180 vectors.
        assert_eq!(
            make_digest_acl_credential("super", "secret"),
            "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
        );
        assert_eq!(base64(&sha1(b"abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(base64(&sha1(b"")), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        // Two blocks (56+ bytes of message).
        assert_eq!(
            base64(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "hJg+RBw70m66rkqh+VEp5eVGcPE="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"abc"), "YWJj");
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
