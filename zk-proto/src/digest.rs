//! The `digest` auth scheme's ids, as ZooKeeper's `DigestAuthenticationProvider`
//! computes them: `user:base64(sha1("user:password"))`. The client side needs it
//! to write ACLs for a credential (kazoo's `make_digest_acl_credential`); the
//! simulated server needs it to turn an `addAuth` into the id it checks.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// The id for the credential `user:password` (what `addAuth("digest", ...)`
/// sends). ZooKeeper splits the credential at its first `:`, so everything before
/// it is the user.
///
/// ```
/// assert_eq!(
///     zk_proto::digest::digest_id("super:secret"),
///     "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
/// );
/// ```
pub fn digest_id(credential: &str) -> String {
    let user = credential.split(':').next().unwrap_or("");
    let hash = Sha1::digest(credential.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // From ZooKeeper's DigestAuthenticationProvider.generateDigest.
        assert_eq!(
            digest_id("user:secret"),
            "user:5w9W4eL3797Y4Wq8AcKUPPk8ha4="
        );
        assert_eq!(
            digest_id("alice:wrong"),
            "alice:9ussi3jBkbd4no1raUvxHSkUEN8="
        );
        // No colon: the whole credential is the user.
        assert!(digest_id("nobody").starts_with("nobody:"));
    }
}
