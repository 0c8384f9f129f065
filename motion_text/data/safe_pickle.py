"""Reading third-party pickles without running their code.

A pickle can run arbitrary code when loaded. The released data that the project reads as pickles (AIST++ motion
files, the vocabulary of Guo et al.'s text-to-motion evaluator) only hold numpy arrays and builtin containers, so they
are read with :class:`RestrictedUnpickler`, which resolves nothing else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

__all__ = ["RestrictedUnpickler", "safe_load_pickle"]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves numpy array reconstruction and plain builtin data types.

    Anything else (functions such as ``os.system`` or ``builtins.eval``, arbitrary classes) raises
    ``pickle.UnpicklingError``: loading a data file can then not execute code from the data folder.
    """

    _NUMPY = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
              ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
              ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}
    _BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes",
                 "bytearray"}

    def find_class(self, module: str, name: str):
        if (module, name) in self._NUMPY or (module == "builtins" and name in self._BUILTINS):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a data file")


def safe_load_pickle(path: str | Path):
    """Load ``path`` with :class:`RestrictedUnpickler`; ``ValueError`` naming the file when it is missing, unsafe
    (a global other than numpy arrays and builtin containers) or not a readable pickle."""
    path = Path(path)
    try:
        return RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except Exception as err:  # UnpicklingError, EOFError, ValueError from numpy ...
        raise ValueError(f"{path}: not a safe pickle ({type(err).__name__}: {err})") from None
