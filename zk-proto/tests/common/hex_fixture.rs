//! The golden captures in `tests/fixtures/*.hex` (written by `capture.py`), read by
//! the golden test and by the fuzz corpus generator: hex digits with white space
//! anywhere, and comment lines starting with `#`.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the `.hex` fixtures are.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The bytes of fixture `name` (every frame in it, length prefixes included), or
/// `None` if there is no such fixture.
pub fn read_fixture(name: &str) -> Option<Vec<u8>> {
    let text = fs::read_to_string(fixtures_dir().join(format!("{name}.hex"))).ok()?;
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(hex.len() % 2 == 0, "{name}: odd number of hex digits");
    Some(
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|e| panic!("{name}: {e}"))
            })
            .collect(),
    )
}
