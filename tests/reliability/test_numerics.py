"""Numerics rows: a NaN loss stops a real fit with the step, the loss part and the batch key ids; every method checks
its loss parts; Sinkhorn / GW stay finite for tiny eps and refuse empty batches with a message."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil

import lightning as L
import pytest
import torch

import motion_text.methods
from motion_text.data.datamodule import DatasetSpec, MotionTextDataModule
from motion_text.losses.ot import (
    entropic_gromov_wasserstein,
    pairwise_cost,
    sinkhorn_cost,
    sinkhorn_divergence,
    sinkhorn_divergence_unbiased,
)
from motion_text.methods.base import MotionTextMethod, NonFiniteLossError
from tests.cli.minimal import MeanFrame


class CheckedMeanFrame(MeanFrame):
    def training_step(self, batch, batch_idx):
        recons = self._loss(batch)
        parts = {"recons": recons, "loss": 2 * recons}
        self.check_finite(parts, batch)
        return parts["loss"]


class Poison(L.Callback):
    """Fills the first layer with NaN before batch ``at`` and records that batch's key ids."""

    def __init__(self, at: int):
        self.at, self.keys = at, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.at:
            self.keys = list(batch["key"])
            with torch.no_grad():
                pl_module.net[0].weight.fill_(float("nan"))


def test_nan_loss_stops_a_real_fit_with_step_part_and_keys(tiny_h3d, tmp_path):
    dm = MotionTextDataModule([DatasetSpec(root=str(tiny_h3d))], batch_size=3, num_workers=0, max_len=40)
    model = CheckedMeanFrame()
    poison = Poison(at=2)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[poison], default_root_dir=tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"loss part 'recons' is nan at global step 2 \(epoch 0\)") as err:
        trainer.fit(model, dm)
    assert poison.keys and all(repr(k) in str(err.value) for k in poison.keys)
    assert trainer.global_step == 2, "no optimizer step ran on the NaN loss"


def _method_classes():
    for info in pkgutil.iter_modules(motion_text.methods.__path__):
        module = importlib.import_module(f"motion_text.methods.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, MotionTextMethod) and cls.__module__ == module.__name__ and "training_step" in vars(cls):
                yield cls


@pytest.mark.parametrize("cls", list(_method_classes()), ids=lambda c: c.__name__)
def test_every_training_step_checks_its_loss_parts(cls):
    assert "self.check_finite(" in inspect.getsource(cls.training_step)


# ---- optimal transport ---------------------------------------------------------------------------------------------
def _batch(m: int, d: int = 4, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(m, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("eps", [1e-6, 1e-12, 1e-30])
@pytest.mark.parametrize("grad", ["envelope", "unrolled"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sinkhorn_tiny_eps_stays_finite_with_gradients(eps, grad, dtype):
    x = _batch(6, scale=10.0).to(dtype).requires_grad_()
    y = _batch(5, seed=1, scale=10.0).to(dtype)
    ratio = float(pairwise_cost(x.detach(), y).max()) / eps
    # past max C / eps = 2^20 float32 potentials lose the plan (ulp ~ 0.1): the problem is solved in float64
    promoted = dtype == torch.float32 and ratio > 2.0**20
    with pytest.warns(RuntimeWarning, match="solving in float64") if promoted else contextlib.nullcontext():
        value, plan = sinkhorn_cost(pairwise_cost(x, y), eps, iters=50, grad=grad, return_plan=True)
    assert value.dtype == dtype and torch.isfinite(value) and torch.isfinite(plan).all()
    # float64 resolves C / eps up to ~1e15; beyond it the value stays finite but the plan's mass is not 1
    if ratio < 0.1 / torch.finfo(torch.float64).eps:
        torch.testing.assert_close(plan.sum().item(), 1.0, atol=1e-2, rtol=0)
    value.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("case", ["one sample", "identical samples", "zero cost"])
def test_degenerate_batches_give_finite_zero_divergence(case):
    x = {"one sample": _batch(1), "identical samples": _batch(1).repeat(4, 1), "zero cost": torch.zeros(3, 4)}[case]
    x = x.clone().requires_grad_()
    loss = sinkhorn_divergence(x, x.detach().clone(), eps=1e-3, iters=20)["loss"]
    unbiased = sinkhorn_divergence_unbiased(x, x.detach(), x.detach(), x.detach(), eps=1e-3, iters=20)["loss"]
    gw = entropic_gromov_wasserstein(pairwise_cost(x, x), pairwise_cost(x, x).detach(), eps=1e-3, outer_iters=3,
                                     inner_iters=20)
    for value in (loss, unbiased, gw["loss"], gw["plan"]):
        assert torch.isfinite(value).all()
    torch.testing.assert_close(loss.detach(), torch.tensor(0.0), atol=1e-5, rtol=0)
    (loss + gw["loss"]).backward()
    assert torch.isfinite(x.grad).all()


EMPTY = [
    ("empty cost", lambda: sinkhorn_cost(torch.zeros(0, 3), 0.1), "empty batch"),
    ("empty x", lambda: sinkhorn_divergence(torch.zeros(0, 4), _batch(3), 0.1), "non-empty batch"),
    ("empty GW", lambda: entropic_gromov_wasserstein(torch.zeros(0, 0), torch.zeros(0, 0), 0.1), "empty batch"),
    ("NaN cost", lambda: sinkhorn_cost(torch.full((2, 2), float("nan")), 0.1), "non-finite"),
    ("eps 0", lambda: sinkhorn_cost(torch.ones(2, 2), 0.0), "eps must be a finite number > 0"),
    ("eps NaN", lambda: sinkhorn_cost(torch.ones(2, 2), float("nan")), "eps must be a finite number > 0"),
]


@pytest.mark.parametrize("call,message", [c[1:] for c in EMPTY], ids=[c[0] for c in EMPTY])
def test_ot_refuses_empty_or_invalid_input_with_a_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()
