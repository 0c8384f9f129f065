"""The packaged configs are found after an editable install and after a plain (non-editable) wheel install."""

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_editable_install_finds_configs():
    from motion_text.cli import available_configs, configs_dir

    assert configs_dir().resolve() == (ROOT / "motion_text" / "lightning_configs").resolve()
    assert "tmr.yaml" in available_configs()


def test_wheel_install_finds_configs(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    # reuse the installed dependencies (and pip) of the running environment
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "inst"),
                    str(ROOT)], check=True, cwd=tmp_path)
    code = ("import motion_text.cli as c, sys; d = c.configs_dir(); "
            "assert 'site-packages' not in str(d) and 'inst' in str(d), d; "
            "print(c.resolve_config('tmr.yaml'))")
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "inst"), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().endswith("inst/motion_text/lightning_configs/tmr.yaml")
