"""The built wheel works on its own: recipes inside it, run from a directory that is not the checkout."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_holds_the_recipes_and_trains_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("msda-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "msda_cli/recipes/digits-mixup.yaml" in names and "msda_cli/recipes/_digits.yaml" in names

    # A fresh venv with only the wheel; its dependencies come from this interpreter's site-packages,
    # named by a plain path line (so this checkout's editable-install finder is not loaded).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / venv_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    # the defaults a new user has: ./results/msda.db in the directory msda runs from
    env = {k: v for k, v in os.environ.items() if k not in ("MSDA_RESULTS", "MSDA_DB")}
    env["OMP_NUM_THREADS"] = "1"
    where = subprocess.run([str(python), "-c", "import msda_cli; print(msda_cli.__file__)"], cwd=work, env=env,
                           check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(venv)), where  # the wheel's package, not the checkout's
    msda = str(venv / "bin" / "msda")
    listed = subprocess.run([msda, "recipes", "list", "--format", "csv"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "digits-mixup,digits" in listed.stdout and "cifar100-hmix" in listed.stdout

    trained = subprocess.run([msda, "train", "--recipe", "digits-mixup", "--epochs", "1", "--cpu"], cwd=work,
                             env=env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert "finished" in trained.stdout
    assert (work / "results" / "msda.db").is_file()
