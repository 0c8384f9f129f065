"""Session-wide fixtures: tiny synthetic datasets in the real layouts, generated once per test session."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# class paths such as tests.cli.minimal.MeanFrame must import while jsonargparse reads configs from other folders
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    os.environ["MOTION_TEXT_CACHE"] = str(tmp_path_factory.mktemp("motion_text_cache"))


def _synth(tmp_path_factory, name, fmt, num, layout="guo", seed=0):
    from motion_text.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp(name)
    generate_dataset(root, fmt, num, seed, layout=layout, workers=1, quiet=True)
    return root


@pytest.fixture(scope="session")
def h3d_root(tmp_path_factory) -> Path:
    """60 synthetic HumanML3D motions (+ mirrors) in Guo et al.'s layout."""
    return _synth(tmp_path_factory, "h3d", "humanml3d", 60)


@pytest.fixture(scope="session")
def kit_root(tmp_path_factory) -> Path:
    """40 synthetic KIT-ML motions (+ mirrors), 251-d, 12.5 fps."""
    return _synth(tmp_path_factory, "kit", "kitml", 40)


@pytest.fixture(scope="session")
def h3d_tmr_root(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory, "h3d_tmr", "humanml3d", 40, layout="tmr")


@pytest.fixture(scope="session")
def kit_tmr_root(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory, "kit_tmr", "kitml", 40, layout="tmr")


@pytest.fixture(scope="session")
def h3d_learn_root(tmp_path_factory) -> Path:
    """A larger synthetic HumanML3D set for the learning tests (shared by all methods)."""
    return _synth(tmp_path_factory, "h3d_learn", "humanml3d", 400, seed=3)


@pytest.fixture(scope="session")
def aistpp_root(tmp_path_factory) -> Path:
    """12 synthetic AIST++ sequences of 4.5-5 s (5 music tracks) in the real AIST++ layout."""
    from motion_text.data.synthetic_aistpp import generate_aistpp

    root = tmp_path_factory.mktemp("aistpp")
    generate_aistpp(root, num=12, seed=0, quiet=True, duration=(4.5, 5.0))
    return root


@pytest.fixture(scope="session")
def guo_edge_roots(tmp_path_factory) -> dict:
    """``{"humanml3d": root, "kitml": root}``: the data of ``tests/fixtures/guo_filter`` (length and span edge cases)."""
    from tests.data.guo_edge_dataset import MIN_LEN, build_edge_dataset

    return {fmt: build_edge_dataset(tmp_path_factory.mktemp(f"guo_edge_{fmt}"), fmt) for fmt in MIN_LEN}
