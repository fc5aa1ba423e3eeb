//! The transparency log's command line.

use commitment_tracker::tlog::checkpoint::{LogKey, verify};
use commitment_tracker::tlog::tree::MemoryTree;
use std::process::Command;

#[test]
fn log_keygen_prints_a_private_key_that_signs_checkpoints_its_verifier_key_accepts() {
    let output = Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
        .args(["log", "keygen", "--origin", "tracker.example.org/log"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let skey = String::from_utf8(output.stdout).unwrap();
    let vkey = String::from_utf8(output.stderr).unwrap();
    assert!(
        skey.starts_with("PRIVATE+KEY+tracker.example.org/log+"),
        "{skey}"
    );
    assert!(vkey.starts_with("tracker.example.org/log+"), "{vkey}");
    assert!(!vkey.contains("PRIVATE"));

    let key = LogKey::from_private(&skey).unwrap();
    assert_eq!(key.verifier_key(), vkey.trim());
    let mut tree = MemoryTree::new();
    tree.append(b"an event");
    let note = key.sign(1, tree.root_at(1)).unwrap();
    let checkpoint = verify(note.as_bytes(), vkey.trim()).unwrap();
    assert_eq!((checkpoint.size, checkpoint.root), (1, tree.root_at(1)));

    // Two runs never give the same key.
    let again = Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
        .args(["log", "keygen", "--origin", "tracker.example.org/log"])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8(again.stdout).unwrap(), skey);

    let refused = Command::new(env!("CARGO_BIN_EXE_commitment-tracker"))
        .args(["log", "keygen", "--origin", "has space"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
}
