"""Safe outputs: rtm only ever replaces what it wrote, and an output appears whole or not at all.

Every output (a run folder, a single file) is written under a temporary name beside its
target and moved into place only when complete. Around that:

* **Ownership.** A folder rtm writes carries a marker, ``.rtm-run``, listing the files rtm
  put in it. ``--overwrite`` replaces a folder only if every entry in it is rtm's (listed
  in its marker, or, for folders of earlier rtm versions without one, a recognised rtm
  output beside an rtm ``report.json``); a folder holding anything else is refused, even
  with ``--overwrite``, and the message lists what is in the way. A single file is
  replaced only if it is recognisably rtm's output (see :func:`file_is_rtms`).
* **One writer per target.** A lock file beside the target (``.NAME.rtm-lock``, held with
  ``flock``) is taken before any slow work and kept until the output is in place: a
  second rtm process on the same target fails at once (exit 5). The kernel drops the lock
  when its process dies, so a killed run never blocks the next one.
* **Interrupts and kills.** Ctrl-C removes the temporary and leaves any previous output as
  it was (:mod:`rtm.interrupts` makes sure a swallowed Ctrl-C still cancels the move).
  A SIGKILL can leave a temporary behind (``.NAME.rtm-tmp-*``): the next run on the same
  target, holding its lock, removes it, and nothing else.
* **Environment failures** (disk full, read-only file system, quota, permissions) while
  writing become an :class:`~rtm.errors.OutputError` (exit 5) and leave nothing behind.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rtm import interrupts
from rtm._version import __version__
from rtm.errors import OutputError, RTMError

__all__ = [
    "MARKER",
    "Claim",
    "atomic_dir",
    "atomic_file",
    "check_writable",
    "claim",
    "file_is_rtms",
    "folder_is_rtms",
    "foreign_entries",
    "listing",
    "mark_folder",
    "output_failure",
    "register_files",
]

#: The marker file of a folder rtm wrote (JSON: kind, version, the files rtm put there).
MARKER = ".rtm-run"
_TMP = ".rtm-tmp-"
_OLD = ".rtm-old-"
_LOCK = ".rtm-lock"

#: What rtm writes into a run folder (for folders written before the marker existed).
RUN_FILES = frozenset(
    {
        "report.json",
        "factors.csv",
        "risk.tif",
        "cells.gpkg",
        "places.gpkg",
        "features.gpkg",
        "risk.png",
        "map.html",
        "report.html",
        "validation.json",
        "capture.png",
        "job.json",
    }
)
#: What ``rtm batch`` writes into its output folder (beside one folder per job in jobs/).
BATCH_FILES = frozenset({"batch.json", "batch.csv", "batch.log.jsonl", ".rtm-batch.lock", "jobs"})

_OUTPUT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EFBIG,
    errno.EIO,
}
#: What GDAL, SQLite and others write for the failures above, and the usual wording.
_OUTPUT_TEXTS = {
    "no space left": os.strerror(errno.ENOSPC),
    "disk is full": os.strerror(errno.ENOSPC),
    "disk full": os.strerror(errno.ENOSPC),
    "read-only file system": os.strerror(errno.EROFS),
    "quota exceeded": os.strerror(errno.EDQUOT),
    "file too large": os.strerror(errno.EFBIG),
    "permission denied": os.strerror(errno.EACCES),
}


# --------------------------------------------------------------------------- ownership


def listing(names: list[str], limit: int = 5) -> str:
    """``a, b, c and 4 more``: the first few names, for a one-line message."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != "rtm":
        return None
    return data


def _legacy_run(folder: Path) -> bool:
    """A run folder of an rtm version before the marker: an rtm report.json."""
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(report, dict)
        and {"version", "inputs", "culling", "model"} <= set(report)
        and isinstance(report.get("inputs"), dict)
        and "grid" in report["inputs"]
    )


