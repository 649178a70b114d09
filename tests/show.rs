//! `Planned::stream`: a view's rows from its plan, parameters bound, with nothing written;
//! readers of a materialized view see its committed output.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

use dfpipe_engine::{EngineError, Pipeline, Planned, RunOptions};
use futures::StreamExt;

/// A pipeline in `dir` over `orders` (id, amount): `clean_orders` is materialized,
/// `doubled` reads it, and `big_orders` keeps the orders above `$min_amount` (15).
fn pipeline(dir: &Path, orders: &[(i64, i64)]) {
    std::fs::write(
        dir.join(dfpipe_engine::SPEC_FILE),
        "[pipeline]\nname = \"shop\"\n\n[profile]\ntarget_partitions = 2\n\n\
         [sources.orders]\npath = \"data/orders.csv\"\nformat = \"csv\"\n\n\
         [views.clean_orders]\nmaterialize = \"parquet\"\n\n\
         [views.big_orders]\nparams = { min_amount = 15 }\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("views")).unwrap();
    for (view, sql) in [
        ("clean_orders", "select id, amount from orders where amount is not null"),
        ("doubled", "select id, amount * 2 as doubled from clean_orders"),
        ("big_orders", "select id from orders where amount > $min_amount"),
    ] {
        std::fs::write(dir.join("views").join(format!("{view}.sql")), sql).unwrap();
    }
    write_orders(dir, orders);
}

fn write_orders(dir: &Path, orders: &[(i64, i64)]) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mut csv = String::from("id,amount\n");
    for (id, amount) in orders {
        writeln!(csv, "{id},{amount}").unwrap();
    }
    std::fs::write(dir.join("data").join("orders.csv"), csv).unwrap();
}

async fn plan(dir: &Path, params: &[&str]) -> Planned {
    let options = RunOptions { params: params.iter().map(|p| (*p).to_owned()).collect(), ..RunOptions::default() };
    Pipeline::load(dir).unwrap().plan(&options).await.unwrap()
}

/// The rows `view` streams, its partitions merged.
async fn rows(planned: &Planned, view: &str) -> usize {
    let streams = planned.stream(view).await.unwrap();
    assert!(!streams.is_empty());
    let batches: Vec<_> = futures::stream::select_all(streams).collect().await;
    batches.into_iter().map(|b| b.unwrap().num_rows()).sum()
}

/// Every path under `dir`, sorted.
fn listing(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            pending.push(entry.path());
            paths.push(entry.path());
        }
    }
    paths.sort();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_streams_its_plan_and_its_readers_see_committed_outputs() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), &[(1, 10), (2, 20), (3, 30)]);
    let planned = plan(dir.path(), &[]).await;
    assert_eq!(rows(&planned, "clean_orders").await, 3);
    assert_eq!(rows(&planned, "doubled").await, 0, "clean_orders has no committed output yet");
    assert_eq!(rows(&planned, "doubled").await, 0, "a second call streams again");
    assert_eq!(listing(dir.path()).len(), 7, "nothing written: {:?}", listing(dir.path()));
    let report = planned.run(Arc::new(|_| {})).await.unwrap();
    assert_eq!(report.status, "succeeded");

    write_orders(dir.path(), &[(1, 10), (2, 20), (3, 30), (4, 40)]);
    let planned = plan(dir.path(), &[]).await;
    let before = listing(dir.path());
    assert_eq!(rows(&planned, "clean_orders").await, 4, "a materialized view streams its plan");
    assert_eq!(rows(&planned, "doubled").await, 3, "its reader reads the committed output");
    assert_eq!(listing(dir.path()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_are_bound() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), &[(1, 10), (2, 20), (3, 30)]);
    assert_eq!(rows(&plan(dir.path(), &[]).await, "big_orders").await, 2);
    assert_eq!(rows(&plan(dir.path(), &["big_orders.min_amount=25"]).await, "big_orders").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_view_names_the_close_ones() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), &[(1, 10)]);
    let planned = plan(dir.path(), &[]).await;
    for (view, message) in [
        ("dubled", "no view named `dubled`; did you mean `doubled`?"),
        ("orders", "no view named `orders`; did you mean one of `big_orders`, `clean_orders`?"),
        ("orders_clean", "no view named `orders_clean`; the views are: `big_orders`, `clean_orders`, `doubled`"),
    ] {
        match planned.stream(view).await {
            Err(error @ EngineError::UnknownView { .. }) => assert_eq!(error.to_string(), message),
            Err(other) => panic!("{view}: {other}"),
            Ok(_) => panic!("`{view}` streams"),
        }
    }
}
