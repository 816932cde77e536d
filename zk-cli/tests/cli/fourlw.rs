//! Four-letter words on the plain port.

use super::support::Env;

#[test]
fn four_letter_words() {
    let env = Env::new("4lw");
    let r = env.run(&["4lw", "ruok"]).ok();
    assert_eq!(r.stdout, "imok\n");
    let r = env.run(&["4lw", "srvr"]).ok();
    assert!(r.stdout.contains("Mode: standalone"), "{r:?}");
    let j = env.run(&["--json", "4lw", "ruok"]).ok().json();
    assert_eq!(j, serde_json::json!({"command": "ruok", "output": "imok"}));
    let r = env.run(&["4lw", "zzzz"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no answer"), "{r:?}");
}
