"""Where a run came from: the msda code, the command line, the libraries and the device of each start.

`collect(device)` describes this process once, when a run starts or resumes (two short `git`
calls at most, nothing per epoch). A run stores the list of its starts as JSON (`run.provenance`):
the first is the start that created it (`"kind": "start"`), each `msda train --resume` appends
one (`"kind": "resume"`), so a run resumed on another machine keeps its first provenance.

git: `{"commit", "dirty"}` when the msda package is a git checkout's own `msda_cli/` (an editable
install); otherwise `{"commit": null, "why": ...}` (git is not on PATH, not a checkout, git
failed). Finding out never fails a run. `dirty` counts changes to tracked files only.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from msda_cli import __version__

# A database URL's password (`--db postgresql+psycopg://user:PASSWORD@host/db`) is never kept.
_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^/\s]*@")

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding msda_cli/ (a checkout's top?)
GIT_TIMEOUT_S = 5
KINDS = ("start", "resume")


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(PACKAGE_ROOT), *args], capture_output=True, text=True,
                          timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0])
    return done.stdout


def git_state() -> dict:
    """{"commit": sha, "dirty": bool} of the checkout msda runs from, or {"commit": None, "why": text}."""
    if shutil.which("git") is None:
        return {"commit": None, "why": "git is not on PATH"}
    try:
        top, commit = _git("rev-parse", "--show-toplevel", "HEAD").split()
        if Path(top).resolve() != PACKAGE_ROOT:  # e.g. site-packages inside some other repository
            return {"commit": None, "why": f"msda is not run from a git checkout ({PACKAGE_ROOT})"}
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as e:
        return {"commit": None, "why": f"not a git checkout or git failed: {e}"}
    return {"commit": commit, "dirty": dirty}


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except (ImportError, AttributeError):  # absent or without a version: recorded as null, never a failure
        return None


def device_name(device) -> str:
    """The GPU's name for a CUDA device, else the device type ("cpu")."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def collect(device="cpu", kind: str = "start", processes: int = 1, argv: list[str] | None = None) -> dict:
    """This process's provenance as one start of a run (`kind` "start" or "resume")."""
    import torch

    if kind not in KINDS:
        raise ValueError(f"provenance kind must be one of {KINDS}, got {kind!r}")
    return {
        "kind": kind,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "msda_version": __version__,
        "git": git_state(),
        "command": [_PASSWORD.sub(r"\1***@", arg) for arg in (sys.argv if argv is None else argv)],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "accelerate": _version("accelerate"),
        "cuda": torch.version.cuda,
        "device": device_name(device),
        "processes": int(processes),
    }


def starts(text: str | None) -> list[dict]:
    """A run's stored starts, oldest first ([] for a run stored before provenance was kept)."""
    if not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else [value]


def appended(text: str | None, start: dict) -> str:
    """The stored provenance JSON with one more start."""
    return json.dumps(starts(text) + [start])


def describe(start: dict) -> str:
    """One line: `start 2026-12-01T12:00:00+00:00 on host: msda 0.9 (git abc1234, dirty), torch ..., cpu`."""
    git = start.get("git") or {}
    code = (f"git {git['commit'][:12]}{', dirty' if git.get('dirty') else ''}" if git.get("commit")
            else git.get("why", "git unknown"))
    libs = ", ".join(f"{k} {start[k]}" for k in ("torch", "torchvision", "accelerate") if start.get(k))
    cuda = f"CUDA {start['cuda']}" if start.get("cuda") else "no CUDA"
    procs = f" x{start['processes']}" if start.get("processes", 1) > 1 else ""
    return (f"{start.get('kind', 'start')} {start.get('at', '?')} on {start.get('host', '?')}: "
            f"msda {start.get('msda_version', '?')} ({code}); {libs}; {cuda}; {start.get('device', '?')}{procs}")
