"""Run every benchmark: ``python -m benchmarks.run [--quick] [--only NAME ...] [--threads N]``.

Prints a table (measure, device, reference, target, measured, met?) and writes ``benchmarks/results/latest.json``
with the rows, each benchmark's details, the machine and the wall times. Figures are ratios against a reference
measured in the same run; a benchmark that fails is reported as a failed row and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
import traceback

import torch

from benchmarks.common import Row, machine, results_table, write_report

BENCHMARKS = ("sinkhorn", "gw", "retrieval_eval", "sparse", "train_step", "data_pipeline", "text_cache", "cold_start",
              "memory")
#: the ~1-minute subset of ``--quick`` (each at its quick size)
QUICK = ("sinkhorn", "gw", "retrieval_eval", "train_step", "cold_start")


def sparse(quick: bool) -> dict:
    """:func:`benchmarks.sparse.run` (Seismic when installed, else the exact backend) as report rows."""
    from benchmarks import sparse as sparse_bench

    out = sparse_bench.run(quick, n_queries=200 if quick else 500, dense_latency_queries=100, verbose=False)
    backend = "seismic" if out["seismic"] else "exact"
    recall = out["seismic"]["recall@10"] if out["seismic"] else 1.0
    ratio = out["dense"]["latency"]["mean_ms"] / out[backend]["latency"]["mean_ms"]
    row = Row(f"sparse top-10 over {out['config']['docs']:,} docs ({backend})", "dense 256-d exact search",
              ">= 10x lower latency, recall@10 >= 0.95",
              f"{ratio:.1f}x ({out['dense']['latency']['mean_ms']:.2f} -> {out[backend]['latency']['mean_ms']:.2f} "
              f"ms/query), recall@10 {recall:.3f}", ratio >= 10 and recall >= 0.95, "cpu")
    return {"rows": [row.to_dict()], **out}


def default_threads() -> int:
    """torch's default, or 1 when the 1-minute load average exceeds the cores: OpenMP's barriers across busy cores
    then measure the scheduler rather than the code (a 256 x 256 ``logsumexp`` took 100x longer with 2 threads than
    with 1 on a 2-core machine at load 10)."""
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0] > cores
    except OSError:
        busy = False
    return 1 if busy else torch.get_num_threads()


def run_one(name: str, quick: bool) -> dict:
    t = time.perf_counter()
    try:
        out = sparse(quick) if name == "sparse" else importlib.import_module(f"benchmarks.{name}").run(quick)
    except Exception as err:  # reported as a failed row; the other benchmarks still run
        out = {"rows": [Row(name, "-", "-", f"error: {type(err).__name__}: {err}", False).to_dict()],
               "traceback": traceback.format_exc()}
    out["wall_s"] = time.perf_counter() - t
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (about a minute)")
    ap.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, i.e. the machine's cores, or 1 "
                    "when the machine is oversubscribed)")
    args = ap.parse_args(argv)
    from rich.console import Console

    console = Console()
    threads = args.threads or default_threads()
    if threads != torch.get_num_threads():
        console.log(f"torch threads: {threads} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        torch.set_num_threads(threads)
    names = args.only or (QUICK if args.quick else BENCHMARKS)
    start = time.perf_counter()
    report = {"quick": args.quick, "machine": machine(), "wall_s": 0.0, "rows": [], "benchmarks": {}}
    for name in names:
        console.log(f"benchmark {name} ...")
        out = report["benchmarks"][name] = run_one(name, args.quick)
        for r in out["rows"]:
            console.log(f"  {r['measure']}: {r['measured']}")
        report["rows"] += out["rows"]
        report["wall_s"] = time.perf_counter() - start
        path = write_report(report)  # after every benchmark, so an interrupted run keeps what it measured
    rows = report["rows"]
    console.print(results_table(rows, title=f"motion-text benchmarks{' (quick)' if args.quick else ''}"))
    console.print(f"total {report['wall_s']:.0f} s; report: {path}")
    return report


if __name__ == "__main__":
    main()
