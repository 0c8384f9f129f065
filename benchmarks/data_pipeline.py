"""Data-pipeline throughput (samples/s, 2 workers) against the training step's samples/s.

The DataModule on the synthetic HumanML3D set (2,000 motions, generated once into ``$MOTION_TEXT_CACHE``), batch
32, crops of 100 frames, 2 loader workers: samples/s over a stretch of batches after the workers have started.
Reference: samples/s of the TMR ACTOR encoder's training step (:mod:`benchmarks.train_step`) measured in the same
run, right after. Target: the loader delivers >= 10x the samples the step consumes.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.common import Row
from benchmarks.train_step import tmr_step_samples_per_s


def loader_samples_per_s(batches: int, workers: int = 2, batch_size: int = 32, synthetic: int = 2000) -> float:
    from motion_text.data.datamodule import DatasetSpec, MotionTextDataModule

    dm = MotionTextDataModule([DatasetSpec("humanml3d", synthetic=synthetic)], batch_size=batch_size,
                              num_workers=workers, max_len=100)
    dm.prepare_data()
    dm.setup("fit")
    it = iter(dm.train_dataloader())
    next(it)  # workers started
    n = 0
    t = time.perf_counter()
    for _ in range(batches):
        n += len(next(it)["text"])
    return n / (time.perf_counter() - t)


def run(quick: bool = False) -> dict:
    rounds = 1 if quick else 2
    loader, step = [], []
    for _ in range(rounds):  # alternate the two measures
        loader.append(loader_samples_per_s(10 if quick else 30))
        step.append(tmr_step_samples_per_s(repeats=2 if quick else 3, quick=quick))
    lo, st = max(loader), max(step)
    ratio = lo / st
    row = Row("data pipeline, 2 workers, batch 32", "TMR ACTOR encoder train step samples/s", ">= 10x",
              f"{ratio:.0f}x ({lo:.0f} vs {st:.1f} samples/s)", ratio >= 10, "cpu")
    return {"rows": [row.to_dict()], "loader_samples_per_s": loader, "step_samples_per_s": step, "ratio": ratio}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(run(ap.parse_args().quick), indent=2, default=float))
