"""rlkit.runs: run folders, config, CSV progress, atomic writes, pickle-free .npz."""
import errno
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from rlkit.runs import (CSVLogger, DiskFullError, RunDir, atomic_open, load_npz, read_csv,
                        save_npz_atomic, truncate_csv, write_json_atomic)


def test_fresh_run_dir_is_named_and_unique(tmp_path):
    a = RunDir(name="q-RoomExit", root=tmp_path)
    b = RunDir(name="q-RoomExit", root=tmp_path)
    assert re.fullmatch(r"q-RoomExit-\d{8}-\d{6}(-\d+)?", a.path.name)
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir()


def test_explicit_run_dir_is_created_then_reused(tmp_path):
    run = RunDir(tmp_path / "deep" / "run")
    (run / "marker").write_text("x")
    again = RunDir(tmp_path / "deep" / "run")
    assert (again / "marker").read_text() == "x"
    assert again.checkpoints == again.path / "checkpoints" and again.checkpoints.is_dir()


def test_run_dir_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        RunDir(tmp_path / "f")


def test_config_round_trip_with_numpy_scalars(tmp_path):
    run = RunDir(tmp_path / "r")
    run.write_config({"gamma": np.float64(0.8), "episodes": np.int64(3), "env": "RoomExit"})
    assert run.read_config() == {"gamma": 0.8, "episodes": 3, "env": "RoomExit"}
    assert json.loads((run / "config.json").read_text())["env"] == "RoomExit"


def test_config_refuses_unserialisable_values(tmp_path):
    with pytest.raises(TypeError, match="as JSON"):
        write_json_atomic(tmp_path / "c.json", {"f": object()})
    assert not list(tmp_path.iterdir())  # nothing half-written, no temp file left


def test_atomic_open_keeps_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "data.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("new and incomplete")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["data.txt"]


def test_a_full_disk_is_one_line_naming_the_folder_and_the_space_needed(tmp_path, monkeypatch):
    target = tmp_path / "latest.npz"
    save_npz_atomic(target, a=np.zeros(10))

    def full_disk(file, **arrays):  # the disk fills up part of the way through the write
        file.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(DiskFullError) as raised:
        save_npz_atomic(target, a=np.zeros(1_000_000))
    message = str(raised.value)
    assert re.fullmatch(rf"no space left in {re.escape(str(tmp_path))} to write latest.npz: it "
                        r"needs about 8.0 MB \([\d,.]+ MB free\)", message), message
    assert raised.value.errno == errno.ENOSPC and raised.value.__suppress_context__
    monkeypatch.undo()
    np.testing.assert_array_equal(load_npz(target)["a"], np.zeros(10))  # the old file stays
    assert os.listdir(tmp_path) == ["latest.npz"]  # and no temporary file


def test_csv_header_once_rows_flushed_and_appendable(tmp_path):
    run = RunDir(tmp_path / "r")
    log = run.logger()
    log.write({"episode": 0, "return": np.float64(1.5)})
    # Flushed: another reader sees the row before close.
    assert read_csv(run / "progress.csv") == [{"episode": "0", "return": "1.5"}]
    log.write({"episode": 1})  # missing column -> empty cell
    log.close()
    with run.logger() as resumed:  # a resumed run appends under the same header
        resumed.write({"return": 3.0, "episode": 2})
    lines = (run / "progress.csv").read_text().splitlines()
    assert lines == ["episode,return", "0,1.5", "1,", "2,3.0"]


def test_csv_rejects_unknown_columns_and_conflicting_headers(tmp_path):
    path = tmp_path / "p.csv"
    with CSVLogger(path, fieldnames=["a", "b"]) as log:
        log.write({"a": 1})
        with pytest.raises(ValueError, match=r"\['c'\] are not in the header"):
            log.write({"c": 2})
    with pytest.raises(ValueError, match="differs"):
        CSVLogger(path, fieldnames=["a", "c"])


def test_npz_round_trip_exact_path(tmp_path):
    path = tmp_path / "q_table"  # no suffix added
    q = np.arange(12.0).reshape(3, 4)
    save_npz_atomic(path, q=q, meta=np.array('{"a": 1}'))
    out = load_npz(path)
    np.testing.assert_array_equal(out["q"], q)
    assert str(out["meta"]) == '{"a": 1}'


