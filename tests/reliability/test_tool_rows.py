"""Checkpoint and tool rows: damaged, foreign or hostile checkpoints and bad tool input end with one ``error:`` line
naming the file (no traceback); a checkpoint's class names are checked before anything is imported; the gallery cache
follows the data files; ``score`` / ``retrieve`` refuse 1-frame motions and empty queries."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.cli import main

from .conftest import put


def _bad_checkpoint(path: Path, kind: str, good: str | None = None) -> Path:
    """Write a damaged checkpoint of ``kind`` at ``path`` (``good``: a real checkpoint to damage)."""
    if kind == "pickled":
        torch.save({"state_dict": {}, "hyper_parameters": {"x": argparse.Namespace(a=1)}}, path)
    elif kind == "truncated":
        path.write_bytes(Path(good).read_bytes()[:300])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == "missing":
        path.unlink(missing_ok=True)
    else:
        raise ValueError(kind)
    return path


def one_error_line(args: list[str], capsys=None) -> str:
    """Run ``main(args)`` and return its ``error:`` message; fail on success or any other outcome."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    msg = exc.value.code
    assert isinstance(msg, str) and msg.startswith("error: "), f"not an error line: {msg!r}"
    assert "Traceback" not in msg
    return msg


CKPT_KINDS = ["pickled", "truncated", "empty", "missing"]
PATTERN = {"pickled": "holds objects other than weights", "truncated": "not a readable weights-only checkpoint",
           "empty": "checkpoint is empty", "missing": "checkpoint not found"}


# ---- --ckpt_path of the Lightning commands ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
@pytest.mark.parametrize("kind", CKPT_KINDS)
def test_ckpt_path_damaged_is_one_line(tiny_tmr_ckpt, tmp_path, command, kind):
    bad = _bad_checkpoint(tmp_path / "bad.ckpt", kind, tiny_tmr_ckpt.ckpt)
    msg = one_error_line([command, "--config", tiny_tmr_ckpt.config, "--ckpt_path", str(bad)])
    assert f"{bad}: " in msg and PATTERN[kind] in msg, msg


def test_ckpt_path_of_another_method_names_both(tiny_tmr_ckpt, tiny_lexical_ckpt):
    msg = one_error_line(["test", "--config", tiny_tmr_ckpt.config, "--ckpt_path", tiny_lexical_ckpt.ckpt])
    assert "a checkpoint of motion_text.methods.lexical.LexicalPretraining, but the config builds " \
           "motion_text.methods.tmr.TMR" in msg, msg


def test_ckpt_path_with_weights_of_another_shape(tiny_tmr_ckpt, tmp_path):
    ckpt = torch.load(tiny_tmr_ckpt.ckpt, weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("motion_decoder.")}
    ckpt["state_dict"]["extra.weight"] = torch.zeros(2)
    bad = tmp_path / "other.ckpt"
    torch.save(ckpt, bad)
    msg = one_error_line(["test", "--config", tiny_tmr_ckpt.config, "--ckpt_path", str(bad)])
    assert f"{bad}: its weights do not fit TMR: " in msg and "missing (e.g. ['motion_decoder." in msg
    assert "1 unexpected (e.g. ['extra.weight'])" in msg


@pytest.mark.parametrize("kind,expected", [("pickled", "not a readable weights-only checkpoint for init_from"),
                                           ("truncated", "not a readable weights-only checkpoint for init_from"),
                                           ("another method", "no tensor matched prefixes")])
def test_init_from_damaged_through_the_cli_is_one_line(tiny_tmr_ckpt, tmp_path, kind, expected):
    bad = tmp_path / "init.ckpt"
    if kind == "another method":
        torch.save({"state_dict": {"text.lm_head.weight": torch.zeros(3)}}, bad)
    else:
        _bad_checkpoint(bad, kind, tiny_tmr_ckpt.ckpt)
    msg = one_error_line(["fit", "--config", tiny_tmr_ckpt.config, "--trainer.fast_dev_run=1",
                          f"--model.init_args.init_from=[{{ckpt: {bad}}}]"])
    assert msg.startswith(f"error: {bad}: {expected}"), msg
    assert "\n" not in msg


