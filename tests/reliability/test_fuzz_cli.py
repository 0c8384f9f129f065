"""Fuzz the command line: every subcommand of ``motion-text`` with random argument values (wrong types, negative,
zero, huge, empty, missing files, corrupted files) either works or ends with an ``error:`` line and a non-zero exit;
never a Python traceback, never a hang.

Each case starts from a command line that works and replaces one or two arguments with values drawn from pools
(seeded), or drops a required argument. Cases run in-process through ``main(args)`` (a ``SystemExit`` carrying
``error: ...``, or argparse's / jsonargparse's exit 2 with ``error:`` on stderr, is a clear error), a few as real
subprocesses (exit status and stderr checked). ``MOTION_TEXT_FUZZ_CASES=N`` runs N in-process cases instead of the
default 36 (``MOTION_TEXT_FUZZ_SEED`` changes the seed); the counts are printed (``-s``) and written to
``$MOTION_TEXT_FUZZ_REPORT`` when set. Data-reader options (``--data.*``) are left to ``test_fuzz.py``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import traceback
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.cli import main

REPO = Path(__file__).resolve().parents[2]
CASES = int(os.environ.get("MOTION_TEXT_FUZZ_CASES", "36"))
SEED = int(os.environ.get("MOTION_TEXT_FUZZ_SEED", "0"))
SUBPROCESS_CASES = 4
HANG_SECONDS = 120

INTS = ["0", "-1", "-7", "1", "2", "3", "999999999", "1e3", "abc", "", "2.5", "nan"]
FLOATS = ["0", "-1", "1e-3", "1e30", "nan", "inf", "abc", "", "-0.0"]
TEXTS = ["", "   ", "a person walks", "x" * 3000, "ünïcode 🙂 walks", "-k", "\t", "walk\njump"]


class Files:
    """The corrupted-file pool, made once per session from real files of the fixtures."""

    def __init__(self, root: Path, tmr, lex, index: Path):
        self.root, self.tmr, self.lex, self.index = root, tmr, lex, index
        rng = np.random.default_rng(1234)
        good_ckpt = Path(tmr.ckpt).read_bytes()
        root.mkdir(parents=True, exist_ok=True)
        (root / "empty").write_bytes(b"")
        (root / "random.bin").write_bytes(rng.bytes(4096))
        (root / "truncated.ckpt").write_bytes(good_ckpt[: len(good_ckpt) // 3])
        (root / "truncated.npz").write_bytes(index.read_bytes()[: index.stat().st_size // 2])
        torch.save({"state_dict": {}, "hyper_parameters": {"x": argparse_namespace()}}, root / "pickled.ckpt")
        with open(root / "object.npy", "wb") as f:
            np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        np.save(root / "one_frame.npy", np.zeros((1, 263), np.float32))
        np.save(root / "wrong_dim.npy", np.zeros((30, 7), np.float32))
        np.save(root / "good_motion.npy", np.load(sorted((tmr.root / "new_joint_vecs").glob("*.npy"))[0]))
        (root / "not_yaml.yaml").write_text("data: [unclosed\n  - : :\n")
        (root / "list.yaml").write_text("- 1\n- 2\n")
        (root / "captions.txt").write_text("good_motion\ta person walks\n")
        (root / "bad_captions.txt").write_bytes(b"\xff\xfe no tab here\n")
        gen = root / "gen"
        gen.mkdir(exist_ok=True)
        src = sorted((tmr.root / "new_joint_vecs").glob("*.npy"))
        lines = []
        for i in range(4):
            np.save(gen / f"g{i}.npy", np.load(src[i])[:30])
            lines.append(f"g{i}\ta person walks")
        (root / "gen_captions.txt").write_text("\n".join(lines) + "\n")
        (root / "a_folder").mkdir(exist_ok=True)

    def inputs(self, good: str) -> list[str]:
        r = self.root
        return [good, str(r / "missing.file"), str(r / "empty"), str(r / "random.bin"), str(r / "truncated.ckpt"),
                str(r / "pickled.ckpt"), str(r / "object.npy"), str(r / "a_folder"), "", str(r / "not_yaml.yaml"),
                str(r / "list.yaml"), str(r / "truncated.npz"), str(r / "one_frame.npy"), str(r / "wrong_dim.npy")]

    def outputs(self, good: str) -> list[str]:
        r = self.root
        return [good, str(r / "random.bin" / "below_a_file"), str(r / "a_folder"), str(r / "new_out"), ""]


def argparse_namespace():
    import argparse

    return argparse.Namespace(a=1)


# --- per subcommand: a working command line and the pools each option draws from --------------------------------------
def commands(f: Files, work: Path) -> dict[str, tuple[list[str], dict[str, list[str]], list[str]]]:
    """name -> (working args, {option: pool}, required options that a case may drop)."""
    tmr, lex, r = f.tmr, f.lex, f.root
    ck, lk, data, ldata = tmr.ckpt, lex.ckpt, tmr.data, lex.data
    dataset_pool = f.inputs(data) + ["synthetic_humanml3d.yaml", "nope.yaml"]
    return {
        "synth": (["synth", "--out", str(work / "synth"), "--num", "3", "--quiet"],
                  {"--out": f.outputs(str(work / "synth")), "--num": [v for v in INTS if v != "999999999"],
                   "--seed": INTS, "--format": ["humanml3d", "kitml", "aistpp", "bvh", ""],
                   "--layout": ["guo", "tmr", "x"], "--workers": ["0", "-1", "1", "abc"]}, ["--out"]),
        "configs": (["configs"], {"--bogus": ["1"]}, []),
        "convert": (["convert", ck, "--from", "tmr", "--out", str(work / "conv.ckpt")],
                    {"src": f.inputs(ck), "--out": f.outputs(str(work / "conv.ckpt")), "--from": ["tmr", "mdm", ""]},
                    ["--out", "--from"]),
        "retrieve": (["retrieve", "--ckpt", ck, "--data", data, "--query", "a person walks", "--quiet", "--split",
                      "train"],
                     {"--ckpt": f.inputs(ck), "--data": dataset_pool, "--query": TEXTS,
                      "--motion": f.inputs(str(r / "good_motion.npy")) + ["000002", "no_such_id"],
                      "-k": INTS, "--split": ["train", "test", "val", "nope", "", "../../etc"],
                      "--batch-size": INTS, "--num-workers": INTS, "--device": ["cpu", "auto", "cuda:99", "tpu", ""],
                      "--render": f.outputs(str(work / "render"))}, ["--ckpt", "--data", "--query"]),
        "score": (["score", "--ckpt", ck, "--motions", str(r / "gen"), "--captions", str(r / "gen_captions.txt"),
                   "--mean", str(tmr.root / "Mean.npy"), "--std", str(tmr.root / "Std.npy"), "--batch-size", "2",
                   "--diversity-times", "2", "--quiet"],
                  {"--ckpt": f.inputs(ck), "--motions": f.inputs(str(r / "gen")) + [str(r / "a_folder")],
                   "--captions": f.inputs(str(r / "gen_captions.txt")) + [str(r / "bad_captions.txt")],
                   "--mean": f.inputs(str(tmr.root / "Mean.npy")), "--std": f.inputs(str(tmr.root / "Std.npy")),
                   "--stats-from": dataset_pool, "--batch-size": INTS, "--diversity-times": INTS,
                   "--max-len": INTS, "--seed": INTS, "--num-workers": INTS, "--real-split": ["train", "nope", ""]},
                  ["--ckpt", "--motions", "--captions"]),
        "index": (["index", "--ckpt", lk, "--data", ldata, "--out", str(work / "idx.npz"), "--quiet", "--split",
                   "train"],
                  {"--ckpt": f.inputs(lk) + [ck], "--data": f.inputs(ldata), "--out": f.outputs(str(work / "idx.npz")),
                   "--top-k": INTS + ["all"], "--backend": ["exact", "seismic", "x"],
                   "--seismic": ["n_postings=10", "x", "=3", "a=b"], "--batch-size": INTS, "--export":
                       f.outputs(str(work / "docs.jsonl")), "--split": ["train", "nope"]}, ["--ckpt", "--out"]),
        "search": (["search", "--index", str(f.index), "--keywords", "walk", "run"],
                   {"--index": f.inputs(str(f.index)), "--keywords": TEXTS, "--query": TEXTS,
                    "--ckpt": f.inputs(lk) + [ck], "-k": INTS, "--query-top-k": INTS, "--terms": INTS,
                    "--seismic": ["query_cut=3", "x"], "--pair-rate": ["walk", "", "zzz"]}, ["--index"]),
        "sparsity": (["sparsity", "--ckpt", lk, "--data", ldata, "--out", str(work / "sp"), "--quiet", "--split",
                      "train", "--ks", "2", "all"],
                     {"--ckpt": f.inputs(lk), "--data": f.inputs(ldata), "--out": f.outputs(str(work / "sp")),
                      "--ks": INTS + ["all"], "--batch-size": INTS}, ["--out"]),
        "terms": (["terms", "--ckpt", lk, "--data", ldata, "--out", str(work / "terms"), "--quiet", "--split",
                   "train", "--count", "1"],
                  {"--ckpt": f.inputs(lk), "--data": f.inputs(ldata), "--out": f.outputs(str(work / "terms")),
                   "--count": INTS, "--top": INTS, "--motion": ["000002", "nope", ""]}, ["--data"]),
        **{cmd: ([cmd, "--config", tmr.config, "--trainer.fast_dev_run=1", "--trainer.enable_progress_bar=false"],
                 {"--ckpt_path": f.inputs(ck) + [lk, "last", "best"], "--config": f.inputs(tmr.config),
                  "--trainer.max_steps": INTS, "--trainer.fast_dev_run": INTS + ["true", "false"],
                  "--model.init_args.lr": FLOATS, "--seed_everything": INTS + FLOATS,
                  "--trainer.precision": ["32", "bf16-mixed", "7", "abc"],
                  "--model.init_args.init_from": [f"[{{ckpt: {p}}}]" for p in f.inputs(ck)] + ["[{}]", "x"]},
                 ["--config"])
           for cmd in ("fit", "validate", "test", "predict")},
    }


def make_case(rng: np.random.Generator, spec) -> list[str]:
    """Replace one or two options of a working command line by drawn values, or drop a required one."""
    base, pools, required = spec
    args = list(base)
    if required and rng.random() < 0.12:
        drop = required[int(rng.integers(len(required)))]
        if drop in args:
            i = args.index(drop)
            del args[i : i + 2]
        return args
    for _ in range(int(rng.integers(1, 3))):
        opt = list(pools)[int(rng.integers(len(pools)))]
        value = pools[opt][int(rng.integers(len(pools[opt])))]
        if opt == "src":  # convert's positional argument
            args[1] = value
            continue
        if opt in args:
            i = args.index(opt)
            del args[i : i + 2]
        if opt in ("--query", "--motion", "--keywords", "--pair-rate"):  # mutually exclusive groups
            for other in ("--query", "--motion", "--keywords", "--pair-rate"):
                while other in args:
                    i = args.index(other)
                    j = i + 1
                    while j < len(args) and not args[j].startswith("--"):
                        j += 1
                    del args[i:j]
        args += [opt, value] if not opt.startswith("--trainer.") and not opt.startswith("--model.") \
            and opt != "--seed_everything" else [f"{opt}={value}"]
    return args


def _alarm(signum, frame):
    raise TimeoutError(f"still running after {HANG_SECONDS} s")


def run_in_process(args: list[str]) -> tuple[str, str]:
    """('worked' | 'clear error' | 'other', detail)."""
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(args)
        return ("worked", "") if rc in (0, None) else ("other", f"returned {rc}")
    except SystemExit as e:
        if e.code in (0, None):
            return "worked", ""
        if isinstance(e.code, str):
            ok = e.code.startswith("error: ") and "Traceback" not in e.code
            return ("clear error", e.code.splitlines()[0]) if ok else ("other", e.code)
        text = err.getvalue()
        if "error:" in text and "Traceback" not in text:
            return "clear error", [ln for ln in text.splitlines() if "error:" in ln][0]
        return "other", f"exit {e.code}: {text[-2000:]}"
    except BaseException:  # noqa: BLE001 - every other outcome is what the fuzz looks for
        return "other", traceback.format_exc(limit=6)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_subprocess(args: list[str]) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        p = subprocess.run([sys.executable, "-m", "motion_text.cli", *args], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        return "other", "hang"
    if "Traceback" in p.stderr:
        return "other", p.stderr[-2000:]
    if p.returncode == 0:
        return "worked", ""
    lines = [ln for ln in p.stderr.splitlines() if "error:" in ln]
    return ("clear error", lines[0]) if lines else ("other", f"exit {p.returncode}: {p.stderr[-2000:]}")


@pytest.fixture(scope="module")
def fuzz_files(tiny_tmr_ckpt, tiny_lexical_ckpt, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz_cli")
    index = work / "index.npz"
    with redirect_stdout(io.StringIO()):
        assert main(["index", "--ckpt", tiny_lexical_ckpt.ckpt, "--data", tiny_lexical_ckpt.data, "--out",
                     str(index), "--quiet", "--split", "train"]) == 0
    return Files(work / "files", tiny_tmr_ckpt, tiny_lexical_ckpt, index)


@pytest.mark.filterwarnings("ignore")
def test_fuzz_command_line(fuzz_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs write lightning_logs/, configs, caches here
    specs = commands(fuzz_files, tmp_path)
    names = sorted(specs)
    rng = np.random.default_rng([SEED, 22])
    counts: Counter = Counter()
    per_command: dict[str, Counter] = {n: Counter() for n in names}
    failures = []
    for i in range(CASES + SUBPROCESS_CASES):
        name = names[i % len(names)] if i < len(names) else names[int(rng.integers(len(names)))]
        args = make_case(rng, specs[name])
        subproc = i >= CASES
        outcome, detail = (run_subprocess if subproc else run_in_process)(args)
        counts[outcome] += 1
        per_command[name][outcome] += 1
        if outcome == "other":
            failures.append(f"{'subprocess ' if subproc else ''}{args}:\n{detail}")
    summary = {"seed": SEED, "cases": sum(counts.values()), "worked": counts["worked"],
               "clear error": counts["clear error"], "other": counts["other"],
               "per command": {n: dict(c) for n, c in per_command.items()}}
    print(f"\nCLI fuzz (seed {SEED}): {summary['cases']} cases: {summary['worked']} worked, "
          f"{summary['clear error']} clear error, {summary['other']} other")
    if os.environ.get("MOTION_TEXT_FUZZ_REPORT"):
        Path(os.environ["MOTION_TEXT_FUZZ_REPORT"]).write_text(json.dumps({**summary, "failures": failures},
                                                                          indent=2))
    assert not failures, f"{len(failures)} cases ended otherwise:\n" + "\n\n".join(failures[:5])
    assert counts["worked"] and counts["clear error"], counts
