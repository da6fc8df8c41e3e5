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
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rtm import interrupts
from rtm.errors import OutputError, RTMError
from rtm.export.ownership import (
    _LOCK,
    _OLD,
    _TMP,
    MARKER,
    file_is_rtms,
    foreign_entries,
    listing,
    read_marker,
    register_files,
    umask,
    write_marker,
)

__all__ = ["Claim", "atomic_dir", "atomic_file", "check_writable", "claim", "output_failure"]


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
                os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; an output is not
            else:
                fd, name = tempfile.mkstemp(prefix=prefix, suffix=self.path.suffix, dir=parent)
                os.close(fd)
                tmp = Path(name)
                tmp.unlink()  # writers create it (GDAL refuses to open an empty file)
        except OSError as exc:
            raise _as_output_error(exc, self.path, self.what) or exc from exc
        try:
            if self.folder:
                write_marker(tmp, kind, [])  # first: a stale temporary is recognisably rtm's
            yield tmp
            interrupts.check()  # a Ctrl-C swallowed while writing still cancels the output
            if self.folder:
                write_marker(tmp, kind, sorted(p.name for p in tmp.iterdir() if p.name != MARKER))
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
    if read_marker(folder) is None or folder.parent == folder:
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
