//! Long commands show progress on a terminal (a pseudo-terminal from util-linux's `script`)
//! and only their plain summary lines when writing to a pipe.

use crate::helpers::TestDatabase;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/nhs-digitisation.json");

/// Runs the binary with `args` on `url`, on a pseudo-terminal if `terminal`, else with its
/// output piped: success and everything written (both streams).
async fn run(url: &str, args: &[&str], terminal: bool) -> (bool, String) {
    let binary = env!("CARGO_BIN_EXE_commitment-tracker");
    let mut command = if terminal {
        // `script -qec CMD /dev/null` runs CMD with a pseudo-terminal as its standard streams
        // and copies what it writes to ours.
        let line = std::iter::once(binary)
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut c = tokio::process::Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        c
    } else {
        let mut c = tokio::process::Command::new(binary);
        c.args(args);
        c
    };
    let output = command
        .env("DATABASE_URL", url)
        .env("NO_COLOR", "1")
        .env_remove("NO_PROGRESS")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test]
async fn import_verify_and_rebuild_show_progress_on_a_terminal_and_summaries_elsewhere() {
    let db = TestDatabase::create().await;

    let (ok, text) = run(&db.url, &["import", SEED], true).await;
    assert!(ok, "{text}");
    assert!(text.contains("importing"), "no progress shown: {text:?}");
    assert!(text.contains("items written"), "{text:?}");

    let (ok, text) = run(&db.url, &["verify"], true).await;
    assert!(ok, "{text}");
    assert!(text.contains("checking hash chains"), "{text:?}");
    assert!(text.contains("OK: every chain holds"), "{text:?}");

    let (ok, text) = run(&db.url, &["rebuild-projections"], true).await;
    assert!(ok, "{text}");
    assert!(text.contains("replaying events"), "{text:?}");
    assert!(text.contains("rebuilt the projections"), "{text:?}");

    // Piped: the summaries alone, no progress, no terminal control codes.
    for args in [&["import", SEED][..], &["verify"], &["rebuild-projections"]] {
        let (ok, text) = run(&db.url, args, false).await;
        assert!(ok, "{args:?}: {text}");
        for progress in [
            "importing [",
            "checking hash chains",
            "replaying events",
            "\r",
            "\x1b[",
        ] {
            assert!(
                !text.contains(progress),
                "{args:?} wrote {progress:?}: {text:?}"
            );
        }
        assert!(!text.trim().is_empty());
    }
}
