"""The packaged configs: where ``lightning_configs/`` is, which configs exist, and how a bare ``--config NAME.yaml``
resolves to one of them (used by the CLI and by the tools, which import this module, not the CLI)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["configs_dir", "available_configs", "resolve_config", "resolve_config_args"]


def configs_dir() -> Path:
    """The packaged ``lightning_configs/`` (wheel install) or the repository's (source / editable install)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "lightning_configs", here.parent / "lightning_configs"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"lightning_configs/ not found next to {here}")


def available_configs() -> list[str]:
    root = configs_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))


def resolve_config(name: str) -> str:
    """Return ``name`` if it is an existing path, else the packaged config of that name (with or without ``data/``).
    An existing file that is not UTF-8 text (a checkpoint or a ``.npy`` given as ``--config``) stops with one line."""
    if os.path.isfile(name):
        try:
            with open(name, "rb") as f:
                f.read().decode("utf-8")
        except UnicodeDecodeError as e:
            raise SystemExit(f"error: {name}: not a config (YAML) file: byte {e.object[e.start]:#04x} at offset "
                             f"{e.start} is not UTF-8 text") from None
        except OSError as e:
            raise SystemExit(f"error: {name}: cannot read the config ({e})") from None
    if os.path.exists(name) or not name.endswith((".yaml", ".yml")):
        return name
    root = configs_dir()
    for cand in (root / name, root / "data" / name):
        if cand.is_file():
            return str(cand)
    listing = "\n  ".join(available_configs())
    raise SystemExit(f"error: config {name!r} is neither a file nor a packaged config. Available configs:\n  {listing}")


def resolve_config_args(args: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a in ("--config", "-c", "--data") and i + 1 < len(args):
            out += [a, resolve_config(args[i + 1])]
            i += 2
            continue
        for flag in ("--config=", "--data="):
            if a.startswith(flag):
                a = flag + resolve_config(a[len(flag) :])
        out.append(a)
        i += 1
    return out
