"""Atomic outputs: a reader never sees a half-written file or folder.

Everything is written under a temporary name beside the target and renamed into
place only when complete; on any error (or Ctrl-C) the temporary is removed and a
previous output stays as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rtm.errors import OutputError

__all__ = ["atomic_dir", "atomic_file", "check_writable"]


def check_writable(target: str | Path, *, overwrite: bool, what: str = "--out") -> Path:
    """Refuse an existing output without ``overwrite`` and an unwritable parent."""
    path = Path(target)
    if path.exists() and not overwrite:
        raise OutputError(f"{what} {path}: already exists (use --overwrite to replace it)")
    parent = path.resolve().parent
    blocking = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise OutputError(f"{what} {path}: cannot create folder {parent} ({blocking} is a file)")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{what} {path}: cannot create folder {parent} ({exc.strerror})"
            ) from exc
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{what} {path}: folder {parent} is not writable")
    return path


@contextmanager
def atomic_file(target: str | Path, *, overwrite: bool, what: str = "--out") -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``target`` when the block succeeds."""
    path = check_writable(target, overwrite=overwrite, what=what)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix + ".tmp", dir=path.resolve().parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"{what} {path}: cannot be written ({exc.strerror or exc})") from exc
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_dir(target: str | Path, *, overwrite: bool, what: str = "--out") -> Iterator[Path]:
    """Yield a temporary folder to fill; swap it in for ``target`` when the block succeeds."""
    path = check_writable(target, overwrite=overwrite, what=what)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path}: exists and is not a folder")
    try:
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
        )
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot be written ({exc.strerror or exc})") from exc
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a run folder is not
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"{what} {path}: cannot be written ({exc.strerror or exc})") from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)
