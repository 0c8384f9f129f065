"""The benchmarks import and run at tiny sizes (no timing asserts: figures are only produced by ``make bench``).

The Sinkhorn and GW exactness against POT is tested in ``tests/losses/test_ot.py``; the retrieval benchmark's numpy
reference is checked here against the metric, since nothing else covers it.
"""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from benchmarks import common, retrieval_eval, run, sinkhorn

CPU = torch.device("cpu")


@pytest.mark.parametrize("name", [n for n in run.BENCHMARKS if n != "sparse"] + ["sparse", "common", "run"])
def test_every_benchmark_module_imports(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert name in ("common", "run") or callable(module.run)
    assert set(run.QUICK) <= set(run.BENCHMARKS)


def test_interleaved_timing_and_report(tmp_path):
    calls = []
    t = common.interleaved(lambda: calls.append("ref"), lambda: calls.append("ours"), repeats=3, warmup=1)
    assert calls.count("ref") == calls.count("ours") == 4
    assert calls[2:4] == ["ref", "ours"] and calls[4:6] == ["ours", "ref"]  # alternating order
    assert len(t["ref_all_s"]) == 3 and t["speedup"] > 0
    row = common.Row("m", "ref", "t", "x", None).to_dict()
    path = common.write_report({"rows": [row]}, tmp_path / "r.json")
    assert json.loads(path.read_text())["rows"][0]["measure"] == "m"
    assert common.results_table([row]).row_count == 1


def test_sinkhorn_benchmark_tiny():
    out = sinkhorn.measure(CPU, batch=8, repeats=1)
    assert out["row"]["device"] == "cpu" and out["rel_diff"] < 1e-3


def test_retrieval_benchmark_reference_agrees_with_metric():
    out = retrieval_eval.measure(CPU, n=96, repeats=1)
    assert out["max_abs_diff"] < 1e-9
    assert out["row"]["met"] is None  # the 2 s target applies at 4,384 items only
    assert {k.split("/")[0] for k in out["metrics"]} == set(retrieval_eval.PROTOCOLS)


def test_failing_benchmark_becomes_a_failed_row(monkeypatch):
    monkeypatch.setattr(sinkhorn, "run", lambda quick: 1 / 0)
    out = run.run_one("sinkhorn", quick=True)
    assert out["rows"][0]["met"] is False and "ZeroDivisionError" in out["rows"][0]["measured"]


def test_per_device_collects_rows():
    out = common.per_device(lambda dev, quick: sinkhorn.measure(dev, batch=4, repeats=1), quick=True)
    assert [r["device"] for r in out["rows"]] == [d.type for d in common.devices()]
    assert "row" not in out["cpu"] and out["cpu"]["batch"] == 4
