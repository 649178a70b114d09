#!/usr/bin/env python3
"""dfpipe side by side with DuckDB and Polars (issue 18, goals P4 and P6).

`cargo xtask compare --peers` lays out the work directory and runs this script with the
virtual environment's Python (which has `duckdb` and `polars`):

    peers.py harness --dfpipe PATH --dbt PATH --work DIR [--rounds N] [--threads T]

The work directory holds `data/` (TPC-H parquet from `dfpipe gen tpch`), `demo/` (the demo
pipeline over `../data`) and `writer/` (a one-view pipeline rewriting `lineitem`). Every
measure is one whole process timed from outside, in alternating rounds (the order of the
sides reversed every other round) after one untimed warm-up round. The harness checks the
row counts of every output against dfpipe's, prints each round, a markdown table of medians
and ratios, and the load average before and after. The peers' processes:

    dbt run                       the demo as a dbt-duckdb project (`dbt_project`), the `dbt`
                                  of its own virtual environment (`--dbt`)
    peers.py duckdb-demo DIR      the demo's 22 query views by DuckDB, COPY to zstd parquet
    peers.py duckdb-writer DIR    lineitem rewritten by DuckDB COPY
    peers.py polars-writer DIR    lineitem rewritten by Polars scan_parquet().sink_parquet()

Outputs are measured, never asserted by a test: nothing in `cargo test` runs this script.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

# zstd level 3 everywhere: dfpipe's demo profile says `zstd(3)`, which is also DuckDB's
# and Polars' default level; it is spelled out so that a change of default shows.
ZSTD_LEVEL = 3
# The writer pipeline's one view, as `xtask/src/peers.rs` lays it out.
WRITER_VIEW = "lineitem_zstd"


def read_spec(pipeline: Path) -> dict:
    with open(pipeline / "dfpipe.toml", "rb") as f:
        return tomllib.load(f)


def view_sql(pipeline: Path, name: str) -> str:
    """A view's SQL as one statement DuckDB accepts inside `COPY (...)` or `CREATE VIEW`.

    The only rewrite is dropping the trailing `;`. The demo's SQL needs no DuckDB-specific
    change: `interval '3' month`, `extract(year from ...)` and `substring(... from 1 for 2)`
    are all accepted.
    """
    sql = (pipeline / "views" / f"{name}.sql").read_text().strip()
    return sql.rstrip(";").rstrip()


def duckdb_connect(threads: int):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    return con


def parquet_glob(pipeline: Path, source_path: str) -> str:
    return str((pipeline / source_path).resolve() / "*.parquet")


def copy_options() -> str:
    return f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL})"


def duckdb_demo(work: Path, threads: int) -> None:
    """The demo by DuckDB: sources as parquet views, lazy views as views, materialized views
    written one after another with COPY."""
    pipeline = work / "demo"
    spec = read_spec(pipeline)
    out = work / "duckdb" / "demo"
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb_connect(threads)
    for name, source in spec["sources"].items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{parquet_glob(pipeline, source['path'])}')")
    views = sorted(p.stem for p in (pipeline / "views").glob("*.sql"))
    materialized = {n for n, v in spec.get("views", {}).items() if v.get("materialize") == "parquet"}
    for name in views:
        if name not in materialized:
            con.execute(f"CREATE VIEW {name} AS\n{view_sql(pipeline, name)}\n")
    for name in views:
        if name in materialized:
            con.execute(f"COPY (\n{view_sql(pipeline, name)}\n) TO '{out / name}.parquet' {copy_options()}")


def dbt_project(work: Path, threads: int) -> Path:
    """The demo as a dbt-duckdb project under `work/dbt`: the sources as dbt sources over the
    parquet files, lazy views as `view` models, materialized views as `external` models
    written to zstd parquet, like dfpipe's outputs. Table names in the SQL become `source()`
    and `ref()` calls; nothing else changes. Returns the project directory."""
    pipeline = work / "demo"
    spec = read_spec(pipeline)
    project = work / "dbt"
    models = project / "models"
    models.mkdir(parents=True, exist_ok=True)
    out = (work / "dbt-out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    (project / "dbt_project.yml").write_text(
        "name: tpch_demo\nversion: '1.0'\nconfig-version: 2\nprofile: tpch_demo\nmodel-paths: [models]\n"
        # No usage events: nothing but the work is timed (this machine reaches no tracker).
        "flags:\n  send_anonymous_usage_stats: false\n"
    )
    (project / "profiles.yml").write_text(
        "tpch_demo:\n  target: bench\n  outputs:\n    bench:\n      type: duckdb\n      path: ':memory:'\n"
        f"      threads: {threads}\n      settings:\n        threads: {threads}\n"
    )
    sources = spec["sources"]
    tables = "".join(
        f"      - name: {name}\n        meta:\n"
        f"          external_location: \"read_parquet('{parquet_glob(pipeline, source['path'])}')\"\n"
        for name, source in sources.items()
    )
    (models / "sources.yml").write_text(f"version: 2\nsources:\n  - name: tpch\n    tables:\n{tables}")
    views = sorted(p.stem for p in (pipeline / "views").glob("*.sql"))
    materialized = {n for n, v in spec.get("views", {}).items() if v.get("materialize") == "parquet"}

    # A relation follows `from`, `join` or a comma of a from list; the same word elsewhere is
    # a column or an alias (q09's `n_name as nation`).
    def relation(word: str, call: str, text: str) -> str:
        pattern = rf"(\b(?:from|join)\s+|,\s*){re.escape(word)}\b"
        return re.sub(pattern, lambda m: m[1] + call, text, flags=re.IGNORECASE)

    for name in views:
        # Comments go: dbt renders Jinja inside them too.
        sql = "\n".join(line for line in view_sql(pipeline, name).splitlines() if not line.lstrip().startswith("--"))
        for source in sources:
            sql = relation(source, f"{{{{ source('tpch', '{source}') }}}}", sql)
        for view in views:
            sql = relation(view, f"{{{{ ref('{view}') }}}}", sql)
        if name in materialized:
            config = (
                f"materialized='external', location='{out / name}.parquet', format='parquet', "
                f"options={{'compression': 'zstd', 'compression_level': {ZSTD_LEVEL}}}"
            )
        else:
            config = "materialized='view'"
        (models / f"{name}.sql").write_text(f"{{{{ config({config}) }}}}\n{sql}\n")
    return project


def lineitem_glob(work: Path) -> str:
    return str((work / "data" / "lineitem").resolve() / "*.parquet")


def duckdb_writer(work: Path, threads: int) -> None:
    out = work / "duckdb" / "lineitem.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb_connect(threads)
    con.execute(f"COPY (SELECT * FROM read_parquet('{lineitem_glob(work)}')) TO '{out}' {copy_options()}")


def polars_writer(work: Path) -> None:
    import polars as pl

    out = work / "polars" / "lineitem.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pl.scan_parquet(lineitem_glob(work)).sink_parquet(out, compression="zstd", compression_level=ZSTD_LEVEL)


def timed(label: str, command: list[str], env: dict | None = None) -> float:
    """Runs one whole process and returns its wall time in seconds; a failure stops the harness."""
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"peers: {label} failed (exit {done.returncode}): {' '.join(command)}\n{done.stderr}")
    return elapsed


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown (no /proc/loadavg)"


def row_counts(paths: dict[str, str]) -> dict[str, int]:
    con = duckdb_connect(2)
    return {name: con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0] for name, glob in paths.items()}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else list(path.rglob("*.parquet"))
    return sum(f.stat().st_size for f in files) / 1e6


def check_rows(work: Path, output_dir: str) -> bool:
    """Compares every view's row count between dfpipe's outputs and DuckDB's and dbt's; prints
    mismatches loudly."""
    demo = work / "demo"
    views = sorted((work / "duckdb" / "demo").glob("*.parquet"))
    ours = row_counts({v.stem: str((demo / output_dir / v.stem).resolve() / "**" / "*.parquet") for v in views})
    theirs = row_counts({v.stem: str(v) for v in views})
    dbt = row_counts({v.stem: str(work / "dbt-out" / v.name) for v in views})
    writer = work / "writer"
    writer_out = read_spec(writer)["pipeline"].get("output_dir", "out")
    written = row_counts(
        {
            "source": lineitem_glob(work),
            "dfpipe": str((writer / writer_out / WRITER_VIEW).resolve() / "*.parquet"),
            "duckdb": str(work / "duckdb" / "lineitem.parquet"),
            "polars": str(work / "polars" / "lineitem.parquet"),
        }
    )
    ok = True
    for name in ours:
        if not ours[name] == theirs[name] == dbt[name]:
            ok = False
            print(
                f"!!! ROW COUNT MISMATCH: {name}: dfpipe {ours[name]}, DuckDB {theirs[name]}, dbt {dbt[name]}",
                file=sys.stderr,
            )
    if len(set(written.values())) != 1:
        ok = False
        print(f"!!! ROW COUNT MISMATCH in the lineitem rewrite: {written}", file=sys.stderr)
    print(f"row counts: {len(ours)} views, {'all equal' if ok else 'MISMATCHES above'}; lineitem {written['source']} rows")
    return ok


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}"


def table(demo: dict[str, list[float]], writer: dict[str, list[float]]) -> str:
    """The markdown table of medians (seconds) and ratios."""
    m = {k: statistics.median(v) for k, v in demo.items()}
    w = {k: statistics.median(v) for k, v in writer.items()}
    faster = min(w["duckdb"], w["polars"])
    return "\n".join(
        [
            "| measure (median, whole process) | dfpipe | DuckDB | Polars | dbt-duckdb | ratio |",
            "|---|---:|---:|---:|---:|---|",
            f"| P4: demo, 22 query views to zstd parquet | {m['dfpipe']:.2f} s | {m['duckdb']:.2f} s | | "
            f"{m['dbt']:.2f} s | **{ratio(m['dfpipe'], m['duckdb'])}** dfpipe ÷ DuckDB (goal ≤ 1.0); "
            f"**{ratio(m['dfpipe'], m['dbt'])}** dfpipe ÷ dbt-duckdb (goal ≤ 0.7) |",
            f"| P6: `lineitem` rewritten to zstd(3) parquet | {w['dfpipe']:.2f} s | {w['duckdb']:.2f} s | "
            f"{w['polars']:.2f} s | | **{ratio(w['dfpipe'], faster)}** dfpipe ÷ faster peer (goal ≤ 1.0) |",
        ]
    )


def harness(args: argparse.Namespace) -> None:
    import duckdb
    import polars

    work = args.work.resolve()
    me = [sys.executable, str(Path(__file__).resolve())]
    threads = str(args.threads)
    polars_env = dict(os.environ, POLARS_MAX_THREADS=threads)
    demo_out = read_spec(work / "demo")["pipeline"].get("output_dir", "out")
    project = str(dbt_project(work, args.threads))
    runs = {
        "demo": {
            "dfpipe": ([args.dfpipe, "run", str(work / "demo"), "--full", "--workers", threads], None),
            "duckdb": ([*me, "duckdb-demo", str(work), "--threads", threads], None),
            "dbt": ([args.dbt, "run", "--project-dir", project, "--profiles-dir", project], None),
        },
        "writer": {
            "dfpipe": ([args.dfpipe, "run", str(work / "writer"), "--full", "--workers", threads], None),
            "duckdb": ([*me, "duckdb-writer", str(work), "--threads", threads], None),
            "polars": ([*me, "polars-writer", str(work)], polars_env),
        },
    }
    versions = subprocess.run([args.dbt, "--version"], capture_output=True, text=True).stdout
    core, adapter = (re.search(rf"{key}:\s*(\S+)", versions) for key in ("installed", "duckdb"))
    dbt = f"dbt-core {core[1] if core else '?'} with dbt-duckdb {adapter[1] if adapter else '?'}"
    print(f"peers: dfpipe {args.dfpipe}, DuckDB {duckdb.__version__}, Polars {polars.__version__}, {dbt}, {threads} threads")
    load_before = loadavg()
    print(f"load average before: {load_before}")
    times = {goal: {who: [] for who in sides} for goal, sides in runs.items()}
    for round_ in range(args.rounds + 1):
        label = "warm-up" if round_ == 0 else f"round {round_}"
        for goal, sides in runs.items():
            # Every other round runs the peers first, so that neither side always goes first.
            order = list(sides.items()) if round_ % 2 == 1 else list(reversed(sides.items()))
            for who, (command, env) in order:
                elapsed = timed(f"{goal} {who}", command, env)
                if round_ > 0:
                    times[goal][who].append(elapsed)
                print(f"{label}: {goal} {who} {elapsed:.2f} s", flush=True)
        if round_ == 0 and not check_rows(work, demo_out):
            print("!!! dfpipe and its peers disagree on row counts: the timings compare different work", file=sys.stderr)
    load_after = loadavg()
    print(f"load average after: {load_after}")
    sizes = {
        "dfpipe": size_mb(work / "writer" / read_spec(work / "writer")["pipeline"].get("output_dir", "out") / WRITER_VIEW),
        "duckdb": size_mb(work / "duckdb" / "lineitem.parquet"),
        "polars": size_mb(work / "polars" / "lineitem.parquet"),
    }
    print("lineitem written (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()))
    print()
    print(table(times["demo"], times["writer"]))
    print()
    demo, writer = times["demo"], times["writer"]
    p4 = [ratio(d, q) for d, q in zip(demo["dfpipe"], demo["duckdb"])]
    p4_dbt = [ratio(d, q) for d, q in zip(demo["dfpipe"], demo["dbt"])]
    p6 = [ratio(d, min(q, p)) for d, q, p in zip(writer["dfpipe"], writer["duckdb"], writer["polars"])]
    print(f"ratios round by round: P4 {', '.join(p4)} (÷ dbt-duckdb {', '.join(p4_dbt)}); P6 {', '.join(p6)}")
    print(f"{args.rounds} rounds after a warm-up, alternating; load average before {load_before}, after {load_after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    h = sub.add_parser("harness")
    h.add_argument("--dfpipe", required=True)
    h.add_argument("--dbt", required=True)
    h.add_argument("--work", type=Path, required=True)
    h.add_argument("--rounds", type=int, default=3)
    h.add_argument("--threads", type=int, default=2)
    for name in ("duckdb-demo", "duckdb-writer", "polars-writer"):
        p = sub.add_parser(name)
        p.add_argument("work", type=Path)
        p.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.command == "harness":
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        harness(args)
    elif args.command == "duckdb-demo":
        duckdb_demo(args.work, args.threads)
    elif args.command == "duckdb-writer":
        duckdb_writer(args.work, args.threads)
    else:
        polars_writer(args.work)


if __name__ == "__main__":
    main()
