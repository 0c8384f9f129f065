"""The lexical chain's declared deviations, measured with and without, on the synthetic split of ``make lexical-demo``.

The paper does not say whether the [MASK] positions of a masked caption join p_t's max-pool (phases 1 and 4), nor
whether the motion tokens are averaged over temporal windows before Eq. 2's max-pool over T x J tokens (phases 3 and
4). The project's defaults leave [MASK] out and average over windows (``max_tokens_t``: 16 in the real configs, 2 in
the synthetic ones); this runs the four synthetic phases (:func:`motion_text.demo.run_chain`, 2 threads,
:func:`~motion_text.demo.fix_determinism`) once per variant, each in its own folder under ``--work``:

* ``default``: the configs as shipped;
* ``mask-pooled``: ``pool_mask_tokens: true`` in phases 1 and 4;
* ``windows-8``: ``max_tokens_t: 8`` in phases 3 and 4 (phases 1-2 copied from ``default``: they do not use it);

and prints the comparison table of ``make lexical-demo`` for them (protocols (a) and (d), grounding, index size,
time), then the cost of one phase-4 training step with every frame as a token (``max_tokens_t: null``, Eq. 2 as
written; too slow to train on a CPU) against the default, timed over ``--cost-steps`` steps in the same process.

``python -m benchmarks.lexical_deviations [--variants default mask-pooled windows-8] [--work DIR] [--cost-steps 3]``
writes ``benchmarks/results/lexical/deviations.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from benchmarks.common import RESULTS_DIR, StepClock, bare_trainer

SUFFIX = "_synthetic"
VARIANTS: dict[str, dict] = {
    "default": {"overrides": {}, "phases": (1, 2, 3, 4)},
    "mask-pooled": {"overrides": {k: ["--model.init_args.pool_mask_tokens=true"] for k in (1, 4)},
                    "phases": (1, 2, 3, 4)},
    "windows-8": {"overrides": {k: ["--model.init_args.max_tokens_t=8"] for k in (3, 4)}, "phases": (3, 4),
                  "reuse": ("default", (1, 2))},
}


def run_variant(name: str, work: Path) -> dict:
    """Fit the chain of variant ``name`` in ``work / name`` (the configs' relative ``runs/`` paths land there)."""
    from motion_text.demo import _cpu_seconds, grounding, run_chain
    from motion_text.tools.sparse import ACTION_WORDS

    spec = VARIANTS[name]
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    if "reuse" in spec:
        source, phases = spec["reuse"]
        for k in phases:
            src = work / source / "runs" / "lexical_synthetic" / f"phase{k}"
            if not (src / "last.ckpt").exists():
                raise FileNotFoundError(f"{name} reuses phase {k} of {source}: run the {source} variant first "
                                        f"({src / 'last.ckpt'} is missing)")
            shutil.copytree(src, folder / "runs" / "lexical_synthetic" / f"phase{k}", dirs_exist_ok=True)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        t0, c0 = time.time(), _cpu_seconds()
        chain = run_chain(synthetic=True, words=tuple(ACTION_WORDS), extras=False, overrides=spec["overrides"],
                          phases=spec["phases"])
    finally:
        os.chdir(cwd)
    return {"test": chain["test"], "grounding": grounding(chain["terms"]), "index": chain["index"],
            "time": (time.time() - t0, _cpu_seconds() - c0), "phases_fitted": list(spec["phases"])}


def step_seconds(work: Path, overrides: list[str], steps: int) -> float:
    """Mean seconds of a phase-4 training step (the first step excluded) with ``overrides``, from the default
    variant's phase-3 checkpoint."""
    from motion_text.cli import _make_cli_class, _resolve_config_args

    cwd = os.getcwd()
    os.chdir(work / "default")
    try:
        cli_cls, method_cls, dm_cls = _make_cli_class()
        cli = cli_cls(method_cls, dm_cls, subclass_mode_model=True, run=False, save_config_callback=None,
                      args=_resolve_config_args(["--config", f"lexical_phase4{SUFFIX}.yaml", *overrides]))
        clock = StepClock()
        bare_trainer(steps + 1, [clock], str(work / "cost")).fit(cli.model, cli.datamodule)
    finally:
        os.chdir(cwd)
    t = clock.step_times
    return (t[-1] - t[0]) / (len(t) - 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--work", default="runs/lexical_deviations", help="folder of the variants' runs")
    ap.add_argument("--cost-steps", type=int, default=3, help="timed phase-4 steps per token layout (0: skip)")
    ap.add_argument("--out", default=str(RESULTS_DIR / "lexical" / "deviations.json"))
    ns = ap.parse_args(argv)

    from motion_text.demo import comparison_table, fix_determinism, grounding_table

    fix_determinism()
    work = Path(ns.work).resolve()
    rows = {name: run_variant(name, work) for name in ns.variants}
    result: dict = {"rows": rows}
    if ns.cost_steps:
        result["step_s"] = {"max_tokens_t 2 (default)": step_seconds(work, [], ns.cost_steps),
                            "max_tokens_t null (every frame)": step_seconds(
                                work, ["--model.init_args.max_tokens_t=null"], ns.cost_steps)}
    print("\nDeclared deviations of the lexical chain, with and without (synthetic split, final weights)")
    print(comparison_table(rows))
    print()
    print(grounding_table(rows))
    for layout, s in result.get("step_s", {}).items():
        print(f"phase-4 step, {layout}: {s:.2f} s")
    Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
    Path(ns.out).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
