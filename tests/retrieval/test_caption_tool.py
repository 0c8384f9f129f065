"""``motion-text predict`` with the CaptionWriter callback on a tiny lexical checkpoint: one caption per motion,
metrics consistent with the functional core, a random-caption baseline."""

import json

import pytest
import yaml

from motion_text.cli import main
from motion_text.data.datamodule import DatasetSpec, MotionTextDataModule
from motion_text.metrics.captioning import caption_metrics
from motion_text.tools.caption import action_agreement, random_caption_baseline

from .conftest import tiny_lexical


@pytest.mark.parametrize("lengths", [[3, 6], None])
def test_predict_writes_captions_and_metrics(trained_lexical, tmp_path, lengths):
    model = tiny_lexical(trained_lexical.bert, phase=3, init_from=[{"ckpt": trained_lexical.ckpt}])
    cfg = {"seed_everything": 0, "model": model,
           "data": {"datasets": [{"name": "humanml3d", "root": str(trained_lexical.root)}], "batch_size": 16,
                    "num_workers": 0, "max_len": 24, "joints": True, "predict_split": "test"},
           "trainer": {"logger": False, "enable_progress_bar": False, "default_root_dir": str(tmp_path),
                       "callbacks": [{"class_path": "motion_text.tools.caption.CaptionWriter",
                                      "init_args": {"output": "caps.json", "lengths": lengths, "iterations": 2,
                                                    "bertscore_model": None}}]}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    main(["predict", "--config", str(tmp_path / "c.yaml")])
    out = json.loads((tmp_path / "caps.json").read_text())
    keys = list(out["captions"])
    assert len(keys) == out["settings"]["items"] > 1
    caps = [out["captions"][k]["caption"] for k in keys]
    refs = [out["captions"][k]["references"] for k in keys]
    assert all(isinstance(c, str) and c for c in caps) and all(refs)
    if lengths:
        assert all(1 <= len(c.split()) <= 6 for c in caps)
    else:  # the decoder's length classifier (trained in phase 1) proposes each motion's lengths
        assert out["settings"]["lengths"] == "predicted (top 3)"
    assert out["metrics"] == pytest.approx(caption_metrics(caps, refs, None))
    assert out["random_caption_baseline"] == pytest.approx(
        caption_metrics(random_caption_baseline(refs, 0), refs, None))


def test_random_baseline_never_gives_an_item_its_own_caption():
    refs = [[f"caption {i}"] for i in range(50)]
    base = random_caption_baseline(refs, seed=3)
    assert all(b != r[0] for b, r in zip(base, refs))
    with pytest.raises(ValueError, match="at least 2"):
        random_caption_baseline(refs[:1])


def test_action_agreement_by_hand():
    caps = ["a person kicks twice", "someone walks forward and then sits down", "a person stands", "he waves"]
    refs = [["a man kicks with the left leg"], ["a person walks ahead", "someone strolls"], ["a person jumps"],
            ["a person punches"]]
    out = action_agreement(caps, refs)
    # item 1: kick named; item 2: walk named, sit not in refs (precision 1/2); item 3: no action; item 4: wrong one
    assert out == pytest.approx({"named": 2 / 4, "precision": (1 + 0.5 + 0 + 0) / 4, "none": 1 / 4})
    assert action_agreement(["walkss forward"], [["walks forward"]])["named"] == 0.0  # whole words only
    with pytest.raises(ValueError, match="as many"):
        action_agreement(caps, refs[:2])


def test_checkpoint_without_length_classifier_loads_and_scans_lengths(trained_lexical, tmp_path, caplog):
    """A lexical checkpoint from before the length classifier existed still loads (strict Lightning loading); its
    classifier counts as untrained, so captioning scans fixed lengths and says so."""
    import torch

    from motion_text.tools.retrieve import load_method

    ckpt = torch.load(trained_lexical.ckpt, map_location="cpu", weights_only=True)
    trained = load_method(trained_lexical.ckpt, "cpu")
    assert int(trained.decoder.length_updates) > 0  # the fixture's training counted its updates
    dropped = [k for k in ckpt["state_dict"] if k.startswith(("decoder.length_head.", "decoder.length_updates"))]
    assert len(dropped) == 5  # LayerNorm weight/bias, Linear weight/bias, the counter
    for k in dropped:
        del ckpt["state_dict"][k]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    model = load_method(str(old), "cpu")
    assert int(model.decoder.length_updates) == 0
    assert "without the decoder's length classifier" in caplog.text
    torch.testing.assert_close(model.decoder.layers.state_dict(), trained.decoder.layers.state_dict())
    dm = MotionTextDataModule(datasets=[DatasetSpec(name="humanml3d", root=str(trained_lexical.root))], batch_size=4,
                              num_workers=0, max_len=24, joints=True)
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    caps = model.generate_captions(batch, iterations=1)
    assert len(caps) == len(batch["key"]) and "never trained" in caplog.text
