"""Cold start of ``motion-text --help`` against ``python -c "import lightning"``.

Both run as fresh interpreters (the same ``sys.executable``), alternately, 3 times each (quick: 2); the figure is
the ratio of the median wall times. ``--help`` must not import more than Lightning's own stack (``transformers``
and ``librosa`` are imported lazily). Target: <= 1.3x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import Row, interleaved

TARGET = 1.3


def _command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "motion-text")
    return [script, "--help"] if os.path.exists(script) else [sys.executable, "-m", "motion_text.cli", "--help"]


WATCHED = ("transformers", "transformers.modeling_utils", "librosa", "librosa.core", "sentence_transformers")


def _loaded(code: str) -> set[str]:
    code += f"\nimport sys\nprint(','.join(m for m in {WATCHED!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(filter(None, out.strip().splitlines()[-1].split(","))) if out.strip() else set()


def heavy_imports() -> list[str]:
    """Watched modules that ``--help`` loads beyond what ``import lightning`` loads itself (should be none).

    (Lightning's torchmetrics already imports the lazy top-level ``transformers`` and ``librosa`` packages.)
    """
    own = _loaded("from motion_text.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    return sorted(own - _loaded("import lightning"))


def run(quick: bool = False) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def call(cmd: list[str]):
        return lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)

    t = interleaved(call([sys.executable, "-c", "import lightning"]), call(_command()), 2 if quick else 3)
    ratio = t["ours_s"] / t["ref_s"]
    heavy = heavy_imports()
    row = Row("`motion-text --help` cold start", '`python -c "import lightning"`', "<= 1.3x",
              f"{ratio:.2f}x ({t['ref_s']:.1f} -> {t['ours_s']:.1f} s)"
              + (f"; imports {', '.join(heavy)}" if heavy else ""), ratio <= TARGET and not heavy, "cpu")
    return {"rows": [row.to_dict()], "ratio": ratio, "heavy_imports": heavy, "timing": t}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(run(ap.parse_args().quick), indent=2, default=float))