def _legacy_batch(folder: Path) -> bool:
    try:
        summary = json.loads((folder / "batch.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"version", "config", "outcomes"} <= set(summary)


def _rtm_temporary(name: str) -> bool:
    return name.startswith(".") and (
        _TMP in name or _OLD in name or name.endswith(_LOCK) or name == ".rtm-batch.lock"
    )


def foreign_entries(folder: str | Path) -> list[str]:
    """The entries of ``folder`` that rtm did not write (sorted; empty if all are rtm's)."""
    path = Path(folder)
    entries = sorted(p.name for p in path.iterdir())
    marker = _read_marker(path)
    if marker is not None:
        allowed = set(marker.get("files", ())) | {MARKER}
        allowed |= BATCH_FILES if marker.get("kind") == "batch" else RUN_FILES
    elif _legacy_run(path):
        allowed = set(RUN_FILES)
    elif _legacy_batch(path):
        allowed = set(BATCH_FILES)
    else:
        allowed = set()
    return [e for e in entries if e not in allowed and not _rtm_temporary(e)]


def folder_is_rtms(folder: str | Path, kind: str | None = None) -> bool:
    """Whether ``folder`` is an rtm output folder (of ``kind``) holding only rtm's files."""
    path = Path(folder)
    if not path.is_dir():
        return False
    marker = _read_marker(path)
    if marker is None and not (_legacy_batch(path) if kind == "batch" else _legacy_run(path)):
        return False
    if kind is not None and marker is not None and marker.get("kind", "run") != kind:
        return False
    return not foreign_entries(path)


def file_is_rtms(path: str | Path) -> bool:
    """Whether the file at ``path`` is recognisably an output rtm wrote.

    A file inside an rtm folder and listed as rtm's is; otherwise by its content:
    JSON that rtm signed (``"written_by": "rtm ..."``) or shaped as rtm's validation and
    temporal-validation files; a PNG whose ``Software`` text says rtm; a GeoTIFF or
    GeoPackage of rtm's candidate layers (``rtm layers``).
    """
    file = Path(path)
    parent_marker = _read_marker(file.parent)
    if parent_marker is not None and file.name in set(parent_marker.get("files", ())):
        return True
    suffix = file.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                return False
            signed = str(data.get("written_by", "")).startswith("rtm")
            validation = {"events", "cells", "auc", "baselines", "rules"} <= set(data)
            temporal = {"scheme", "windows", "summary"} <= set(data)
            return signed or validation or temporal
        if suffix == ".png":
            from PIL import Image

            with Image.open(file) as image:
                return str(image.info.get("Software", "")).startswith("rtm")
        if suffix in {".tif", ".tiff"}:
            import rasterio

            with rasterio.open(file) as dataset:
                if str(dataset.tags().get("RTM_WRITTEN_BY", "")).startswith("rtm"):
                    return True
                names = [d or "" for d in dataset.descriptions]
                return bool(names) and all(n.count(":") == 2 for n in names)
        if suffix == ".gpkg":
            import pyogrio

            layers = [str(row[0]) for row in pyogrio.list_layers(file)]
            if layers != ["cells"]:
                return False
            fields = list(pyogrio.read_info(file, layer="cells")["fields"])
            return fields[:2] == ["row", "col"]
    except Exception:  # noqa: BLE001 - unreadable means: not recognisably rtm's
        return False
    return False


def register_files(folder: str | Path, names: list[str]) -> None:
    """Add ``names`` to the marker of the rtm folder ``folder`` (if it has one)."""
    path = Path(folder)
    marker = _read_marker(path)
    if marker is None:
        return
    files = sorted(set(marker.get("files", ())) | set(names))
    if files == marker.get("files"):
        return
    _write_marker(path, marker.get("kind", "run"), files)


def mark_folder(folder: str | Path, kind: str) -> None:
    """Give ``folder`` rtm's marker of ``kind`` (a folder rtm fills over time, e.g. a batch)."""
    path = Path(folder)
    marker = _read_marker(path)
    if marker is None or marker.get("kind") != kind:
        _write_marker(path, kind, sorted(marker.get("files", ())) if marker else [])


def _write_marker(folder: Path, kind: str, files: list[str]) -> None:
    text = json.dumps(
        {"written_by": "rtm", "version": __version__, "kind": kind, "files": files}, indent=1
    )
    fd, name = tempfile.mkstemp(prefix=f".{MARKER}{_TMP}", dir=folder)
    os.fchmod(fd, 0o666 & ~_umask())
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(name, folder / MARKER)


# --------------------------------------------------------------------------- errors


def output_failure(exc: BaseException) -> str | None:
    """Why ``exc`` is a failure to write (disk full, read-only, ...), or None if it is not."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _OUTPUT_ERRNOS:
            return current.strerror or os.strerror(current.errno)
        text = str(current).strip().lower()
        for pattern, reason in _OUTPUT_TEXTS.items():
            if pattern in text:
                return reason
        current = current.__cause__ or current.__context__
    return None


def _as_output_error(exc: BaseException, path: Path, what: str) -> OutputError | None:
    if isinstance(exc, RTMError):
        return None
    reason = output_failure(exc)
    if reason is None and isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
    if reason is None:
        return None
    return OutputError(f"{what} {path}: cannot be written ({reason}); nothing was written")


# --------------------------------------------------------------------------- targets


def _refuse_special(path: Path, what: str) -> None:
    """Refuse targets that name the current folder, one of its parents, home or the root."""
    text = str(path)
    if path.name in {"", ".", ".."} or text.rstrip("/\\") in {"", ".", ".."}:
        raise OutputError(
            f"{what} {text or repr(text)}: names the current folder or its parent; "
            "name a new folder, e.g. --out run/"
        )
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if (
        resolved == cwd
        or resolved in cwd.parents
        or resolved == home
        or resolved.parent == resolved
    ):
        raise OutputError(
            f"{what} {text}: is the current folder, a parent of it, your home folder or the "
            "root; name a new folder, e.g. --out run/"
        )


def check_writable(
    target: str | Path, *, overwrite: bool, what: str = "--out", folder: bool | None = None
) -> Path:
    """Fail early if ``target`` cannot be written, or would replace something not rtm's.

    ``folder`` says whether the output is a folder (True), a file (False) or either.
    """
    path = Path(target)
    _refuse_special(path, what)
    if path.is_symlink():
        raise OutputError(f"{what} {path}: is a symbolic link; rtm writes to a real path only")
    if path.exists():
        if path.is_dir() and folder is False:
            raise OutputError(f"{what} {path}: is a folder; name a file")
        if not path.is_dir() and folder is True:
            raise OutputError(f"{what} {path}: exists and is a file, not a folder")
        _check_replaceable(path, overwrite=overwrite, what=what)
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
        reason = "read-only file system" if _read_only(parent) else "not writable"
        raise OutputError(f"{what} {path}: folder {parent} is {reason}")
    return path


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _check_replaceable(path: Path, *, overwrite: bool, what: str) -> None:
    if path.is_dir():
        if not any(path.iterdir()):
            return  # an empty folder: nothing can be lost
        foreign = foreign_entries(path)
        if foreign:
            shown = listing(foreign)
            raise OutputError(
                f"{what} {path}: the folder holds files rtm did not write ({shown}); rtm never "
                "replaces them, even with --overwrite: choose a new folder for the output"
            )
    elif not file_is_rtms(path):
        raise OutputError(
            f"{what} {path}: the file exists and was not written by rtm; rtm never replaces "
            "it, even with --overwrite: choose another name or move it yourself"
        )
    if not overwrite:
        raise OutputError(f"{what} {path}: already exists (use --overwrite to replace it)")


class _Lock:
    """An exclusive ``flock`` on ``.NAME.rtm-lock`` beside a target, removed on release.

    Re-entrant within a process (a file written into a run folder this process holds).
    """

    #: lock path -> [fd, holders] of the locks this process holds
    _held: dict[str, list[int]] = {}

    def __init__(self, path: Path, what: str) -> None:
        self.path = path.parent / f".{path.name}{_LOCK}"
        self.target = path
        self.what = what
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        key = str(self.path.resolve())
        if key in self._held:
            self._held[key][1] += 1
            self.fd = self._held[key][0]
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(
                    f"{self.what} {self.target}: cannot be written ({exc.strerror})"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise OutputError(
                    f"{self.what} {self.target}: another rtm process ({holder}) is writing it; "
                    "wait for it to finish or choose another output"
                ) from None
            # The previous holder may have removed the file after we opened it: only the
            # file still at the path is the lock.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self.fd = fd
        self._held[key] = [fd, 1]

    def release(self) -> None:
        if self.fd is None:
            return
        key = str(self.path.resolve())
        held = self._held.get(key)
        if held is not None and held[1] > 1:
            held[1] -= 1
            self.fd = None
            return
        self._held.pop(key, None)
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


class Claim:
    """An output target held by this process: checked, locked, and free of stale temporaries.

    Use :func:`claim`; write with :meth:`staging`.
    """

    def __init__(self, path: Path, *, overwrite: bool, what: str, folder: bool) -> None:
        self.path = path
        self.overwrite = overwrite
        self.what = what
        self.folder = folder

    def _clean_stale(self) -> None:
        """Remove temporaries of earlier, dead runs on this target; restore a lost original."""
        parent = self.path.parent
        prefix = f".{self.path.name}"
        stale = [
            p
            for p in parent.iterdir()
            if p.name.startswith(prefix + _TMP) or p.name.startswith(prefix + _OLD)
        ]
        olds = sorted(p for p in stale if p.name.startswith(prefix + _OLD))
        if olds and not self.path.exists() and _is_rtm_temporary_dir(olds[-1]):
            # a run was killed between moving the old output aside and the new one in
            os.rename(olds[-1], self.path)
            stale.remove(olds[-1])
        for path in stale:
            if path.is_dir() and not path.is_symlink():
                if _is_rtm_temporary_dir(path):
                    shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    @contextmanager
    def staging(self, kind: str = "run") -> Iterator[Path]:
        """Yield a temporary to fill; move it into place when the block succeeds.

        A folder gets rtm's marker listing what the block wrote. On any failure the
        temporary is removed and the previous output (if any) is left as it was.
        """
        parent = self.path.resolve().parent
        prefix = f".{self.path.name}{_TMP}"
        try:
            if self.folder:
                tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
                os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; an output is not
            else:
                fd, name = tempfile.mkstemp(prefix=prefix, suffix=self.path.suffix, dir=parent)
                os.close(fd)
                tmp = Path(name)
                tmp.unlink()  # writers create it (GDAL refuses to open an empty file)
        except OSError as exc:
            raise _as_output_error(exc, self.path, self.what) or exc from exc
        try:
            if self.folder:
                _write_marker(tmp, kind, [])  # first: a stale temporary is recognisably rtm's
            yield tmp
            interrupts.check()  # a Ctrl-C swallowed while writing still cancels the output
            if self.folder:
                _write_marker(tmp, kind, sorted(p.name for p in tmp.iterdir() if p.name != MARKER))
            self._commit(tmp)
        except BaseException as exc:
            _remove(tmp)
            error = _as_output_error(exc, self.path, self.what)
            if error is not None:
                raise error from exc
            raise

    def _commit(self, tmp: Path) -> None:
        with interrupts.deferred():
            if self.path.exists() or self.path.is_symlink():
                if self.path.is_dir() and not any(self.path.iterdir()):
                    os.rmdir(self.path)
                    os.rename(tmp, self.path)
                elif not self.folder:
                    if not self.overwrite:
                        raise OutputError(
                            f"{self.what} {self.path}: appeared while rtm was working (another "
                            "program made it); nothing was written"
                        )
                    _check_replaceable(self.path, overwrite=True, what=self.what)
                    os.replace(tmp, self.path)
                else:
                    if not self.overwrite:
                        raise OutputError(
                            f"{self.what} {self.path}: appeared while rtm was working (another "
                            "program made it); nothing was written"
                        )
                    _check_replaceable(self.path, overwrite=True, what=self.what)
                    _swap(tmp, self.path)
                    _remove(tmp)  # now holds the previous output
            else:
                try:
                    os.rename(tmp, self.path)
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                        raise OutputError(
                            f"{self.what} {self.path}: appeared while rtm was working (another "
                            "program made it); nothing was written"
                        ) from exc
                    raise
            interrupts.record_commit(self.path)
        if not self.folder:
            register_files(self.path.parent, [self.path.name])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_rtm_temporary_dir(path: Path) -> bool:
    """A temporary folder of rtm's: empty (killed before writing) or carrying the marker."""
    try:
        return (not any(path.iterdir())) or (path / MARKER).is_file()
    except OSError:
        return False


_RENAME_EXCHANGE = 2


def _swap(a: Path, b: Path) -> None:
    """Exchange two paths atomically (Linux ``renameat2``); two renames where unsupported."""
    libc = _libc()
    if libc is not None:
        at_fdcwd = -100
        result = libc.renameat2(
            at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE
        )
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
            raise OSError(code, os.strerror(code), str(b))
    # Fallback: the old output is moved aside under a name the next run restores if this
    # one is killed between the two renames (Claim._clean_stale).
    aside = b.parent / f".{b.name}{_OLD}{os.getpid()}"
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


_LIBC: list[Any] = []


def _libc() -> Any:
    if not _LIBC:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.renameat2.argtypes = [
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_uint,
            ]
            libc.renameat2.restype = ctypes.c_int
            _LIBC.append(libc)
        except (OSError, AttributeError):
            _LIBC.append(None)
    return _LIBC[0]


@contextmanager
def claim(
    target: str | Path, *, overwrite: bool, what: str = "--out", folder: bool = True
) -> Iterator[Claim]:
    """Hold ``target`` for this process: checked, locked, stale temporaries removed.

    Take it before slow work, so that a bad or busy target fails at once; write with
    :meth:`Claim.staging`. Released (the lock removed) when the block ends.
    """
    path = check_writable(target, overwrite=overwrite, what=what, folder=folder)
    lock = _Lock(path, what)
    lock.acquire()
    try:
        with ExitStack() as stack:
            parent_lock = _parent_run_lock(path, what)
            if parent_lock is not None:
                stack.callback(parent_lock.release)
            current = Claim(path, overwrite=overwrite, what=what, folder=folder)
            current._clean_stale()
            # checked again under the lock: another process may have written it meanwhile
            if path.exists():
                _check_replaceable(path, overwrite=overwrite, what=what)
            yield current
    finally:
        lock.release()


def _parent_run_lock(path: Path, what: str) -> _Lock | None:
    """A file written into an rtm folder also holds the folder: no run replaces it meanwhile."""
    folder = path.parent
    if _read_marker(folder) is None or folder.parent == folder:
        return None
    lock = _Lock(folder, what)
    lock.acquire()
    return lock


@contextmanager
def atomic_dir(
    target: str | Path, *, overwrite: bool, what: str = "--out", kind: str = "run"
) -> Iterator[Path]:
    """Yield a temporary folder to fill; put it in place of ``target`` when the block succeeds."""
    with claim(target, overwrite=overwrite, what=what, folder=True) as held:
        with held.staging(kind) as tmp:
            yield tmp


@contextmanager
def atomic_file(target: str | Path, *, overwrite: bool, what: str = "--out") -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``target`` when the block succeeds."""
    with claim(target, overwrite=overwrite, what=what, folder=False) as held:
        with held.staging() as tmp:
            yield tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
