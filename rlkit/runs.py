"""Run directories: one folder per training run, written so a kill never leaves a torn file.

A run directory holds ``config.json`` (the arguments of the run), ``progress.csv`` (one row per
episode / sweep / logging step), ``checkpoints/`` and whatever figures or arrays the run makes::

    run = RunDir(name="q-RoomExit")              # runs/q-RoomExit-20250101-120000
    run.write_config({"env": "RoomExit", "gamma": 0.8})
    with run.logger() as log:                     # progress.csv
        log.write({"episode": 0, "return": 100.0})
    save_npz_atomic(run.path / "q_table.npz", q=q_table)

Every whole-file write goes to a temporary name in the same folder, is flushed and fsynced,
then renamed over the target with ``os.replace`` (atomic on POSIX and Windows), so a reader
sees either the old file or the new one; a write killed before its rename leaves a
``.<name>.<random>.tmp`` file that :meth:`RunDir.remove_temporaries` clears at the next start.
The CSV log is the exception: it is appended to, flushed after each row, and a resumed run
appends to it under the header it already has, after :func:`truncate_csv` has cut it back to
the step of the checkpoint it resumes from.

A write that finds the disk full (ENOSPC, or a quota: EDQUOT) raises :class:`DiskFullError`,
whose one-line message names the folder, the space the write needed and the space free; the
target keeps its previous content and no temporary file is left.

Arrays are stored as ``.npz`` and loaded with ``allow_pickle=False``: loading never executes
code. This module is stdlib + NumPy only and imports nothing else from rlkit.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import IO, Iterator, Mapping

import numpy as np

__all__ = [
    "DiskFullError",
    "RunDir",
    "CSVLogger",
    "atomic_open",
    "write_json_atomic",
    "read_json",
    "save_npz_atomic",
    "load_npz",
    "read_csv",
    "truncate_csv",
]

# atomic_open's temporary files: ".<target name>.<random>.tmp" next to the target
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"
# what a write raises when there is no room for it: a full disk or an exhausted quota
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A write failed for want of disk space. ``str()`` is one line naming the folder, the
    space the write needed (``needed`` bytes; None: more than the ``written`` bytes it had
    written when it failed) and the space free there."""

    def __init__(self, path: str | os.PathLike, needed: int | None, written: int = 0):
        path = Path(path)
        try:
            free = f"{_megabytes(shutil.disk_usage(path.parent).free)} free"
        except OSError:
            free = "free space unknown"
        need = (f"about {_megabytes(needed)}" if needed is not None
                else f"more than {_megabytes(written)}" if written else "more room")
        super().__init__(errno.ENOSPC, f"no space left in {path.parent} to write {path.name}: it "
                                       f"needs {need} ({free})", str(path))

    def __str__(self) -> str:
        return self.strerror


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


# --------------------------------------------------------------------------------------------
# Atomic whole-file writes
# --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w",
                needed: int | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on a clean exit fsync it and rename it to ``path``.

    ``mode`` is ``"w"`` (text, UTF-8) or ``"wb"``. If the block raises, the temporary file is
    removed and ``path`` is left as it was; a full disk raises :class:`DiskFullError`, which
    says ``needed`` (the bytes the write takes, when the caller knows them).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        # Same directory as the target: os.replace is only atomic within one file system.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.",
                                   suffix=TEMP_SUFFIX)
        os.chmod(tmp, _NEW_FILE_MODE)  # mkstemp's is 0600; a run's files read like its CSVs
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        written = 0
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                written = os.stat(tmp).st_size
                os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in NO_SPACE and not isinstance(e, DiskFullError):
            raise DiskFullError(path, needed, written) from None  # one line, not the chain
        raise
    _fsync_dir(path.parent)


def _file_mode_of_open() -> int:
    """The permission bits ``open(path, "w")`` gives a new file: 0666 less the umask (read once,
    at import, before any thread could be changing it)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = _file_mode_of_open()


def _fsync_dir(directory: Path) -> None:
    """Persist a rename by syncing its directory (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically; returns the path.

    Raises TypeError naming the offending value if ``obj`` is not JSON-serialisable (NumPy
    scalars are accepted and written as Python numbers).
    """
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    with atomic_open(path, "w", needed=len(text.encode("utf-8"))) as f:
        f.write(text)
    return Path(path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} as JSON")


def read_json(path: str | os.PathLike):
    """Read a JSON file; a file that is not valid JSON raises ValueError naming the path."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def save_npz_atomic(path: str | os.PathLike, **arrays) -> Path:
    """Save named arrays to exactly ``path`` (no suffix added) as an uncompressed ``.npz``, atomically.

    Object arrays are refused (they would need pickle to load). Returns the path.
    """
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only plain numeric/string arrays "
                            "can be saved without pickle")
    needed = sum(np.asarray(value).nbytes for value in arrays.values())  # plus small headers
    with atomic_open(path, "wb", needed=needed) as f:
        np.savez(f, **arrays)
    return Path(path)


