"""Console commands (``rlkit-train-dqn``, ``rlkit-evaluate``, ...) for the scripts in ``scripts/``.

Each command runs its script exactly as ``python scripts/<name>.py`` does: the scripts folder
first on ``sys.path`` (the scripts import their siblings, ``_common`` and ``_tabular``), the
file executed as ``__main__`` with the command's arguments. The scripts stay plain files, not
a package, and this module imports nothing from them, from ``agents`` or from ``envs``.

The scripts folder is found next to this package, which is where an editable install
(``pip install -e .``, as the README installs) leaves it; a wheel does not carry it, and the
commands then say so in one line.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

# command name (after "rlkit-") -> script file name (without .py); pyproject.toml lists each
COMMANDS = {name.replace("_", "-"): name for name in (
    "train_dqn", "train_pg", "train_q", "solve_mdp", "watch", "evaluate", "plot", "compare", "sweep",
    "bench_core", "bench_conv_layers", "bench_dqn", "bench_envs", "bench_gemm", "bench_pg",
    "bench_replay", "bench_revisions", "bench_tabular")}


def run_script(name: str) -> None:
    """Run ``scripts/<name>.py`` as ``__main__`` with the current ``sys.argv[1:]``."""
    path = SCRIPTS / f"{name}.py"
    if not path.is_file():
        print(f"error: {path} not found: the rlkit-* commands run the scripts of a source "
              f"checkout installed with `pip install -e .`", file=sys.stderr)
        sys.exit(2)
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    runpy.run_path(str(path), run_name="__main__")


def _command(name: str):
    def main() -> None:
        run_script(name)
    main.__name__ = main.__qualname__ = name
    main.__doc__ = f"``rlkit-{name.replace('_', '-')}``: ``python scripts/{name}.py``"
    return main


for _name in COMMANDS.values():
    globals()[_name] = _command(_name)
del _name
