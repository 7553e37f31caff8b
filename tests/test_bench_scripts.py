"""The engine benchmark's worker runs every case on rlkit (one short sample each), so a change
to the engine or the agents cannot silently break scripts/bench_core.py or bench_dqn.py."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from _bench_core_worker import CASES, case_flops  # noqa: E402


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