# ---- tools --------------------------------------------------------------------------------------------------------
def _tool_args(tool: str, ckpt: str, fx, tmp_path: Path) -> list[str]:
    if tool == "convert":
        return ["convert", ckpt, "--from", "tmr", "--out", str(tmp_path / "out.ckpt")]
    if tool == "retrieve":
        return ["retrieve", "--ckpt", ckpt, "--data", fx.data, "--query", "a person walks", "--quiet", "--no-cache"]
    if tool == "score":
        return ["score", "--ckpt", ckpt, "--motions", str(tmp_path), "--captions", str(tmp_path / "c.txt"), "--quiet"]
    if tool == "index":
        return ["index", "--ckpt", ckpt, "--data", fx.data, "--out", str(tmp_path / "i.npz"), "--quiet"]
    raise ValueError(tool)


@pytest.mark.parametrize("tool", ["convert", "retrieve", "score", "index"])
@pytest.mark.parametrize("kind", CKPT_KINDS)
def test_tool_damaged_checkpoint_is_one_line(tiny_tmr_ckpt, tmp_path, tool, kind):
    bad = _bad_checkpoint(tmp_path / "bad.ckpt", kind, tiny_tmr_ckpt.ckpt)
    msg = one_error_line(_tool_args(tool, str(bad), tiny_tmr_ckpt, tmp_path))
    assert str(bad) in msg, msg
    if tool != "convert" or kind != "missing":
        assert PATTERN[kind].split()[-1] in msg, msg


