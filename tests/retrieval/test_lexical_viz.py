"""Term clouds and top-term charts of lexical vectors (motion_text.viz.lexical): the LexicalBoard callback and
``motion-text terms`` (here, next to the tiny lexical checkpoint fixture they share with the retrieval tools)."""

import numpy as np
import pytest
import torch

from motion_text.cli import main
from motion_text.viz.lexical import LexicalBoard, lexical_figures, term_cloud_image, top_terms


def test_top_terms_order_and_special_tokens():
    vocab = ["[CLS]", "walk", "run", "[SEP]", "jump", "kick"]
    p = torch.tensor([9.0, 0.5, 2.0, 8.0, 2.0, 0.0])
    assert top_terms(p, vocab, 3) == [("run", 2.0), ("jump", 2.0), ("walk", 0.5)]
    assert top_terms(p, vocab, 10) == [("run", 2.0), ("jump", 2.0), ("walk", 0.5)]  # zero weights left out
    with pytest.raises(ValueError, match="vocabulary"):
        top_terms(p[:4], vocab)


def test_term_cloud_image_grows_with_weight():
    pytest.importorskip("wordcloud")
    img = term_cloud_image([("kick", 3.0), ("leg", 1.0)], width=200, height=120)
    assert img.shape == (120, 200, 3) and img.dtype == np.uint8
    assert (img < 250).any()  # something drawn on the white background
    assert term_cloud_image([]) is None


def test_board_writes_figures_for_validation_items(trained_lexical):
    from unittest.mock import MagicMock

    board = LexicalBoard(every_n_epochs=1, items=2)
    board._writer = MagicMock()
    trainer = MagicMock(is_global_zero=True, sanity_checking=False, current_epoch=0, global_step=7)
    batch = next(_val_batch(trained_lexical))
    board.on_validation_batch_end(trainer, trained_lexical.model, None, batch, 0)
    board.on_validation_end(trainer, trained_lexical.model)
    assert board.written == ["lexical/term_cloud_0", "lexical/top_terms_0", "lexical/term_cloud_1",
                             "lexical/top_terms_1"]
    tags = [c.args[0] for c in board._writer.add_figure.call_args_list]
    assert tags == board.written and all(c.args[2] == 7 for c in board._writer.add_figure.call_args_list)
    # not due: every 2nd epoch, epoch index 0 -> nothing collected
    idle = LexicalBoard(every_n_epochs=2)
    idle._writer = MagicMock()
    idle.on_validation_batch_end(trainer, trained_lexical.model, None, batch, 0)
    idle.on_validation_end(trainer, trained_lexical.model)
    assert idle.written == [] and not idle._writer.add_figure.called


def _val_batch(trained_lexical):
    from motion_text.tools.sparse import lexical_datamodule

    dm = lexical_datamodule(trained_lexical.model, trained_lexical.data, 0)
    dm.prepare_data()
    dm.setup("validate")
    yield next(iter(dm.val_dataloader()))


def test_figures_show_the_model_top_terms(trained_lexical):
    batch = next(_val_batch(trained_lexical))
    batch = {k: v[:1] for k, v in batch.items()}
    (cloud, bars), = lexical_figures(trained_lexical.model, batch, top=5)
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    from motion_text.retrieval.sparse import vocabulary

    model = trained_lexical.model
    p_m = model.encode_batch_motion(batch)[0]
    expected = [t for t, _ in top_terms(p_m, vocabulary(model.text.tokenizer, p_m.shape[0]), 5)]
    assert labels == expected[::-1]


def test_terms_command_writes_pngs(trained_lexical, tmp_path):
    assert main(["terms", "--ckpt", trained_lexical.ckpt, "--data", trained_lexical.data, "--out", str(tmp_path),
                 "--count", "2", "--quiet"]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 4 and all(f.endswith(".png") for f in files)
    with pytest.raises(SystemExit, match="not key ids"):
        main(["terms", "--ckpt", trained_lexical.ckpt, "--data", trained_lexical.data, "--out", str(tmp_path),
              "--motion", "nope"])
