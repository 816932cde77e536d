//! Paths: validation and chroot rules.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use zk_proto::path::{validate_path, Chroot};

/// The server's forbidden characters (PathUtils.validatePath) that a Rust string can hold.
fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}')
}

fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_.:-]{1,8}",
        1 => vec(any::<char>(), 1..6).prop_map(|cs| cs.into_iter().collect::<String>()),
    ]
    .prop_map(|s| {
        s.chars()
            .filter(|&c| c != '/' && !forbidden(c))
            .collect::<String>()
    })
    .prop_filter("a real name", |s| !s.is_empty() && s != "." && s != "..")
}

fn arb_segments() -> impl Strategy<Value = Vec<String>> {
    vec(arb_segment(), 0..6)
}

fn join(segs: &[String]) -> String {
    if segs.is_empty() {
        "/".to_owned()
    } else {
        segs.iter().map(|s| format!("/{s}")).collect()
    }
}

fn arb_control() -> impl Strategy<Value = char> {
    use proptest::char::range;
    prop_oneof![
        range('\u{0}', '\u{1f}'),
        range('\u{7f}', '\u{9f}'),
        range('\u{e000}', '\u{f8ff}'),
        range('\u{fff0}', '\u{ffff}'),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Any path made of valid segments is accepted (also as a sequential prefix,
    /// with or without a trailing slash).
    #[test]
    fn path_valid_segments_accepted(segs in arb_segments()) {
        let p = join(&segs);
        prop_assert!(validate_path(&p, false).is_ok(), "{:?}", p);
        prop_assert!(validate_path(&p, true).is_ok(), "{:?}", p);
        if !segs.is_empty() {
            let seq = format!("{p}/");
            prop_assert!(validate_path(&seq, true).is_ok(), "{:?}", seq);
            prop_assert!(validate_path(&seq, false).is_err(), "{:?}", seq);
        }
    }

    /// An empty segment anywhere is rejected (a sequential path may still end in one `/`).
    #[test]
    fn path_empty_segment_rejected(
        segs in vec(arb_segment(), 1..6),
        at in any::<prop::sample::Index>(),
    ) {
        let mut segs = segs;
        let i = at.index(segs.len() + 1);
        let trailing = i == segs.len();
        segs.insert(i, String::new());
        let p = join(&segs);
        prop_assert!(validate_path(&p, false).is_err(), "{:?}", p);
        // A sequential create's path may end in `/`, but nowhere else may a name be empty.
        prop_assert_eq!(validate_path(&p, true).is_ok(), trailing, "{:?}", p);
    }

    /// A `.` or `..` segment anywhere is rejected.
    #[test]
    fn path_relative_segment_rejected(
        segs in arb_segments(),
        at in any::<prop::sample::Index>(),
        dots in select(vec![".", ".."]),
        seq in any::<bool>(),
    ) {
        let mut segs = segs;
        segs.insert(at.index(segs.len() + 1), dots.to_owned());
        let p = join(&segs);
        prop_assert!(validate_path(&p, seq).is_err(), "{:?}", p);
    }

    /// NUL or any other forbidden character anywhere after the leading `/` is rejected.
    #[test]
    fn path_control_char_rejected(
        segs in arb_segments(),
        c in prop_oneof![Just('\0'), arb_control()],
        at in any::<prop::sample::Index>(),
        seq in any::<bool>(),
    ) {
        let p = join(&segs);
        let boundaries: Vec<usize> = p.char_indices().map(|(i, _)| i).skip(1).chain([p.len()]).collect();
        let i = boundaries[at.index(boundaries.len())];
        let mut bad = p.clone();
        bad.insert(i, c);
        prop_assert!(validate_path(&bad, seq).is_err(), "{:?}", bad);
    }

    /// Paths not starting with `/` are rejected.
    #[test]
    fn path_relative_rejected(segs in arb_segments(), seq in any::<bool>()) {
        let p = join(&segs);
        prop_assert!(validate_path(&p[1..], seq).is_err(), "{:?}", &p[1..]);
    }

    /// Chroot::strip undoes Chroot::prefix, and a prefixed valid path is valid.
    #[test]
    fn chroot_strip_undoes_prefix(root in arb_segments(), segs in arb_segments()) {
        let root = join(&root);
        let chroot = Chroot::new(&root).unwrap();
        let p = join(&segs);
        let server = chroot.prefix(&p);
        prop_assert!(validate_path(&server, false).is_ok(), "{:?}", server);
        prop_assert_eq!(chroot.strip(&server), p.clone());
        let mut in_place = server.clone();
        chroot.strip_in_place(&mut in_place);
        prop_assert_eq!(in_place, p.clone());
        if root == "/" {
            prop_assert_eq!(&server, &p);
        } else {
            prop_assert!(server.starts_with(&root));
        }
    }
}