def load_npz(path: str | os.PathLike, names=None) -> dict[str, np.ndarray]:
    """Load the arrays of an ``.npz`` file into a dict, never unpickling anything: all of them,
    or only those in ``names`` (the others are not read: a checkpoint's header without its
    weights; a name missing from the archive leaves its key out).

    Raises FileNotFoundError if ``path`` is missing and ValueError (naming the path) if it is
    not a readable ``.npz`` archive or holds pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with data:
            return {name: data[name] for name in data.files if names is None or name in names}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None


# --------------------------------------------------------------------------------------------
# Progress log
# --------------------------------------------------------------------------------------------

class CSVLogger:
    """Append-only CSV log: the header once, then one flushed row per ``write`` call.

    The columns are ``fieldnames`` if given, else the keys of the first row. Opening an existing,
    non-empty file (a resumed run) reuses its header and appends below it; a header that is the
    start of ``fieldnames`` (a log written before its last columns existed) is widened once,
    its old rows leaving the new columns empty. A row may leave columns out (written empty) but
    may not add a column the header lacks: that raises ValueError rather than silently dropping
    data.
    """

    def __init__(self, path: str | os.PathLike, fieldnames: list[str] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = self._read_header()
        if existing is not None and fieldnames is not None and list(fieldnames) != existing:
            if list(fieldnames)[:len(existing)] != existing:
                raise ValueError(f"{self.path}: existing header {existing} differs from the "
                                 f"requested columns {list(fieldnames)}")
            _, rows, _ = _read_csv_rows(self.path)
            _rewrite_csv(self.path, list(fieldnames),
                         [row + [""] * (len(fieldnames) - len(row)) for row in rows])
            existing = list(fieldnames)
        self.fieldnames = existing if existing is not None else (
            list(fieldnames) if fieldnames is not None else None)
        self._header_written = existing is not None
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = None

    def _read_header(self) -> list[str] | None:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        with open(self.path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f))

    def write(self, row: Mapping[str, object]) -> None:
        """Append one row (a mapping column -> value) and flush it to the OS; a full disk
        raises :class:`DiskFullError`."""
        if self.fieldnames is None:
            self.fieldnames = list(row)
        unknown = [k for k in row if k not in self.fieldnames]
        if unknown:
            raise ValueError(f"{self.path}: columns {unknown} are not in the header "
                             f"{self.fieldnames}")
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=self.fieldnames)
        try:
            if not self._header_written:
                self._writer.writeheader()
                self._header_written = True
            self._writer.writerow({k: _csv_value(v) for k, v in row.items()})
            self._file.flush()
        except OSError as e:
            if e.errno in NO_SPACE:
                raise DiskFullError(self.path, None) from None
            raise

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CSVLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _csv_value(value):
    # NumPy scalars print as e.g. "np.float64(0.5)" under NumPy 2's repr; write the plain number.
    return value.item() if isinstance(value, np.generic) else value


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a progress CSV back as a list of row dicts (values as strings)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def truncate_csv(path: str | os.PathLike, max_step: int, column: str = "step") -> int:
    """Cut a CSV log back to the rows whose ``column`` is at most ``max_step``; returns how
    many rows were dropped (0 leaves the file untouched).

    A resumed run calls it with its checkpoint's step, so the rows the stopped session wrote
    after that checkpoint are not repeated (the step column never goes backwards). A row a
    kill tore (no final newline, too few cells, no readable step) is dropped too. A file
    without ``column`` is left as it is.
    """
    header, rows, torn = _read_csv_rows(Path(path))
    if header is None or column not in header:
        return 0
    at = header.index(column)
    keep = [row for row in rows if len(row) == len(header) and _step_at_most(row[at], max_step)]
    dropped = len(rows) - len(keep) + torn
    if dropped:
        _rewrite_csv(Path(path), header, keep)
    return dropped


def _step_at_most(text: str, max_step: int) -> bool:
    try:
        return int(text) <= max_step
    except ValueError:
        return False


def _read_csv_rows(path: Path) -> tuple[list[str] | None, list[list[str]], int]:
    """(header or None for an empty file, whole rows, 1 if a torn last line was left out else 0)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    torn = 0
    if text and not text.endswith("\n"):  # the write of the last row was cut short
        text, torn = text[:text.rfind("\n") + 1], 1
    lines = list(csv.reader(io.StringIO(text, newline="")))
    if not lines:
        return None, [], 0
    return lines[0], lines[1:], torn


