//! Do costs from the executed plan's metrics predict a run's makespan better than the views'
//! wall times alone? The demo runs `--full` several times; before each run, the schedule is
//! predicted twice from the previous run's records, once with the engine's costs (the
//! scheduler's `CostModel` over each view's executed-plan metrics) and once with the views'
//! last wall times, and both are set beside the makespan the run then measures.
//!
//! `cargo bench --workspace --bench costs` (scale factor `DFPIPE_COSTS_SF`, default 1;
//! `DFPIPE_COSTS_ROUNDS` rounds, default 3; 2 workers).

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;

use dfpipe_engine::{Pipeline, PlanReport, RunOptions};
use dfpipe_scheduler::TaskGraph;

fn main() {
    let env = |name: &str, default: f64| std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let (scale_factor, rounds) = (env("DFPIPE_COSTS_SF", 1.0), env("DFPIPE_COSTS_ROUNDS", 3.0) as usize);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/dfpipe-costs/sf-{scale_factor}"));
    dfpipe_demo::prepare_demo(&dir, scale_factor).expect("the demo pipeline");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let options = RunOptions { full: true, workers: 2, ..RunOptions::default() };
    let run = || {
        runtime
            .block_on(async {
                let planned = Pipeline::load(&dir)?.plan(&options).await?;
                let report = planned.report()?;
                let run = planned.run(Arc::new(|_| {})).await?;
                Ok::<_, dfpipe_engine::EngineError>((report, run.schedule.makespan_ms))
            })
            .expect("a run")
    };
    run(); // The first run measures; the rounds after it predict from what it measured.
    println!("| round | actual ms | predicted from metrics ms (error) | predicted from wall times ms (error) |");
    println!("|---:|---:|---:|---:|");
    let (mut metric_error, mut wall_error) = (0.0, 0.0);
    for round in 1..=rounds {
        let (report, actual) = run();
        let metrics = predict(&report, |v| v.cost_ms);
        let wall = predict(&report, |v| v.last_duration_ms.unwrap_or(v.cost_ms));
        let error = |predicted: u64| (predicted as f64 - actual as f64) / actual as f64 * 100.0;
        metric_error += error(metrics).abs() / rounds as f64;
        wall_error += error(wall).abs() / rounds as f64;
        println!("| {round} | {actual} | {metrics} ({:+.0}%) | {wall} ({:+.0}%) |", error(metrics), error(wall));
    }
    println!("\nmean absolute error: metrics {metric_error:.0}%, wall times {wall_error:.0}%");
}

/// The makespan the scheduler predicts for `report`'s views on its workers, with `cost`.
fn predict(report: &PlanReport, cost: impl Fn(&dfpipe_engine::ViewPlanReport) -> u64) -> u64 {
    let mut graph = TaskGraph::new();
    for view in &report.views {
        graph.add_task(&view.name, ());
    }
    for (id, view) in report.views.iter().enumerate() {
        let dependencies: Vec<_> = view.depends_on.iter().filter_map(|d| graph.find(d)).collect();
        for dependency in dependencies {
            graph.add_dependency(dependency, id).expect("the views' DAG");
        }
    }
    let costs: Vec<u64> = report.views.iter().map(|v| if v.will_run { cost(v) } else { 0 }).collect();
    graph.schedule(&costs, report.schedule.workers).expect("a schedule").makespan
}
