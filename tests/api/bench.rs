//! The benchmark keeps working: a tiny run of each scenario (no timing is asserted).

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

#[tokio::test]
async fn the_ordering_benchmark_runs_and_every_append_is_delivered() {
    let report = bench(&["ordering", "--writers", "2", "--appends", "5"]).await;
    assert_eq!(report["scenario"], "ordering");
    for strategy in ["horizon", "horizon_notify_inside", "serialised"] {
        assert_eq!(report[strategy]["appends"], 10, "{report}");
        assert_eq!(report[strategy]["delivered"], 10, "{strategy}: {report}");
    }
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
