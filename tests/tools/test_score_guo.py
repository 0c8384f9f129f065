"""``motion-text score --evaluator guo`` end to end on the synthetic set, with random evaluator weights saved in the
released ``text_mot_match/model/finest.tar`` layout and a vocabulary in the released ``our_vab_*`` layout."""

import json
import pickle

import numpy as np
import pytest
import torch
import yaml

from motion_text.cli import main
from motion_text.metrics import generation as G
from motion_text.models.evaluators.guo import GuoEvaluator
from motion_text.tools import retrieve as R
from motion_text.tools.score import caption_tokens


@pytest.fixture(scope="module")
def guo_setup(h3d_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("score_guo")
    data = work / "data.yaml"
    data.write_text(yaml.safe_dump({"datasets": [{"name": "humanml3d", "root": str(h3d_root)}], "batch_size": 8,
                                    "num_workers": 0, "max_len": 60}))
    ds = R.split_dataset(R.load_datamodule(str(data)), "train")
    gen = work / "generated"
    gen.mkdir()
    caps, words = {}, {"sos", "eos", "unk"}
    for i in range(len(ds)):
        it = ds.item(i)
        np.save(gen / f"{it.key}.npy", np.load(it.path)[it.start : it.end])
        caps[it.key] = it.captions[0]
        words.update(t.rpartition("/")[0] for t in caption_tokens(it.captions[0]))
    (work / "caps.txt").write_text("".join(f"{k}\t{v}\n" for k, v in caps.items()))
    torch.manual_seed(0)
    ev = GuoEvaluator(dim_pose=263, dim_word=6, dim_movement_hidden=16, dim_movement_latent=8, dim_text_hidden=8,
                      dim_motion_hidden=8, dim_coemb=8)
    torch.save({p: getattr(ev, p).state_dict() for p in ("movement_encoder", "text_encoder", "motion_encoder")}
               | {"epoch": 0}, work / "finest.tar")
    words = sorted(words - {"sos", "eos", "unk"})[:-3] + ["sos", "eos", "unk"]  # 3 words left out: unk
    np.save(work / "our_vab_data.npy", np.random.RandomState(0).randn(len(words), 6).astype(np.float32))
    (work / "our_vab_words.pkl").write_bytes(pickle.dumps(words))
    (work / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(words)}))
    return work, data, len(caps)


def test_score_guo_end_to_end(guo_setup, capsys):
    work, data, n = guo_setup
    capsys.readouterr()
    assert main(["score", "--evaluator", "guo", "--ckpt", str(work / "finest.tar"), "--glove", str(work),
                 "--motions", str(work / "generated"), "--captions", str(work / "caps.txt"), "--stats-from",
                 str(data), "--batch-size", "16", "--diversity-times", "20", "--json", "--quiet",
                 "--save-embeddings", str(work / "emb.npz")]) == 0
    res = json.loads(capsys.readouterr().out)
    emb = np.load(work / "emb.npz")
    assert res["num_motions"] == n == len(emb["motion"]) >= 32
    # the printed values are the metric functions (checked against the official ones) of the saved embeddings
    want = G.guo_matching(emb["text"], emb["motion"], batch_size=16, seed=0)
    for k, v in want.items():
        assert res[k] == pytest.approx(v, abs=1e-9)
    assert res["fid"] == pytest.approx(G.fid(emb["real"], emb["motion"]), abs=1e-9)
    assert res["diversity"] == pytest.approx(G.diversity(emb["motion"], 20, 0), abs=1e-9)
    assert np.isfinite(list(res.values())).all() and res["mm_dist"] > 0
    # the embeddings are the evaluator's on the normalised, cropped motions
    ev = GuoEvaluator.from_official(work / "finest.tar")
    src = R.split_dataset(R.load_datamodule(str(data)), "train").sources[0]
    first = sorted(p.stem for p in (work / "generated").glob("*.npy"))[0]
    x = (np.load(work / "generated" / f"{first}.npy")[:60] - src.mean) / src.std
    assert np.abs(ev.encode_motions([x]).numpy()[0] - emb["motion"][0]).max() <= 1e-5


def test_score_guo_multimodality_and_errors(guo_setup, tmp_path, capsys):
    work, data, _ = guo_setup
    mm = tmp_path / "mm"
    files = sorted((work / "generated").glob("*.npy"))
    for c in range(3):
        (mm / f"cap{c}").mkdir(parents=True)
        for k in range(12):
            np.save(mm / f"cap{c}" / f"{k:02d}.npy", np.load(files[c * 12 + k]))
    base = ["score", "--evaluator", "guo", "--ckpt", str(work / "finest.tar"), "--motions", str(work / "generated"),
            "--captions", str(work / "caps.txt"), "--stats-from", str(data), "--json", "--quiet"]
    capsys.readouterr()
    assert main([*base, "--glove", str(work), "--mm-motions", str(mm), "--save-embeddings",
                 str(tmp_path / "e.npz")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["multimodality"] == pytest.approx(G.multimodality(np.load(tmp_path / "e.npz")["mm"], 10, 0))
    with pytest.raises(SystemExit, match="needs --glove"):
        main(base)
    (tmp_path / "bad.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="bad.tar: not a readable weights-only evaluator checkpoint"):
        main([*base[:3], "--ckpt", str(tmp_path / "bad.tar"), *base[5:], "--glove", str(work)])


def test_caption_tokens():
    assert caption_tokens("a man walks#a/DET man/NOUN walk/VERB#0.0#0.0") == ["a/DET", "man/NOUN", "walk/VERB"]
    assert caption_tokens("a/DET man/NOUN walk/VERB") == ["a/DET", "man/NOUN", "walk/VERB"]
    assert caption_tokens("a person walks left") == ["a/DET", "person/NOUN", "walk/VERB", "left/ADJ"]  # synthetic tagger
