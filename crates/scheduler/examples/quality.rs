//! Schedule quality: makespan ÷ lower bound of critical-path-first list scheduling, against
//! dbt's depth order and FIFO ready order, on three families of random DAGs.
//!
//! `cargo run --release -p dfpipe-scheduler --example quality` prints a markdown table (the
//! one in BENCHMARKS.md). Everything is seeded, so the table is the same on every machine.
//!
//! - Costs are log-uniform from 10 to 10,000 (views differ by orders of magnitude).
//! - Task ids are shuffled before the graph is built, so no rule gains from the lowest-id
//!   tie-break.
//! - The lower bound is `max(critical path, total work / P)`: no schedule beats it, and the
//!   optimum may not reach it, so a ratio of 1.00 is optimal but 1.03 need not be 3% off.

#![allow(clippy::print_stdout)]

use dfpipe_scheduler::{Priority, TaskGraph};

/// Graphs per family and worker count.
const SAMPLES: u64 = 50;
/// Tasks per graph (about).
const TASKS: usize = 2000;

/// SplitMix64: a deterministic generator in a few lines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    /// Log-uniform from 10 to 10,000.
    fn cost(&mut self) -> u64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (10f64 * 1000f64.powf(unit)).round() as u64
    }
}

/// A DAG under construction: costs and edges in generation order.
#[derive(Default)]
struct Dag {
    costs: Vec<u64>,
    edges: Vec<(usize, usize)>,
    /// Fork-join only: per stage, the fork and join costs summed, and each branch's cost.
    stages: Vec<(u64, Vec<u64>)>,
}

impl Dag {
    fn task(&mut self, rng: &mut Rng) -> usize {
        self.costs.push(rng.cost());
        self.costs.len() - 1
    }

    /// Fork-join only: a lower bound tighter than `max(critical path, work / P)`. Stages run
    /// one after the other, and a stage's branches run between its fork and its join, so any
    /// schedule takes at least the sum over stages of `fork + join + max(longest branch,
    /// branch work / P)`.
    fn stage_bound(&self, workers: usize) -> u64 {
        self.stages
            .iter()
            .map(|(serial, branches)| {
                let longest = branches.iter().copied().max().unwrap_or(0);
                serial + longest.max(branches.iter().sum::<u64>().div_ceil(workers as u64))
            })
            .sum()
    }

    /// The graph with ids shuffled, and its costs in the new ids.
    fn build(self, rng: &mut Rng) -> (TaskGraph<()>, Vec<u64>) {
        let n = self.costs.len();
        let mut id: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            id.swap(i, rng.range(0, i));
        }
        let mut costs = vec![0; n];
        for (old, &new) in id.iter().enumerate() {
            costs[new] = self.costs[old];
        }
        let mut graph = TaskGraph::new();
        for new in 0..n {
            graph.add_task(format!("t{new}"), ());
        }
        for (a, b) in self.edges {
            graph.add_dependency(id[a], id[b]).expect("ids are in range");
        }
        (graph, costs)
    }
}

/// Layers of 2 to 200 tasks; each task needs 1 to 3 tasks of the layer before.
fn layered(rng: &mut Rng) -> Dag {
    let mut dag = Dag::default();
    let mut previous: Vec<usize> = Vec::new();
    while dag.costs.len() < TASKS {
        let layer: Vec<usize> = (0..rng.range(2, 200)).map(|_| dag.task(rng)).collect();
        if !previous.is_empty() {
            for &task in &layer {
                for _ in 0..rng.range(1, 3) {
                    let dependency = previous[rng.range(0, previous.len() - 1)];
                    dag.edges.push((dependency, task));
                }
            }
        }
        previous = layer;
    }
    dag
}

