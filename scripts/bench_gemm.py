"""The engine's matrix products on NumPy's BLAS against Intel MKL, shape by shape.

    python scripts/bench_gemm.py [--threads 2] [--rounds 3] [--out results/bench/gemm.json]

Why: on the Xeon the DQN update and the LSTM spend most of their time in GEMMs of a few fixed
shapes (below), which NumPy's OpenBLAS runs at a third to a half of its 1024^3 rate. This
measures what another BLAS would give on exactly those shapes before anyone builds the engine
on it. MKL is not a dependency of rlkit: ``pip install mkl`` puts ``libmkl_rt`` in the
environment's ``lib`` folder, where this script looks for it (``--mkl PATH`` to name another,
``--mkl none`` to skip it); without it only NumPy is timed.

Each library runs in a child process of its own (MKL's OpenMP threads and OpenBLAS's threads
spin against each other in one process), with the same thread count in the environment, the
children alternating for ``--rounds`` rounds; a shape's time is the lowest round median of
microseconds per product into a preallocated output (bench_core's timing). Prints a table,
writes JSON with the CPU model (figures from two CPUs are never compared as one).
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import sys

import numpy as np

from _bench_core_worker import time_step
from bench_core import alternate_children, cpu_line, cpu_model, write_report

# (M, K, N) of C = A @ B, row-major, named by where the engine computes them
SHAPES = {
    "Nature conv2 forward, batch 32 (im2col rows @ weight)": (2592, 512, 64),
    "Nature conv3 forward, batch 32": (1568, 576, 64),
    "Nature conv1 forward on blocks, batch 32": (128, 64, 14112),
    "Nature conv2 weight gradient, batch 32": (64, 2592, 512),
    "Nature conv2 input-gradient columns, batch 32": (2592, 64, 512),
    "Nature conv2 forward, batch 256": (20736, 512, 64),
    "fully connected 3136 -> 512, batch 32 (as W @ x.T)": (512, 3136, 32),
    "LSTM step forward, 32 x 128 -> 512": (32, 128, 512),
    "LSTM step backward, 32 x 512 -> 128": (32, 512, 128),
    "ceiling, 1024^3": (1024, 1024, 1024),
}
ROW_MAJOR, NO_TRANS = 101, 111  # CBLAS enum values


def mkl_sgemm(path: str):
    """``product(a, b, out)`` through MKL's ``cblas_sgemm`` loaded from ``path``."""
    mkl = ctypes.CDLL(path)
    sgemm = mkl.cblas_sgemm
    sgemm.restype = None
    sgemm.argtypes = ([ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int,
                      ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int])

    def product(a, b, out):
        (m, k), n = a.shape, b.shape[1]
        sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, n,
              0.0, out.ctypes.data, n)
    return product


def time_shapes(product, repeats: int) -> dict:
    """Median microseconds of ``product`` for each shape, its result checked at a few entries."""
    rng = np.random.default_rng(0)
    times = {}
    for name, (m, k, n) in SHAPES.items():
        a, b = rng.random((m, k), np.float32), rng.random((k, n), np.float32)
        out = np.empty((m, n), np.float32)
        product(a, b, out)
        # a few entries against float64 dot products: a threaded NumPy product here would leave
        # OpenBLAS's threads spinning beside the library being timed
        for i, j in ((0, 0), (m - 1, n - 1), (m // 2, n // 3)):
            expected = a[i].astype(np.float64) @ b[:, j].astype(np.float64)
            assert abs(out[i, j] - expected) <= 1e-4 * abs(expected), (name, i, j)
        times[name] = time_step(lambda: product(a, b, out), repeats, warmup=3)["median_ms"] * 1e3
    return times


def worker(library: str, mkl_path: str | None, repeats: int) -> None:
    """Child process: print one JSON line of per-shape times for ``library``."""
    if library == "numpy":
        product = lambda a, b, out: np.matmul(a, b, out=out)  # noqa: E731
    else:
        product = mkl_sgemm(mkl_path)
    print(json.dumps(time_shapes(product, repeats)))


def find_mkl() -> str | None:
    """``libmkl_rt`` in this environment's lib folder (where ``pip install mkl`` puts it)."""
    found = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    return found[0] if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7, help="timed samples per shape and round")
    parser.add_argument("--mkl", default=None,
                        help="path of libmkl_rt (default: this environment's; 'none': NumPy only)")
    parser.add_argument("--out", default="results/bench/gemm.json")
    parser.add_argument("--worker", choices=("numpy", "mkl"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    mkl_path = None if args.mkl == "none" else args.mkl or find_mkl()
    if args.worker:
        worker(args.worker, mkl_path, args.repeats)
        return
    libraries = ["numpy"] + (["mkl"] if mkl_path else [])
    if not mkl_path:
        print("bench_gemm: no libmkl_rt found (pip install mkl, or --mkl PATH): NumPy only")
    rounds = alternate_children(__file__, libraries, args.rounds, args.threads, lambda library: [
        "--worker", library, "--repeats", str(args.repeats), *(["--mkl", mkl_path] if mkl_path else [])])
    best = {library: {name: min(r[name] for r in reports) for name in SHAPES}
            for library, reports in rounds.items()}
    print(f"{cpu_line(cpu_model())}; threads: {args.threads}; NumPy {np.__version__}")
    print(f"{'product (M x K @ K x N)':58} {'NumPy us':>10} {'GF/s':>6}" +
          (f" {'MKL us':>10} {'GF/s':>6} {'NumPy/MKL':>9}" if "mkl" in best else ""))
    for name, (m, k, n) in SHAPES.items():
        flop = 2 * m * k * n
        line = f"{name:58} {best['numpy'][name]:10.1f} {flop / best['numpy'][name] / 1e3:6.0f}"
        if "mkl" in best:
            line += (f" {best['mkl'][name]:10.1f} {flop / best['mkl'][name] / 1e3:6.0f}"
                     f" {best['numpy'][name] / best['mkl'][name]:9.2f}")
        print(line)
    write_report(args.out, {"numpy": np.__version__, "mkl": mkl_path, "best_us": best,
                            "shapes": {name: list(shape) for name, shape in SHAPES.items()},
                            "rounds_us": rounds}, args.threads)


if __name__ == "__main__":
    main()
