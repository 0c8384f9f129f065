"""Tiny datasets for the reliability tests: generated once per session, cloned per test with hard links.

A clone shares every file with the base until :func:`put` replaces one, so corrupting a copy is cheap; never open a
cloned file for writing in place (that would write through the link into the base).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

#: the id every row corrupts: a clean 60-frame motion with two whole-clip captions (see ``tiny_h3d``)
TARGET = "000002"
TARGET_FRAMES = 60
CLEAN_CAPTIONS = "a person walks forward#a/DET person/NOUN walk/VERB#0.0#0.0\nsomeone walks#someone/PRON#0.0#0.0\n"


def put(path: Path, data: bytes | str | np.ndarray) -> None:
    """Replace ``path`` (unlinking it first, so a hard-linked base stays untouched) with bytes, text or an array."""
    path.unlink(missing_ok=True)
    if isinstance(data, np.ndarray):
        with open(path, "wb") as f:
            np.save(f, data)
    else:
        path.write_bytes(data.encode() if isinstance(data, str) else data)


def clone(src: Path, dst: Path) -> Path:
    """Hard-link copy of a dataset folder."""
    for dirpath, _, files in os.walk(src):
        out = dst / Path(dirpath).relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(dirpath) / name, out / name)
    return dst


def _generate(tmp_path_factory, name: str, fmt: str, num: int, layout: str = "guo") -> Path:
    from motion_text.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp(name)
    generate_dataset(root, fmt, num, seed=1, layout=layout, workers=1, quiet=True)
    return root


@pytest.fixture(scope="session")
def tiny_h3d(tmp_path_factory) -> Path:
    """10 synthetic HumanML3D motions (+ mirrors), Guo layout; ``TARGET`` (a train id) made clean and known."""
    root = _generate(tmp_path_factory, "rel_h3d", "humanml3d", 10)
    assert TARGET in (root / "train.txt").read_text().split()
    motion = np.load(root / "new_joint_vecs" / f"{TARGET}.npy")[:TARGET_FRAMES]
    put(root / "new_joint_vecs" / f"{TARGET}.npy", motion)
    put(root / "texts" / f"{TARGET}.txt", CLEAN_CAPTIONS)
    return root


@pytest.fixture(scope="session")
def tiny_kit(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory, "rel_kit", "kitml", 4)


@pytest.fixture(scope="session")
def tiny_tmr(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory, "rel_tmr", "humanml3d", 6, layout="tmr")


@pytest.fixture
def h3d_copy(tiny_h3d, tmp_path) -> Path:
    return clone(tiny_h3d, tmp_path / "h3d")


def _fit_tiny(tmp_path_factory, name: str, model: dict, root: Path, **data):
    """One training step of ``model`` on ``root`` through the CLI; returns (checkpoint, data config path)."""
    import yaml

    from tests.methods.conftest import build_cli, write_config

    work = tmp_path_factory.mktemp(name)
    data = {"batch_size": 4, "max_len": 40, **data}
    cfg = write_config(work / "run.yaml", model, root, data=data,
                       trainer={"max_steps": 1, "limit_val_batches": 0, "num_sanity_val_steps": 0,
                                "enable_model_summary": False})
    cli = build_cli(["--config", str(cfg)])
    cli.trainer.fit(cli.model, cli.datamodule)
    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    dcfg = work / "data.yaml"
    dcfg.write_text(yaml.safe_dump({"datasets": [{"name": "humanml3d", "root": str(root)}], "num_workers": 0,
                                    **data}))
    return SimpleNamespace(ckpt=ckpt, data=str(dcfg), config=str(cfg), root=root, work=work)


@pytest.fixture(scope="session")
def tiny_tmr_ckpt(tiny_h3d, tmp_path_factory):
    """A one-step tiny TMR checkpoint (MiniLM text model) on ``tiny_h3d``: ckpt, data config, training config."""
    from tests.methods.conftest import tiny_tmr_config

    return _fit_tiny(tmp_path_factory, "rel_tmr_ckpt", tiny_tmr_config(), tiny_h3d)


@pytest.fixture(scope="session")
def tiny_lexical_ckpt(tiny_h3d, tmp_path_factory):
    """A one-step tiny phase-4 lexical checkpoint (random tiny BERT) on ``tiny_h3d``, joints on."""
    from tests.conftest_text import tiny_bert_dir
    from tests.retrieval.conftest import tiny_lexical

    bert = tiny_bert_dir(tmp_path_factory)
    return _fit_tiny(tmp_path_factory, "rel_lex_ckpt", tiny_lexical(bert), tiny_h3d, joints=True, max_len=24)