/// Stages of fork, 2 to 128 branches of 1 to 4 tasks each, join; each fork follows the last join.
fn fork_join(rng: &mut Rng) -> Dag {
    let mut dag = Dag::default();
    let mut last_join = None;
    while dag.costs.len() < TASKS {
        let fork = dag.task(rng);
        if let Some(join) = last_join {
            dag.edges.push((join, fork));
        }
        let branches: Vec<(usize, u64)> = (0..rng.range(2, 128))
            .map(|_| {
                let (mut cursor, mut cost) = (fork, 0);
                for _ in 0..rng.range(1, 4) {
                    let next = dag.task(rng);
                    dag.edges.push((cursor, next));
                    cost += dag.costs[next];
                    cursor = next;
                }
                (cursor, cost)
            })
            .collect();
        let join = dag.task(rng);
        for &(end, _) in &branches {
            dag.edges.push((end, join));
        }
        dag.stages.push((dag.costs[fork] + dag.costs[join], branches.iter().map(|b| b.1).collect()));
        last_join = Some(join);
    }
    dag
}

/// A chain of tasks; each link also feeds 0 to 100 side tasks, which may feed one more.
fn chain_with_fan_out(rng: &mut Rng) -> Dag {
    let mut dag = Dag::default();
    let mut link = dag.task(rng);
    while dag.costs.len() < TASKS {
        for _ in 0..rng.range(0, 100) {
            let side = dag.task(rng);
            dag.edges.push((link, side));
            if rng.range(0, 3) == 0 {
                let after = dag.task(rng);
                dag.edges.push((side, after));
            }
        }
        let next = dag.task(rng);
        dag.edges.push((link, next));
        link = next;
    }
    dag
}

/// Mean and worst of a sample.
fn summary(ratios: &[f64]) -> (f64, f64) {
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    (mean, ratios.iter().copied().fold(0.0, f64::max))
}

/// A family of random DAGs: its name and its generator.
type Family = (&'static str, fn(&mut Rng) -> Dag);

fn main() {
    let families: [Family; 3] =
        [("layered", layered), ("fork-join", fork_join), ("chain with fan-out", chain_with_fan_out)];
    let rules = [Priority::CriticalPath, Priority::Depth, Priority::Fifo];
    println!("makespan ÷ lower bound, mean / worst of {SAMPLES} graphs of about {TASKS} tasks each");
    println!();
    println!("| family | P | critical path first | dbt depth order | FIFO ready order |");
    println!("|---|---:|---|---|---|");
    let (mut above, mut not_best) = (Vec::new(), Vec::new());
    let mut stage_rows = Vec::new();
    for (family, generate) in families {
        for workers in [2, 8, 64] {
            let mut ratios = vec![Vec::new(); rules.len()];
            let mut staged = Vec::new();
            for sample in 0..SAMPLES {
                let mut rng = Rng(sample.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ workers as u64);
                let dag = generate(&mut rng);
                let stage_bound = dag.stage_bound(workers);
                let (graph, costs) = dag.build(&mut rng);
                for (r, &rule) in rules.iter().enumerate() {
                    let schedule = graph.schedule_with(&costs, workers, rule).expect("generated graphs are acyclic");
                    ratios[r].push(schedule.makespan as f64 / schedule.lower_bound as f64);
                    if rule == Priority::CriticalPath && stage_bound > 0 {
                        staged.push(schedule.makespan as f64 / stage_bound.max(schedule.lower_bound) as f64);
                    }
                }
            }
            let [cp, depth, fifo] = [0, 1, 2].map(|r| summary(&ratios[r]));
            if cp.0 > 1.05 {
                above.push(format!("{family} at P = {workers}"));
            }
            if cp.0 >= depth.0.min(fifo.0) {
                not_best.push(format!("{family} at P = {workers}"));
            }
            let cell = |(mean, worst): (f64, f64)| format!("{mean:.3} / {worst:.3}");
            println!("| {family} | {workers} | {} | {} | {} |", cell(cp), cell(depth), cell(fifo));
            if !staged.is_empty() {
                stage_rows.push(format!("| {family} | {workers} | {} |", cell(summary(&staged))));
            }
        }
    }
    println!();
    println!("critical path first against the fork-join stage bound (see `Dag::stage_bound`), mean / worst");
    println!();
    println!("| family | P | makespan ÷ stage bound |");
    println!("|---|---:|---|");
    for row in stage_rows {
        println!("{row}");
    }
    println!();
    let list = |rows: &[String]| if rows.is_empty() { "none".to_owned() } else { rows.join(", ") };
    println!("critical path first, mean above 1.05: {}", list(&above));
    println!("critical path first, mean not below both baselines: {}", list(&not_best));
}