def test_npz_never_pickles(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        save_npz_atomic(tmp_path / "x.npz", bad=np.array([{"a": 1}], dtype=object))
    # A file someone else wrote with a pickled object array is refused at load time.
    np.savez(tmp_path / "evil.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(tmp_path / "evil.npz")


def test_npz_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="junk.npz: not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_npz(tmp_path / "single.npy")


def test_truncate_csv_drops_rows_after_the_step_and_torn_rows(tmp_path):
    path = tmp_path / "progress.csv"
    with CSVLogger(path, ["step", "return"]) as log:
        for step in (10, 20, 30, 40):
            log.write({"step": step, "return": -step})
    with open(path, "a", newline="") as f:
        f.write("50,-5")                       # killed mid-row: no newline
    assert truncate_csv(path, 30) == 2
    assert path.read_text().splitlines() == ["step,return", "10,-10", "20,-20", "30,-30"]
    with open(path, "a", newline="") as f:
        f.write("25\r\n")                       # too few cells
    assert truncate_csv(path, 30) == 1
    inode = path.stat().st_ino
    assert truncate_csv(path, 30) == 0 and path.stat().st_ino == inode  # nothing to do: untouched
    with CSVLogger(path, ["step", "return"]) as log:  # appending goes on under the same header
        log.write({"step": 31, "return": 0})
    assert [r["step"] for r in read_csv(path)] == ["10", "20", "30", "31"]


def test_csv_written_before_a_new_column_is_widened(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_bytes(b"step,mean\r\n100,1.5\r\n")
    with CSVLogger(path, ["step", "mean", "truncated"]) as log:
        log.write({"step": 200, "mean": 2.0, "truncated": 1})
    assert read_csv(path) == [{"step": "100", "mean": "1.5", "truncated": ""},
                              {"step": "200", "mean": "2.0", "truncated": "1"}]


def test_temporaries_of_a_killed_write_are_removed(tmp_path):
    run = RunDir(tmp_path / "run")
    (run.checkpoints / "latest.npz").write_bytes(b"kept")
    # a process killed inside atomic_open, before its rename: the temporary file stays behind
    subprocess.run([sys.executable, "-c", "import os; from rlkit.runs import atomic_open\n"
                    f"with atomic_open({str(run.checkpoints / 'replay.npz')!r}, 'wb') as f:\n"
                    "    f.write(b'x' * 1000); f.flush(); os._exit(9)"], check=False)
    [temporary] = [p.name for p in run.checkpoints.iterdir() if p.name != "latest.npz"]
    assert temporary.startswith(".replay.npz.") and temporary.endswith(".tmp")
    removed = run.remove_temporaries()
    assert [(p.name, size) for p, size in removed] == [(temporary, 1000)]
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["latest.npz"]


def test_a_new_run_needs_an_empty_folder_or_overwrite(tmp_path):
    assert RunDir.new(tmp_path / "fresh").path.is_dir()
    run = RunDir.new(tmp_path / "fresh")            # empty: fine
    run.write_config({"env": "RoomExit"})
    (run.checkpoints / "latest.npz").write_bytes(b"old run")
    with pytest.raises(FileExistsError, match="is not empty"):
        RunDir.new(run.path)
    assert (run.checkpoints / "latest.npz").is_file()
    assert not any(RunDir.new(run.path, overwrite=True).path.iterdir())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a run")
    with pytest.raises(FileExistsError, match="not a run folder"):
        RunDir.new(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").is_file()


def test_run_folders_and_figures_do_not_load_the_engine():
    # scripts that only read runs (plot.py, sweep summaries) should not pay for numba's kernels
    code = ("import sys, rlkit.runs, rlkit.plotting; "
            "print(sorted(m for m in ('numba', 'rlkit.tensor', 'rlkit.kernels') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    code = "import sys; from rlkit import Tensor, nn; print(Tensor.__name__, 'numba' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["Tensor", "True"]


def test_atomically_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "progress.csv"
    plain.write_text("step\n")
    with atomic_open(tmp_path / "config.json") as f:
        f.write("{}")
    save_npz_atomic(tmp_path / "latest.npz", x=np.zeros(2))
    mode = lambda path: path.stat().st_mode & 0o777
    assert mode(tmp_path / "config.json") == mode(tmp_path / "latest.npz") == mode(plain)
