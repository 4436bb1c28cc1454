"""--out paths of the figure commands: a directory or a missing folder is one line, exit 2, nothing written."""

import pytest


@pytest.mark.parametrize("command", [["preview", "--method", "mixup"],
                                     ["analyze", "coeffs", "--method", "mixup", "--size", "16", "--draws", "2",
                                      "--max-offset", "4"]])
def test_out_directory_is_bad_input(msda, tmp_path, command):
    before = sorted(p.name for p in tmp_path.iterdir())
    res = msda(*command, "--out", tmp_path)
    assert res.code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a directory" in lines[0], res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_out_in_missing_folder_is_bad_input(msda, tmp_path):
    res = msda("preview", "--method", "mixup", "--out", tmp_path / "nope" / "x.png")
    assert res.code == 2 and "does not exist" in res.stderr
    assert not (tmp_path / "nope").exists()
