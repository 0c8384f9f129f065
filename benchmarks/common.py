"""Shared helpers of the benchmarks: device choice, interleaved timing, result rows, JSON report and table.

Every benchmark measures a ratio against a reference run in the same process and interleaved with it (ref, ours,
ref, ours, ...; medians), so that load from other processes on a shared machine affects both sides alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

__all__ = ["Row", "device", "devices", "per_device", "sync", "timed", "interleaved", "matmul_rate", "machine", "write_report",
           "results_table", "RESULTS_DIR", "StepCost", "StepClock", "bare_trainer", "peak_rss_mb", "reset_peak_rss"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One line of the report: what was measured, against what, the target, the figure and whether it is met.

    ``met`` is ``None`` for figures that are only reported (no target).
    """

    measure: str
    reference: str
    target: str
    measured: str
    met: bool | None
    device: str = "cpu"
    values: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def device() -> torch.device:
    """``cuda`` when available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def devices() -> list[torch.device]:
    """``cpu``, plus ``cuda`` when available (the benchmarks with a GPU column run on both)."""
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def per_device(measure, quick: bool) -> dict:
    """``measure(device, quick)`` on every device of :func:`devices`: ``{"rows": [...], "cpu": {...}, "cuda": {...}}``
    (each result's ``row`` moved into ``rows``)."""
    out = {dev.type: measure(dev, quick) for dev in devices()}
    return {"rows": [m.pop("row") for m in out.values()], **out}


def sync(dev: torch.device | str | None = None) -> None:
    """Wait for queued CUDA work (no-op on the CPU)."""
    if torch.device(dev or "cpu").type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], dev: torch.device | str | None = None) -> float:
    """Wall time of one call of ``fn`` in seconds (CUDA-synchronised)."""
    sync(dev)
    t = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t


def interleaved(ref: Callable[[], object], ours: Callable[[], object], repeats: int, warmup: int = 1,
                dev: torch.device | str | None = None) -> dict:
    """Time ``ref`` and ``ours`` alternately ``repeats`` times after ``warmup`` untimed rounds.

    Returns the medians ``ref_s`` / ``ours_s``, ``speedup = ref_s / ours_s`` and the raw lists.
    """
    for _ in range(warmup):
        ref()
        ours()
    ref_t, ours_t = [], []
    for i in range(repeats):
        # alternate which side goes first, so neither always runs on a warmer cache
        if i % 2 == 0:
            ref_t.append(timed(ref, dev))
            ours_t.append(timed(ours, dev))
        else:
            ours_t.append(timed(ours, dev))
            ref_t.append(timed(ref, dev))
    r, o = statistics.median(ref_t), statistics.median(ours_t)
    return {"ref_s": r, "ours_s": o, "speedup": r / o, "ref_all_s": ref_t, "ours_all_s": ours_t}


def matmul_rate(dev: torch.device | str = "cpu", n: int = 2048, repeats: int = 3) -> float:
    """Measured fp32 matrix-product rate in FLOP/s: the best of ``repeats`` ``torch.mm`` of two n x n squares."""
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    torch.mm(a, b)
    best = min(timed(lambda: torch.mm(a, b), dev) for _ in range(repeats))
    return 2.0 * n**3 / best


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set size (``VmHWM``, Linux ``/proc/self/clear_refs``), so that
    :func:`peak_rss_mb` measures from now; ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process image. ``getrusage``'s
    ``ru_maxrss`` (the fallback without ``/proc``) survives ``exec``: a benchmark child started by ``benchmarks.run`` after
    the 1M-document sparse benchmark reported that parent's 8 GB.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_trainer(max_steps: int, callbacks: list, root: str, **kwargs):
    """A Trainer that only trains: ``max_steps`` steps, no validation, logger, checkpoints, progress bar or summary."""
    import lightning as L

    return L.Trainer(max_steps=max_steps, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     callbacks=callbacks, default_root_dir=root, use_distributed_sampler=False, devices=1, **kwargs)


