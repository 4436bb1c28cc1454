"""The host allocator settings: applied by the CLI, skipped where the user chose, and effective."""

import subprocess
import sys

import pytest

from msda_cli import hostmem

FAULTS = """
import resource, sys, torch
from msda_cli import hostmem
applied = hostmem.keep_freed_memory()
from msda_cli.mixing import build_mixer
torch.set_num_threads(1)
x, y = torch.rand(128, 3, 32, 32), torch.randint(0, 10, (128,))
mixer, g = build_mixer("dcutmix", mask_mode="sample"), torch.Generator().manual_seed(0)
conv = torch.nn.Conv2d(3, 16, 3, padding=1)
def step():  # a CPU training step's fresh batch-sized tensors: the mix, activations, gradients
    out = mixer(x, y, 10, generator=g)
    conv(out.x).relu().sum().backward()
for _ in range(60):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    step()
print(int(applied), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 100)
"""


def faults_per_step(env_extra: dict) -> tuple[bool, float]:
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("MSDA_MALLOC", "GLIBC_TUNABLES")}
    env.pop("LD_PRELOAD", None)
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, env=env, check=True)
    applied, faults = out.stdout.split()
    return applied == "1", float(faults)


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hostmem.platform.libc_ver()[0] == "glibc"),
                    reason="the settings are glibc's")
def test_kept_memory_removes_the_page_faults_of_fresh_tensors():
    default_applied, default_faults = faults_per_step({"MSDA_MALLOC": "default"})
    kept_applied, kept_faults = faults_per_step({})
    assert not default_applied and kept_applied
    if default_faults < 100:
        pytest.skip(f"this kernel maps fresh memory cheaply ({default_faults:.0f} faults per step)")
    # MiB-sized tensors every step: hundreds of 4 KiB first-touch faults by default (300–1900
    # measured), next to none once kept (0–17: the heap still grows now and then)
    assert kept_faults < 40, (kept_faults, default_faults)


@pytest.mark.parametrize("environ, chose", [
    ({}, False), ({"PATH": "/bin"}, False), ({"MSDA_MALLOC": "default"}, True), ({"MSDA_MALLOC": "msda"}, False),
    ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, True), ({"MALLOC_ARENA_MAX": "2"}, True),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, True), ({"GLIBC_TUNABLES": "glibc.rtld.nns=4"}, False),
])
def test_user_choices_are_left_alone(environ, chose):
    assert hostmem.user_chose_allocator(environ) is chose


def test_the_cli_applies_it(msda, monkeypatch):
    monkeypatch.setattr(hostmem, "_applied", None)
    monkeypatch.delenv("MSDA_MALLOC", raising=False)
    msda("--version")
    expected = hostmem.platform.libc_ver()[0] == "glibc" and not hostmem.user_chose_allocator()
    assert hostmem._applied is expected
    assert hostmem.describe().startswith("host memory: freed blocks kept" if expected else "host memory: the")