def _rewrite_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Replace a CSV file atomically, in the line format CSVLogger writes."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    with atomic_open(path, "wb", needed=len(data)) as f:
        f.write(data)


# --------------------------------------------------------------------------------------------
# Run directory
# --------------------------------------------------------------------------------------------

class RunDir:
    """The folder a run writes into.

    ``RunDir(path)`` uses ``path`` (created if missing; an existing one is reused, which is how
    a run resumes); ``RunDir.new(path)`` is the folder of a new run, refused if it is not
    empty. ``RunDir(name=..., root="runs")`` creates a fresh
    ``<root>/<name>-<YYYYmmdd-HHMMSS>`` folder, adding ``-2``, ``-3``... if that name is taken.
    """

    CONFIG = "config.json"
    PROGRESS = "progress.csv"

    def __init__(self, path: str | os.PathLike | None = None, *, name: str = "run",
                 root: str | os.PathLike = "runs"):
        if path is not None:
            self.path = Path(path)
            if self.path.exists() and not self.path.is_dir():
                raise NotADirectoryError(f"run directory {self.path} exists and is not a folder")
            self.path.mkdir(parents=True, exist_ok=True)
        else:
            self.path = self._fresh(Path(root), name)

    @classmethod
    def new(cls, path: str | os.PathLike, *, overwrite: bool = False) -> "RunDir":
        """The folder of a new run at ``path``, so that two runs never mix their files.

        A missing or empty folder is used as it is. A non-empty one raises FileExistsError,
        unless ``overwrite`` and it holds an earlier run (its ``config.json``): then that run's
        files are deleted first. A folder without config.json is never emptied.
        """
        run = cls(path)
        if not any(run.path.iterdir()):
            return run
        if not overwrite:
            raise FileExistsError(f"run folder {run.path} is not empty")
        if not (run.path / cls.CONFIG).is_file():
            raise FileExistsError(f"{run.path} is not empty and holds no {cls.CONFIG}: not a run "
                                  "folder, so it is not overwritten")
        for child in run.path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        return run

    @staticmethod
    def _fresh(root: Path, name: str) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        for i in range(1, 1000):
            candidate = root / (stem if i == 1 else f"{stem}-{i}")
            try:
                candidate.mkdir()  # exist_ok=False: two runs started in one second get two folders
                return candidate
            except FileExistsError:
                continue
        raise FileExistsError(f"could not create a fresh run folder {root / stem}-N")

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def checkpoints(self) -> Path:
        """``<run>/checkpoints``, created on first use."""
        folder = self.path / "checkpoints"
        folder.mkdir(exist_ok=True)
        return folder

    def write_config(self, config: Mapping[str, object]) -> Path:
        """Write the run's arguments to ``config.json`` (atomic, sorted keys)."""
        return write_json_atomic(self.path / self.CONFIG, dict(config))

    def read_config(self) -> dict:
        """The run's ``config.json`` as a dict."""
        return read_json(self.path / self.CONFIG)

    def logger(self, filename: str = PROGRESS, fieldnames: list[str] | None = None) -> CSVLogger:
        """A CSVLogger appending to ``<run>/<filename>`` (``progress.csv`` by default)."""
        return CSVLogger(self.path / filename, fieldnames)

    def remove_temporaries(self) -> list[tuple[Path, int]]:
        """Delete the temporary files that writes killed before their rename left anywhere in
        the run folder (one Pong replay's is 0.7 GB); returns (path, size in bytes) of each."""
        removed = []
        for path in sorted(self.path.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}")):
            with contextlib.suppress(FileNotFoundError):
                size = path.stat().st_size
                path.unlink()
                removed.append((path, size))
        return removed

