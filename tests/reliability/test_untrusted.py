"""No file from a data folder or a checkpoint is unpickled: the package never calls ``pickle.load(s)``, ``np.load``
with ``allow_pickle=True`` or ``torch.load`` without ``weights_only=True`` (AIST++ pickles go through a restricted
unpickler subclass, which this check allows)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import motion_text

PACKAGE = Path(motion_text.__file__).parent


def _unsafe_calls(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
        name = f"{owner}.{node.func.attr}"
        kw = {k.arg: k.value for k in node.keywords}
        if name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load", "pd.read_pickle"):
            found.append((node.lineno, name))
        elif name in ("np.load", "numpy.load") and "allow_pickle" in kw and not (
                isinstance(kw["allow_pickle"], ast.Constant) and kw["allow_pickle"].value is False):
            found.append((node.lineno, f"{name}(allow_pickle=...)"))
        elif name == "torch.load" and not (
                isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
            found.append((node.lineno, "torch.load without weights_only=True"))
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_unpickling_of_untrusted_files(path):
    assert _unsafe_calls(ast.parse(path.read_text(), str(path))) == []


@pytest.mark.parametrize("source,n", [("import pickle\npickle.load(f)", 1), ("np.load(p, allow_pickle=True)", 1),
                                      ("torch.load(p)", 1), ("torch.load(p, weights_only=False)", 1),
                                      ("torch.load(p, weights_only=True)\nnp.load(p)", 0)])
def test_the_scan_finds_unsafe_calls(source, n):
    assert len(_unsafe_calls(ast.parse(source))) == n
