//! The benchmark keeps working: a tiny run of each scenario (no timing is asserted, only that
//! every scenario completes, checks its answers and reports what it measured).

use serde_json::Value;

/// Runs the bench binary with `args` and returns its one JSON report.
async fn bench(args: &[&str]) -> Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .env("BENCH_DATABASE_URL", crate::helpers::server_url())
        .output()
        .await
        .expect("run the bench binary");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test]
async fn the_append_benchmark_reports_each_client_count_against_its_ceiling() {
    let report = bench(&[
        "append",
        "--clients",
        "1,2",
        "--seconds",
        "0.3",
        "--commitments",
        "4",
    ])
    .await;
    assert_eq!(report["scenario"], "append");
    let levels = report["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2, "{report}");
    for level in levels {
        // Every client makes at least one request, however busy the machine.
        let clients = number(&level["clients"]);
        assert!(number(&level["api"]["appends"]) >= clients, "{report}");
        assert!(number(&level["api"]["appends_per_sec"]) >= 0.0, "{report}");
        assert!(number(&level["ceiling"]["inserts"]) >= clients, "{report}");
        // A ratio, whatever the machine's load (rounded, it may be 0.0).
        assert!(number(&level["ratio"]) >= 0.0, "{report}");
        // pgbench ran the server's own transaction, one statement at a time and pipelined
        // (the bench checks that each transaction it counted wrote its rows).
        let own = &level["pgbench_own_transaction"];
        for run in ["one_statement_at_a_time", "pipelined"] {
            assert!(number(&own[run]["transactions"]) >= 1.0, "{report}");
        }
        assert!(
            number(&level["ratio_to_own_transaction"]) >= 0.0,
            "{report}"
        );
    }
}

#[tokio::test]
async fn the_read_benchmark_reports_the_list_against_hand_written_sql() {
    let report = bench(&[
        "read",
        "--connections",
        "1,2",
        "--seconds",
        "0.3",
        "--commitments",
        "6",
        "--assessments",
        "6",
        "--pages-over",
        "60",
    ])
    .await;
    assert_eq!(report["scenario"], "read");
    let distinct = report["distinct_pages"]["levels"]
        .as_array()
        .expect("distinct-page levels");
    assert_eq!(distinct.len(), 2, "{report}");
    for level in report["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .chain(distinct)
    {
        assert!(
            number(&level["api"]["requests"]) >= number(&level["connections"]),
            "{report}"
        );
        // A ratio, whatever the machine's load (rounded, it may be 0.0).
        assert!(number(&level["ratio"]) >= 0.0, "{report}");
        // pgbench ran the server's own statement for the same page too.
        assert!(
            number(&level["pgbench_compiled_statement"]["tps"]) > 0.0,
            "{report}"
        );
        assert!(
            number(&level["ratio_to_compiled_statement"]) >= 0.0,
            "{report}"
        );
    }
}

#[tokio::test]
async fn the_fanout_benchmark_delivers_every_round_to_every_subscriber() {
    let report = bench(&["fanout", "--subscribers", "3,10", "--rounds", "2"]).await;
    assert_eq!(report["scenario"], "fanout");
    let levels = report["levels"].as_array().expect("levels");
    assert_eq!(levels[0]["deliveries"], 6, "{report}");
    assert_eq!(levels[1]["deliveries"], 20, "{report}");
    // The floor delivered the same rounds to the same number of subscribers.
    assert_eq!(levels[0]["floor"]["deliveries"], 6, "{report}");
    assert_eq!(levels[1]["floor"]["deliveries"], 20, "{report}");
    // A ratio to the floor's p99, unless every receipt from the floor came before its
    // answer (0 ms), as it may with ten subscribers.
    let floor_p99 = number(&levels[1]["floor"]["answer_to_receipt"]["p99_ms"]);
    if floor_p99 > 0.0 {
        assert!(number(&levels[1]["p99_over_floor"]) >= 0.0, "{report}");
    } else {
        assert!(levels[1]["p99_over_floor"].is_null(), "{report}");
    }
    assert!(
        number(&levels[1]["server_rss_mib"]["peak"]) > 0.0,
        "{report}"
    );
}

#[tokio::test]
async fn the_rebuild_benchmark_replays_every_event_it_wrote() {
    let report = bench(&["rebuild", "--events", "600"]).await;
    assert_eq!(report["scenario"], "rebuild");
    assert_eq!(report["events"], 600, "{report}");
    assert!(
        number(&report["rebuild"]["events_per_sec"]) > 0.0,
        "{report}"
    );
    assert!(number(&report["ratio"]) >= 0.0, "{report}");
}

#[tokio::test]
async fn the_time_travel_benchmark_runs() {
    let report = bench(&["timetravel", "--events", "150", "--queries", "3"]).await;
    assert_eq!(report["scenario"], "timetravel");
    assert_eq!(report["events_in_stream"], 150);
    for key in ["live", "as_of", "valid_on"] {
        assert!(report[key]["p99_ms"].as_f64().is_some(), "{report}");
    }
}

#[tokio::test]
async fn the_ordering_benchmark_runs_and_every_append_is_delivered() {
    let report = bench(&["ordering", "--writers", "2", "--appends", "5"]).await;
    assert_eq!(report["scenario"], "ordering");
    for strategy in [
        "append_horizon",
        "cluster_horizon",
        "append_horizon_with_bystander",
        "cluster_horizon_with_bystander",
        "append_horizon_notify_inside",
        "serialised",
    ] {
        assert_eq!(report[strategy]["appends"], 10, "{report}");
        assert_eq!(report[strategy]["delivered"], 10, "{report}");
    }
}

#[tokio::test]
async fn an_unknown_flag_is_refused() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["append", "--clientz", "3"])
        .output()
        .await
        .expect("run the bench binary");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--clientz"));
}

#[tokio::test]
async fn the_log_benchmark_measures_appends_commit_to_leaf_proofs_and_audits() {
    let report = bench(&[
        "log",
        "--clients",
        "2",
        "--seconds",
        "0.3",
        "--rounds",
        "1",
        "--leaves",
        "600",
        "--proofs",
        "20",
        "--new-events",
        "300",
    ])
    .await;
    assert_eq!(report["scenario"], "log");
    let appends = &report["appends"];
    assert!(number(&appends["ratio_running_to_idle"]) >= 0.0, "{report}");
    // Every assessment answered while the log ran was timed to its leaf.
    assert!(
        number(&appends["commit_to_leaf"]["events"]) >= 2.0,
        "{report}"
    );
    let large = &report["large_tree"];
    assert!(number(&large["leaves"]) >= 600.0, "{report}");
    for proof in ["inclusion", "consistency"] {
        assert!(number(&large["proofs"][proof]["p99_ms"]) >= 0.0, "{report}");
    }
    // The audit from nothing reads every entry tile; the incremental one only the new.
    assert_eq!(
        number(&large["audit_from_nothing"]["tiles"]),
        (number(&large["leaves"]) / 256.0).ceil(),
        "{report}"
    );
    assert!(
        number(&large["audit_incremental"]["new_leaves"]) >= 300.0,
        "{report}"
    );
    assert!(
        number(&large["audit_incremental"]["tiles"]) <= 3.0,
        "{report}"
    );
}
