"""Console commands: each ``rlkit-*`` runs its script as ``python scripts/X.py`` does."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlkit.cli import COMMANDS, SCRIPTS

ROOT = Path(__file__).resolve().parents[1]
ENVIRON = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "OPENBLAS_NUM_THREADS": "1"}


def command(name: str) -> str:
    path = Path(sys.executable).parent / f"rlkit-{name}"
    if not path.is_file():
        pytest.fail(f"{path} is missing: install the package with `pip install -e .` "
                    f"(again after pyproject.toml changes)")
    return str(path)


def test_every_script_has_a_command_and_pyproject_lists_each():
    scripts = {p.stem for p in SCRIPTS.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(COMMANDS.values())
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert listed == {f"rlkit-{name}": f"rlkit.cli:{script}" for name, script in COMMANDS.items()}


@pytest.mark.parametrize("name", ["evaluate", "train-dqn"])
def test_help_exits_0_from_any_folder(name, tmp_path):
    done = subprocess.run([command(name), "--help"], cwd=tmp_path, env=ENVIRON,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


def test_a_refusal_keeps_its_status_and_one_line(tmp_path):
    done = subprocess.run([command("evaluate"), str(tmp_path / "missing")], cwd=tmp_path,
                          env=ENVIRON, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == f"error: {tmp_path / 'missing'}: no such run directory or checkpoint\n"
