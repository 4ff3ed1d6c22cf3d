"""Writing files so that a crash, a full disk or another process never sees half of one,
and reading back what was written (safely: no code runs while loading)."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import CorruptFileError, DiskFullError

# Below this many free bytes, a failed write is taken to be a full disk: torch.save reports
# ENOSPC as a RuntimeError ("basic_ios::clear: iostream error"), without the errno.
_NEARLY_FULL_BYTES = 1 << 20


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _disk_full(error: BaseException, folder: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(error, RuntimeError):  # torch.save's C++ writer hides the errno
        try:
            return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
        except OSError:
            return False
    return False


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` on a fresh file beside ``path``, then rename it to
    ``path`` in one step: readers find the old file or the whole new one, never a
    truncated one. The temporary name is unique, so processes writing the same file at
    once (shards of a sweep) cannot clash; it is removed if ``write`` fails. The file gets
    the permissions of any new file (0666 minus the umask, e.g. 0644), not mkstemp's 0600,
    so that run files can be copied between machines and merged. A full disk raises
    :class:`DiskFullError` naming ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        os.chmod(temporary, 0o666 & ~_umask())
        write(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if _disk_full(error, path.parent):
            raise DiskFullError(
                errno.ENOSPC,
                f"Disk full while writing {path}: free some space and run the command "
                "again (the previous version of the file, if any, is intact)",
            ) from error
        raise
    return path


def _finite_or_none(value):
    """JSON has no NaN or infinity: such numbers become ``null``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def json_text(data) -> str:
    """Strict JSON (NaN and infinities written as ``null``), indented, ending in a newline."""
    return json.dumps(_finite_or_none(data), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, data) -> Path:
    """Write ``data`` as strict JSON, atomically (creating the folder if needed)."""
    text = json_text(data)
    return write_atomically(path, lambda temporary: temporary.write_text(text))


def read_json(path: str | Path, what: str = "file") -> dict:
    """A JSON file the tool wrote; a corrupt one is named, with what to do."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptFileError(
            f"The {what} {path} is corrupt ({error}): it was probably cut short by an "
            "interrupted run or copy. Run the command that wrote it again (e.g. fit with "
            "the same --out), or restore it from a copy."
        ) from error


def load_torch(path: str | Path, map_location="cpu", what: str = "file"):
    """``torch.load`` with ``weights_only=True``: only tensors, numbers, strings, lists and
    dicts are read, so a crafted file cannot run code. A file that holds anything else, or
    is truncated, is refused with a message naming it."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CorruptFileError(
            f"Refusing to load the {what} {path}: it holds Python objects other than "
            "weights, and loading it could run code on this machine. stad_utils writes "
            "only weights, so this file was not written by it (or by an older version). "
            "Re-create it with the command that made it (e.g. fit with a fresh --out)."
        ) from error
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError) as error:
        raise CorruptFileError(
            f"The {what} {path} is corrupt or truncated ({error}): it was probably cut "
            "short by an interrupted run or copy. Re-create it with the command that made "
            "it (e.g. fit with the same --out and --overwrite), or restore it from a copy."
        ) from error