class StepClock:
    """Lightning callback: time of the module's ``setup`` (caption encoding) and of every training step; with
    ``cost_step``, the :class:`StepCost` of that step (so the other steps run without the counters). ``rss_mb``: the
    peak resident set size before the counted step; the peak is reset after it (:func:`reset_peak_rss`), so the
    counters' own memory enters no figure where the system allows the reset."""

    def __new__(cls, cost_step: int | None = None, flops: bool = True):
        import lightning as L

        class Clock(L.Callback):
            def __init__(self) -> None:
                self.t_setup = self.t_fit_start = None
                self.step_times: list[float] = []
                self.cost, self.cost_step, self.frames = StepCost(flops), cost_step, None
                self.rss_mb, self.peak_reset = None, False

            def setup(self, trainer, pl_module, stage) -> None:  # called before the LightningModule's setup
                self.t_setup = time.perf_counter()

            def on_fit_start(self, trainer, pl_module) -> None:
                self.t_fit_start = time.perf_counter()

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
                if self.cost_step is not None and trainer.global_step == self.cost_step:
                    key = "motion" if "motion" in batch else "joints" if "joints" in batch else None
                    self.frames = list(batch[key].shape[:2]) if key else None
                    self.rss_mb = peak_rss_mb()
                    self.cost.start(pl_module)

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                self.step_times.append(time.perf_counter())
                if self.cost_step is not None and trainer.global_step == self.cost_step + 1:
                    self.cost.stop()
                    self.peak_reset = reset_peak_rss()

            @property
            def module_setup_s(self) -> float:
                return self.t_fit_start - self.t_setup

        return Clock()


class StepCost:
    """Cost of one training step (forward + backward + optimiser step): GFLOP of its matrix products
    (``torch.utils.flop_counter``) and MB of the tensors autograd saves for the backward pass (each storage once, parameters left out).
    ``start()`` / ``stop()`` bracket the step (:class:`StepClock` calls them around one step of the fit).

    ``flops=False`` counts the saved tensors only: under ``FlopCounterMode`` (a dispatch mode) attention runs
    through PyTorch's reference decomposition, which holds the attention maps the fused kernels never store (a
    lexical phase-3 step at batch 16: 12.6 GB instead of 3.2 GB), so the counted step is neither the product's memory
    nor always affordable at full batch."""

    def __init__(self, flops: bool = True) -> None:
        self.storages: dict[int, int] = {}
        self.count_flops = flops
        self.flops = self.gflop = self.saved_mb = None

    def _pack(self, t):
        st = t.untyped_storage()
        self.storages[st.data_ptr()] = st.nbytes()
        return t

    def start(self, module) -> None:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        self.params = {p.untyped_storage().data_ptr() for p in module.parameters()}  # weights are not activations
        self.counter = FlopCounterMode(display=False) if self.count_flops else None
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        if self.counter is not None:
            self.counter.__enter__()
        self.hooks.__enter__()

    def stop(self) -> None:
        self.hooks.__exit__(None, None, None)
        if self.counter is not None:
            self.counter.__exit__(None, None, None)
            self.flops = self.counter.get_total_flops()
            self.gflop = self.flops / 1e9
        self.saved_mb = sum(n for ptr, n in self.storages.items() if ptr not in self.params) / 2**20


def machine() -> dict:
    """What the figures were measured on."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    return info


def write_report(report: dict, path: Path | None = None) -> Path:
    """Write ``report`` as JSON (default ``benchmarks/results/latest.json``) and return the path."""
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")
    return path


def results_table(rows: list[dict], title: str = "motion-text benchmarks"):
    """A ``rich.table.Table`` of report rows: measure, device, reference, target, measured, met?"""
    from rich.table import Table

    table = Table(title=title)
    for name in ("measure", "device", "reference", "target", "measured", "met?"):
        table.add_column(name, overflow="fold")
    marks = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}
    for r in rows:
        table.add_row(r["measure"], r["device"], r["reference"], r["target"], r["measured"], marks[r["met"]])
    return table
