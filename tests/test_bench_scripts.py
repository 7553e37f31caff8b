"""The engine benchmark's worker runs every case on rlkit (one short sample each), bench_gemm times
every shape on NumPy, bench_conv_layers every layer on rlkit, bench_revisions one case on two
revisions, bench_core's lock-step one case against PyTorch (where the bench extra is installed),
and bench_pg's PPO case runs rlkit's side for one tiny rollout, so a change to the engine or the
agents cannot silently break scripts/bench_core.py, bench_gemm.py, bench_conv_layers.py,
bench_revisions.py, bench_dqn.py or bench_pg.py --algo ppo."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from _bench_core_worker import CASES, case_flops  # noqa: E402
from _bench_pg_worker import PPO_ATARI  # noqa: E402


def run_bench(script: str, out: Path, *arguments: str) -> tuple:
    """(JSON report, stdout) of ``python scripts/<script> *arguments --out out``, which must succeed."""
    done = subprocess.run([sys.executable, str(SCRIPTS / script), *arguments, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stdout


def test_rlkit_worker_times_every_case():
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "_bench_core_worker.py"), "rlkit", "--threads", "1",
         "--repeats", "1", "--warmup", "0", "--cases", ",".join(CASES)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["cases"]) == set(CASES)
    for case, timing in report["cases"].items():
        assert timing["median_ms"] > 0 and timing["samples"] == 1, case


def test_agent_update_counts_the_extra_double_dqn_forward():
    forward = case_flops("cnn_forward_b1") * 32
    assert case_flops("dqn_agent_update") - case_flops("dqn_train_step") == forward


def test_breakdown_accounts_for_the_whole_update_by_op():
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "_bench_core_worker.py"), "rlkit", "--threads", "1",
         "--breakdown", "dqn_recipe_update"], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    ms = report["ms"]
    for label in ("forward Conv2d", "backward Conv2d", "forward Linear", "backward Linear", "optimiser step"):
        assert ms[label] > 0, label
    assert abs(sum(ms.values()) - report["total_ms"]) < 0.01 * report["total_ms"]


def test_bench_pg_ppo_times_rlkit_on_one_tiny_rollout(tmp_path):
    report, stdout = run_bench("bench_pg.py", tmp_path / "ppo.json", "--algo", "ppo", "--frameworks", "rlkit",
                               "--n-envs", "2", "--n-steps", "16", "--rollouts", "1", "--warmup", "0",
                               "--rounds", "1", "--threads", "1")
    assert report["settings"]["n_envs"] == 2 and report["settings"]["n_steps"] == 16
    assert report["settings"]["clip_range"] == 0.1 and report["threads"] == 1
    assert report["steps_per_s"]["rlkit"] > 0 and report["ratio"] is None  # torch not asked for
    parts = report["seconds_per_rollout"]["rlkit"]
    assert set(parts) == {"envs", "acting", "update", "other"}
    assert all(parts[part] > 0 for part in ("envs", "acting", "update"))
    assert "model name" in report["machine"]["cpu"]
    assert "NUMBA_CPU_NAME" in report["thread_variables"]["rlkit"]  # an emulated run says so
    assert "rlkit " in stdout and "no ratio: only rlkit timed" in stdout


def test_bench_pg_ppo_settings_are_the_pong_preset_train_pg_uses():
    """The benchmark gives both sides PPO_ATARI; it must stay what rlkit's PPO trains Pong with."""
    from agents.ppo import PRESETS
    settings = {k: v for k, v in PPO_ATARI.items() if k != "n_envs"}
    assert settings == {k: PRESETS["cnn"][k] for k in settings}


def test_bench_gemm_times_every_shape_on_numpy(tmp_path):
    report, _ = run_bench("bench_gemm.py", tmp_path / "gemm.json", "--threads", "1", "--rounds", "1",
                          "--repeats", "1", "--mkl", "none")
    assert set(report["best_us"]) == {"numpy"}
    assert "OPENBLAS_CORETYPE" in report["instruction_set_limits"] and report["revision"]
    assert set(report["best_us"]["numpy"]) == set(report["shapes"])
    assert all(us > 0 for us in report["best_us"]["numpy"].values())


def test_bench_conv_layers_times_every_layer_on_rlkit(tmp_path):
    report, _ = run_bench("bench_conv_layers.py", tmp_path / "layers.json", "--frameworks", "rlkit",
                          "--batch", "2", "--threads", "1", "--rounds", "1", "--repeats", "1")
    times = report["best_ms_forward_and_forward_backward"]["rlkit"]
    assert len(times) == 3
    for forward_ms, forward_backward_ms in times.values():
        assert 0 < forward_ms and 0 < forward_backward_ms


def test_bench_core_lockstep_pairs_rlkit_with_torch(tmp_path):
    pytest.importorskip("torch")  # the bench extra: PyTorch is the other side
    report, stdout = run_bench("bench_core.py", tmp_path / "core.json", "--cases", "mlp_train_step",
                               "--rounds", "1", "--repeats", "1", "--threads", "1", "--lockstep", "2")
    row = report["lockstep"]["cases"]["mlp_train_step"]
    assert row["rlkit_ms"] > 0 and row["torch_ms"] > 0 and row["pairs"] == 2
    assert row["target"] == 0.3 and row["pass"] == (row["ratio"] <= 0.3)
    assert "lock-step, 2 pairs per case" in stdout


def test_bench_revisions_times_a_case_on_both_engines_and_removes_its_worktree(tmp_path):
    report, _ = run_bench("bench_revisions.py", tmp_path / "revisions.json", "--base", "HEAD", "--cases",
                          "mlp_train_step", "--samples", "2", "--threads", "1")
    row = report["cases"]["mlp_train_step"]
    assert row["base_ms"] > 0 and row["head_ms"] > 0 and row["pairs"] == 2
    assert len(report["base"]) == 40 and "model name" in report["cpu"]
    worktrees = subprocess.run(["git", "-C", str(SCRIPTS.parent), "worktree", "list"], capture_output=True,
                               text=True, check=True).stdout
    assert "rlkit-base-" not in worktrees


@pytest.mark.parametrize("before,after,busy", [(0.2, 2.3, False), (1.6, 1.9, True), (0.2, 2.6, True)])
def test_a_machine_busy_before_the_benchmark_is_reported(before, after, busy):
    # before it starts, none of the load is the benchmark's own (2 threads here)
    from bench_core import busy_warning
    assert (busy_warning(before, after, threads=2) is not None) == busy
