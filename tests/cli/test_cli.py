import pytest
import yaml

from motion_text.cli import available_configs, main, resolve_config


def _config(tmp_path, root):
    cfg = {
        "model": {"class_path": "tests.cli.minimal.MeanFrame"},
        "data": {"datasets": [{"name": "humanml3d", "root": str(root)}], "batch_size": 4, "num_workers": 0},
        "trainer": {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False},
    }
    path = tmp_path / "min.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_fit_fast_dev_run(h3d_root, tmp_path):
    main(["fit", "--config", str(_config(tmp_path, h3d_root)), "--trainer.fast_dev_run=1"])


def test_data_facts_linked_into_model(kit_root, tmp_path):
    from motion_text.cli import _make_cli_class

    cli_cls, method_cls, dm_cls = _make_cli_class()
    cli = cli_cls(method_cls, dm_cls, subclass_mode_model=True, run=False,
                  args=["--config", str(_config(tmp_path, kit_root)),
                        "--data.datasets", f'[{{"name": "kitml", "root": "{kit_root}"}}]'])
    assert (cli.model.nfeats, cli.model.num_joints, cli.model.fps) == (251, 21, 12.5)


def test_bare_config_name_resolves():
    names = available_configs()
    assert "data/synthetic_humanml3d.yaml" in names
    assert resolve_config("synthetic_humanml3d.yaml").endswith("lightning_configs/data/synthetic_humanml3d.yaml")


def test_unknown_config_lists_available(capsys):
    with pytest.raises(SystemExit, match="Available configs:(.|\n)*synthetic_humanml3d.yaml"):
        main(["fit", "--config", "no_such_config.yaml"])


def test_synth_command(tmp_path):
    main(["synth", "--format", "kitml", "--out", str(tmp_path / "k"), "--num", "8", "--workers", "1", "--quiet"])
    assert (tmp_path / "k" / "new_joint_vecs").is_dir() and (tmp_path / "k" / "Std.npy").exists()


def test_missing_data_root_is_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/HumanML3D does not exist here
    with pytest.raises(SystemExit, match=r"error: data/HumanML3D: dataset root of 'humanml3d' not found.*synth"):
        main(["fit", "--config", "tmr_demo.yaml", "--data", "humanml3d.yaml", "--trainer.fast_dev_run=1"])



def test_help_lists_every_subcommand_with_one_line(capsys):
    from motion_text.cli import LIGHTNING_HELP, TOOL_COMMANDS

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = {ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and ln.split()}
    assert listed == set(LIGHTNING_HELP) | set(TOOL_COMMANDS)
    assert main([]) == 0  # no command: the same listing
    assert capsys.readouterr().out == out


@pytest.mark.parametrize("command", ["synth", "configs", "counts", "convert", "retrieve", "score", "index", "search",
                                     "sparsity", "terms", "fit", "test"])
def test_each_subcommand_help_works(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out.lower()


def test_unknown_command_is_one_error_line():
    with pytest.raises(SystemExit) as exc:
        main(["trian", "--config", "tmr.yaml"])
    assert str(exc.value).startswith("error: unknown command 'trian'") and "\n" not in str(exc.value)


def test_cli_overrides_no_private_lightning_method():
    """Only public LightningCLI hooks are overridden (no ``_prepare_subcommand_kwargs`` and the like)."""
    from lightning.pytorch.cli import LightningCLI

    from motion_text.cli import _make_cli_class

    cli_cls = _make_cli_class()[0]
    private = {n for n in vars(cli_cls) if n.startswith("_") and not n.startswith("__") and hasattr(LightningCLI, n)}
    assert not private
