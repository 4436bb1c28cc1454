"""Keep freed host memory inside the process instead of handing it back to the kernel (glibc).

Why: with glibc's defaults a block above the mmap threshold (128 KiB, adapting up to 32 MiB) is
a fresh `mmap`, and freeing the top of the heap trims it; the next tensor of that size then pays
one page fault per 4 KiB page on first write. CPU steps allocate and free batch-sized tensors
every step. Allocators such as jemalloc/tcmalloc keep freed memory; glibc does the same with two
`mallopt` settings: no mmap for large blocks, and a trim threshold of 1 GiB. Measured on whole
training steps on the project's 2-core CPU (benchmarks/bench_step.py's step, batch 128, one
thread, one process per setting, alternated): PreActResNet-18 takes 310 000–560 000 page faults
and 0.4–0.8 s of system time a step without them, 12–17 % of its CPU time (3.5–3.9 s against
3.1–3.2 s); the digits CNN 2 000–10 000 faults, about 10 % (59 against 54 ms, medians).

`msda` applies it at start-up (the CLI, and the benchmarks so that they time what the CLI runs).
It is left alone where the user chose an allocator: `LD_PRELOAD`, any `MALLOC_*` variable, or
`MSDA_MALLOC=default`. Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30

_applied: bool | None = None


def user_chose_allocator(environ=os.environ) -> bool:
    """Whether the environment already picks the allocator or its settings."""
    if environ.get("MSDA_MALLOC", "").strip().lower() == "default" or environ.get("LD_PRELOAD"):
        return True
    return any(k.startswith("MALLOC_") for k in environ) or "malloc" in environ.get("GLIBC_TUNABLES", "")


def keep_freed_memory() -> bool:
    """Apply the settings once per process; True when they are in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_chose_allocator():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; each setting is independent of the other
    _applied = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def describe() -> str:
    """One line for benchmark headers: which allocator behaviour the numbers were taken under."""
    if _applied:
        return "host memory: freed blocks kept (msda's glibc mallopt settings)"
    return "host memory: the process's default allocator settings"
