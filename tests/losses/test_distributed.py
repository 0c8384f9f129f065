"""Cross-rank losses: 2 gloo processes, each with half of a global batch, reproduce the 1-process gradient."""

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from motion_text.losses.contrastive import cccl, info_nce
from motion_text.losses.distributed import gather_features
from motion_text.losses.triplet import drop_triple_loss

N, D_IN, D = 8, 6, 4


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, D_IN, generator=g), torch.randn(N, D_IN, generator=g), torch.randn(N, 5, generator=g)


def _losses(t, m, z, scales):
    tn, mn = torch.nn.functional.normalize(t, dim=-1), torch.nn.functional.normalize(m, dim=-1)
    return {
        "info_nce": info_nce(t, m, temperature=0.1, sent_emb=z, filter_threshold=0.6)["loss"],
        "cccl": cccl(t, m, z, scales, lam=0.5)["loss"],
        "droptriple": drop_triple_loss(mn, tn, warm=False, delta_hetero=0.3, delta_homo=0.3)["loss"],
    }


def _model():
    torch.manual_seed(1)
    return torch.nn.Linear(D_IN, D), torch.nn.Linear(D_IN, D), torch.nn.Parameter(torch.full((4,), math.log(10.0)))


def _grads(name, rank=None, world=1):
    ft, fm, scales = _model()
    xt, xm, z = _inputs()
    if rank is not None:
        sl = slice(rank * N // world, (rank + 1) * N // world)
        xt, xm, z = xt[sl], xm[sl], z[sl]
    loss = _losses(ft(xt), fm(xm), z, scales)[name]
    loss.backward()
    grads = [p.grad.clone() for p in (*ft.parameters(), *fm.parameters())]
    if name == "cccl":
        grads.append(scales.grad.clone())
    return loss.detach(), grads


def _worker(rank, world, path, out):
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    try:
        res = {}
        for name in ("info_nce", "cccl", "droptriple"):
            loss, grads = _grads(name, rank, world)
            for g in grads:  # what DDP does: average the gradients over ranks
                dist.all_reduce(g)
                g /= world
            res[name] = (loss, grads)
        # gather_features: local slice keeps the graph, others are constants
        x = torch.full((2, 3), float(rank), requires_grad=True)
        y = gather_features(x)
        y.sum().backward()
        res["gather"] = (y.detach(), x.grad.clone())
        if rank == 0:
            torch.save(res, out)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    out = tmp / "res.pt"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(2, str(tmp / "init"), str(out)), nprocs=2, join=True)
    return torch.load(out, weights_only=True)


@pytest.mark.parametrize("name", ["info_nce", "cccl", "droptriple"])
def test_two_process_gradient_equals_single_process(ddp_results, name):
    loss1, grads1 = _grads(name)
    loss2, grads2 = ddp_results[name]
    assert torch.allclose(loss1, loss2, atol=1e-5)  # the global loss is logged on every rank
    for a, b in zip(grads1, grads2):
        assert torch.allclose(a, b, atol=1e-6), (name, (a - b).abs().max())


def test_gather_features(ddp_results):
    y, grad = ddp_results["gather"]
    assert torch.equal(y, torch.tensor([[0.0] * 3] * 2 + [[1.0] * 3] * 2))
    assert torch.equal(grad, torch.ones(2, 3))  # only the local slice carries gradient
