"""Identical reruns: the same fit twice gives torch.equal parameters (dropout on, DataLoader workers, fixed threads)."""

import copy

import pytest

from motion_text.demo import fix_determinism
from tests.conftest_text import tiny_bert_dir
from tests.scale.test_scale import assert_same_parameters

from .conftest import build_cli, tiny_actor, tiny_tmr_config, write_config


def _fit(model: dict, root, folder):
    folder.mkdir()
    cfg = write_config(folder / "c.yaml", model, root, data={"num_workers": 2},
                       trainer={"max_steps": 4, "limit_val_batches": 1})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli


def _tmr(lexical_bert=None) -> dict:
    cfg = copy.deepcopy(tiny_tmr_config())
    for k in ("motion_encoder", "text_encoder"):
        cfg["init_args"][k] = tiny_actor()
        cfg["init_args"][k]["init_args"]["dropout"] = 0.1
    if lexical_bert is not None:
        cfg["init_args"]["lexical_head"] = {"class_path": "motion_text.models.heads.lexical.VocabularyProjection",
                                            "init_args": {"text_model": str(lexical_bert), "chunk_size": 16}}
        cfg["init_args"]["temperature"] = 5.0
    return cfg


@pytest.mark.parametrize("lexical", [False, True], ids=["tmr", "dagger_tmr"])
def test_two_fits_give_equal_parameters(lexical, h3d_root, tmp_path, tmp_path_factory):
    fix_determinism()
    model = _tmr(tiny_bert_dir(tmp_path_factory) if lexical else None)
    a, b = (_fit(model, h3d_root, tmp_path / name) for name in ("a", "b"))
    assert a.trainer.global_step == b.trainer.global_step == 4
    assert_same_parameters(a, b)


def test_fix_determinism_sets_threads_and_algorithms():
    import torch

    fix_determinism(threads=1)
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
