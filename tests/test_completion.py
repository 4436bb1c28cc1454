"""Shell completion: `msda --install-completion` is offered; recipe names and stored run ids complete."""

from __future__ import annotations

import os
import subprocess
import sys

from msda_cli.store import Store


def _complete(words: str, env_extra: dict | None = None, cwd=None) -> list[str]:
    """What bash would offer after `words` (the last word is the one being completed)."""
    env = {**os.environ, "_MSDA_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)), **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-c", "from msda_cli.cli import main; main()"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_install_completion_is_offered(msda):
    r = msda("--help")
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout


def test_recipe_names_complete():
    offered = _complete("msda train --recipe digits-m")
    assert "digits-mixup" in offered and "digits-mixupe" in offered
    assert all(name.startswith("digits-m") for name in offered) and "digits-vanilla" not in offered
    assert "cifar100-hmix" in _complete("msda recipes show cifar100-h")


def test_run_ids_complete_from_the_store(db_path, tmp_path):
    store = Store(db_path)
    ids = [store.create_run(method="mixup", arch="digits-cnn", config="{}").id for _ in range(3)]
    for run_id in ids:
        store.update_run(run_id, status="finished")
    assert sorted(_complete("msda runs show ")) == sorted(ids)
    assert _complete(f"msda runs rm {ids[0][:7]}") == [ids[0]]
    assert ids[1] in _complete(f"msda train --resume {ids[1][:4]}")


def test_completing_run_ids_without_a_store_offers_nothing_and_creates_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _complete("msda runs show ", {"MSDA_DB": str(empty / "msda.db")}) == []
    assert list(empty.iterdir()) == []
