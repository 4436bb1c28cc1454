"""The benchmark scripts run and print their ratio lines (tiny sizes: this checks they work,
not how fast anything is). They are run from the repository root, as the README says."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run(args, tmp_path, code=None):
    cmd = [sys.executable, *(["-c", code] if code else []), *map(str, args)]
    env = {"PATH": "/usr/bin:/bin", "MSDA_RESULTS": str(tmp_path / "results"), "HOME": str(tmp_path)}
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_bench_mixers_prints_every_method_and_the_loop_ratio(tmp_path):
    code = ("import sys; sys.path.insert(0, 'benchmarks'); import bench_mixers as b; "
            "b.SHAPES = [(6, 3, 12, 12)]; sys.exit(b.main(sys.argv[1:]))")
    out = run(["--repeats", "1", "--device", "cpu"], tmp_path, code)
    from msda_cli.mixing import MIXERS

    for name in MIXERS:
        assert f"\n{name} " in out, name
    assert "timm batch CutMix" in out and "per-sample: ours" in out and "the loop is" in out
    steps = out.split("training step per method", 1)[1]  # PuzzleMix's and Co-Mixup's step against Vanilla's
    assert all(f"\n{name} " in steps for name in ("vanilla", "mixup", "puzzlemix", "comixup")) and "/ Vanilla" in steps
    assert "host memory: freed blocks kept" in out


def test_bench_loop_prints_the_throughput_ratio(tmp_path):
    out = run(["benchmarks/bench_loop.py", "--epochs", "1", "--repeats", "1", "--malloc", "default"], tmp_path)
    assert "ratio msda/bare" in out and "default allocator" in out


@pytest.mark.parametrize("arch, malloc, memory", [("digits-cnn", "msda", "freed blocks kept"),
                                                  ("preactresnet18", "default", "default allocator")])
def test_bench_step_prints_every_methods_overhead_and_mixupe_against_mixup(tmp_path, arch, malloc, memory):
    out = run(["benchmarks/bench_step.py", "--arch", arch, "--batch", "4", "--size", "8", "--reps", "1",
               "--device", "cpu", "--malloc", malloc], tmp_path)
    from msda_cli.mixing import MIXERS

    for name in MIXERS:
        assert f"\n{name} " in out, name
    assert "MixupE / Mixup step:" in out and "%" in out and memory in out


def test_bench_attacks_prints_the_ratio_to_torchattacks(tmp_path):
    pytest.importorskip("torchattacks")
    out = run(["benchmarks/bench_attacks.py", "--batch", "8", "--steps", "2", "--repeats", "1", "--device", "cpu"],
              tmp_path)
    assert "ratio" in out


def test_bench_subsample_prints_the_ratio_to_one_mix_at_a_time(tmp_path):
    out = run(["benchmarks/bench_subsample.py", "--anchors", "8", "--naive-anchors", "2", "--size", "8",
               "--batch", "4", "--repeats", "1", "--device", "cpu"], tmp_path)
    assert "ratio batched / naive" in out


def test_bench_report_prints_the_slowest_table(tmp_path):
    out = run(["benchmarks/bench_report.py", "--runs", "60", "--metrics", "600"], tmp_path)
    assert "slowest:" in out


def test_bench_parallel_prints_the_ratio_to_jobs_1(tmp_path):
    out = run(["benchmarks/bench_parallel.py", "--runs", "2", "--epochs", "1", "--image-size", "16"], tmp_path)
    assert "baseline --jobs 1" in out and "ratio jobs 1 / jobs 2:" in out


def test_bench_data_prints_the_ratio_to_the_better_dataloader(tmp_path):
    out = run(["benchmarks/bench_data.py", "--images", "300", "--batch", "32", "--repeats", "1", "--device", "cpu"],
              tmp_path)
    assert "device pipeline" in out and "DataLoader, 0 workers" in out and "DataLoader, 2 workers" in out
    assert "ratio device pipeline / DataLoader" in out and "(the better DataLoader)" in out


def test_bench_epoch_prints_one_row_per_variant_against_the_hand_written_loop(tmp_path):
    table = tmp_path / "epoch.md"
    out = run(["benchmarks/bench_epoch.py", "--images", "16", "--batch", "8", "--epochs", "1", "--device", "cpu",
               "--variants", "fp32,bf16-cl", "--out", table], tmp_path)
    rows = [line for line in out.splitlines() if line.startswith("| fp32 ") or line.startswith("| bf16-cl ")]
    assert len(rows) == 2 and all("failed" not in r and r.count("|") == 8 for r in rows), out
    assert "ratio = hand-written / msda" in out and table.read_text().strip() == out.strip()


def test_gpu_check_script_parses():
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")]).returncode == 0