# ---- untrusted class paths ------------------------------------------------------------------------------------------
@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a marker file (stands for any installed module's top-level code)."""
    marker = tmp_path / "imported"
    (tmp_path / "mt_marker_mod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass Nothing: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mt_marker_mod", None)
    yield marker
    sys.modules.pop("mt_marker_mod", None)


@pytest.mark.parametrize("where", ["_class_path", "nested class_path"])
@pytest.mark.parametrize("tool", ["retrieve", "score", "index", "fit --ckpt_path"])
def test_untrusted_class_path_is_never_imported(tiny_tmr_ckpt, tmp_path, marker_module, tool, where):
    ckpt = torch.load(tiny_tmr_ckpt.ckpt, weights_only=True)
    hp = ckpt["hyper_parameters"]
    if where == "_class_path":
        hp["_class_path"] = "mt_marker_mod.Nothing"
    else:
        hp["motion_encoder"]["class_path"] = "mt_marker_mod.Nothing"
    bad = tmp_path / "hostile.ckpt"
    torch.save(ckpt, bad)
    if tool == "fit --ckpt_path":
        args = ["fit", "--config", tiny_tmr_ckpt.config, "--ckpt_path", str(bad), "--trainer.fast_dev_run=1"]
    else:
        args = _tool_args(tool, str(bad), tiny_tmr_ckpt, tmp_path)
    msg = one_error_line(args)
    assert not marker_module.exists(), "the checkpoint's class path was imported"
    assert "mt_marker_mod.Nothing" in msg and str(bad) in msg, msg


def test_this_module_is_not_imported(tiny_tmr_ckpt, tmp_path, capsys):
    ckpt = torch.load(tiny_tmr_ckpt.ckpt, weights_only=True)
    ckpt["hyper_parameters"]["_class_path"] = "this.Nothing"
    bad = tmp_path / "this.ckpt"
    torch.save(ckpt, bad)
    had = sys.modules.pop("this", None)
    try:
        msg = one_error_line(_tool_args("retrieve", str(bad), tiny_tmr_ckpt, tmp_path))
        assert "this" not in sys.modules
    finally:
        if had is not None:
            sys.modules["this"] = had
    assert "Beautiful is better" not in capsys.readouterr().out
    assert "is not a method of this project" in msg


# ---- search -----------------------------------------------------------------------------------------------------------
def _search_file(path: Path, kind: str, good: Path) -> Path:
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "missing key":
        with np.load(good) as z:
            np.savez(path, **{k: z[k] for k in z.files if k != "indptr"})
    elif kind == "npy":
        np.save(path.with_suffix(".npy"), np.zeros(3))
        path.with_suffix(".npy").rename(path)
    elif kind == "object npy":
        with open(path, "wb") as f:
            np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "random bytes":
        path.write_bytes(np.random.default_rng(1).bytes(3000))
    return path


@pytest.fixture(scope="module")
def lexical_index(tiny_lexical_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("rel_index") / "index.npz"
    assert main(["index", "--ckpt", tiny_lexical_ckpt.ckpt, "--data", tiny_lexical_ckpt.data, "--out", str(out),
                 "--quiet", "--split", "train"]) == 0
    return out


@pytest.mark.parametrize("kind", ["truncated", "missing key", "npy", "object npy", "random bytes"])
def test_search_damaged_index_names_the_file(lexical_index, tmp_path, kind):
    bad = _search_file(tmp_path / "bad.npz", kind, lexical_index)
    msg = one_error_line(["search", "--index", str(bad), "--keywords", "walk"])
    assert str(bad) in msg, msg


# ---- retrieve / score inputs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["object npy", "random bytes", "one frame"])
def test_retrieve_motion_file_names_it(tiny_tmr_ckpt, tmp_path, kind):
    bad = tmp_path / "query.npy"
    if kind == "one frame":
        np.save(bad, np.zeros((1, 263), np.float32))
    else:
        _search_file(bad, kind, bad)
    msg = one_error_line(["retrieve", "--ckpt", tiny_tmr_ckpt.ckpt, "--data", tiny_tmr_ckpt.data, "--motion",
                          str(bad), "--quiet", "--no-cache", "--split", "train"])
    assert f"{bad}: " in msg, msg


@pytest.mark.parametrize("query", ["", "   "])
def test_retrieve_empty_query_is_an_error(tiny_tmr_ckpt, query):
    msg = one_error_line(["retrieve", "--ckpt", tiny_tmr_ckpt.ckpt, "--data", tiny_tmr_ckpt.data, "--query", query,
                          "--quiet", "--no-cache"])
    assert "empty caption" in msg


def _generated(tmp_path: Path, root: Path, frames: tuple[int, ...]) -> list[str]:
    motions = tmp_path / "gen"
    motions.mkdir()
    src = sorted((root / "new_joint_vecs").glob("*.npy"))
    lines = []
    for i, t in enumerate(frames):
        np.save(motions / f"g{i}.npy", np.load(src[i])[:t])
        lines.append(f"g{i}\ta person walks forward")
    (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n")
    return ["--motions", str(motions), "--captions", str(tmp_path / "captions.txt"), "--mean",
            str(root / "Mean.npy"), "--std", str(root / "Std.npy"), "--quiet", "--json"]


def test_score_one_frame_motion_is_an_error(tiny_tmr_ckpt, tmp_path, capsys):
    args = ["score", "--ckpt", tiny_tmr_ckpt.ckpt, "--batch-size", "2", "--diversity-times", "2",
            *_generated(tmp_path, tiny_tmr_ckpt.root, (30, 1, 30, 30))]
    msg = one_error_line(args)
    assert "g1.npy: 1 frame; a motion needs at least 2 frames" in msg, msg


@pytest.mark.parametrize("option,value", [("--batch-size", "0"), ("--diversity-times", "0"), ("--max-len", "0"),
                                          ("--num-workers", "-1")])
def test_score_counts_below_range(tiny_tmr_ckpt, tmp_path, option, value):
    args = ["score", "--ckpt", tiny_tmr_ckpt.ckpt, *_generated(tmp_path, tiny_tmr_ckpt.root, (30, 30, 30)),
            "--batch-size", "2", option, value]
    msg = one_error_line(args)
    assert f"{option} must be >= " in msg and value in msg, msg


# ---- gallery cache ----------------------------------------------------------------------------------------------------
def test_gallery_cache_follows_motion_files_changed_in_place(tiny_tmr_ckpt, h3d_copy, tmp_path, capsys):
    import yaml

    ckpt = tmp_path / "tmr.ckpt"
    shutil.copy(tiny_tmr_ckpt.ckpt, ckpt)
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"datasets": [{"name": "humanml3d", "root": str(h3d_copy)}], "num_workers": 0,
                                    "batch_size": 4, "max_len": 40}))
    args = ["retrieve", "--ckpt", str(ckpt), "--data", str(data), "--query", "a person walks", "--json", "--quiet",
            "--split", "train", "-k", "16"]

    def scores(*extra):
        capsys.readouterr()
        assert main(args + list(extra)) == 0
        return {h["key"]: h["score"] for h in json.loads(capsys.readouterr().out)["results"][0]["hits"]}

    before = scores()
    assert list(tmp_path.glob("tmr.gallery-train-*.pt")), "the cache was written"
    assert scores() == before  # from the cache
    ids = (h3d_copy / "train.txt").read_text().split()
    rng = np.random.default_rng(0)
    for i in ids[:4]:  # rewrite motions under the same names (new content, same ids and frame counts)
        f = h3d_copy / "new_joint_vecs" / f"{i}.npy"
        arr = np.load(f)
        put(f, (arr + rng.normal(0, 1, arr.shape)).astype(np.float32))
    after, fresh = scores(), scores("--no-cache")
    assert after == pytest.approx(fresh, abs=1e-6), "the cache served rankings of the old files"
    assert after != pytest.approx(before, abs=1e-6)
