"""MixupE Table 4's data sets from their official files (msda_cli/data/uci.py, arff.py, cells.py):
each read from a small file in its exact format, its labels, features and splits checked, and
every malformed file refused in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from msda_cli.data import DATASETS, build_dataset, dataset_options
from msda_cli.data.arff import read_arff
from msda_cli.data.uci import LAYOUTS
from msda_cli.errors import MsdaError
from msda_cli.report.tables.mixupe import TABULAR_SETS
from conftest import query
from test_data import SHARED_DATA, needs_shared
from ucifiles import arff_header, write_uci

# features after one-hot encoding (CMC: age, children, 3 binary attributes, 4 categorical ones x 4 levels)
IN_CHANS = {name: layout.features for name, layout in LAYOUTS.items()} | {"cmc": 2 + 3 + 4 * 4}
CMC_NUMERIC = [0, 9, 10, 11, 20]  # age, children, religion, working, media; the rest: 4 blocks of 4 one-hot columns
CMC_ONE_HOT = [1, 5, 12, 16]
OFFICIAL_SPLIT = ("optdigits", "pendigits")  # two official files: the splits, unless split: pooled


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """{name: (folder, {file: labels written})} for every set, written once."""
    root = tmp_path_factory.mktemp("uci")
    return {name: (root / name, write_uci(name, root / name)) for name in LAYOUTS}


def _codes(name, labels):
    return [LAYOUTS[name].classes.index(label) for label in labels]


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_each_set_reads_its_official_format(folders, name):
    folder, written = folders[name]
    tr, te = build_dataset(name, root=folder), build_dataset(name, root=folder, train=False)
    layout = LAYOUTS[name]
    assert tr.info.name == name and DATASETS.label(name) == layout.label
    assert tr.info.num_classes == te.info.num_classes == len(layout.classes)
    assert tr.info.classes == list(layout.classes) and tr.info.in_chans == te.info.in_chans == IN_CHANS[name]
    assert tr.info.image_size == 0 and not tr.info.is_image
    files = list(written)
    if len(files) == 2:  # the official files are the splits, rows in file order
        assert tr.targets.tolist() == _codes(name, written[files[0]])
        assert te.targets.tolist() == _codes(name, written[files[1]])
    elif layout.test_rows:  # mnist-784: the last 10 000 rows are MNIST's test digits
        labels = _codes(name, written[files[0]])
        assert te.targets.tolist() == labels[-layout.test_rows:] and tr.targets.tolist() == labels[:-layout.test_rows]
    else:  # one file: a stratified split of all its rows
        labels = _codes(name, written[files[0]])
        both = torch.cat([tr.targets, te.targets]).bincount(minlength=len(layout.classes))
        assert both.tolist() == np.bincount(labels, minlength=len(layout.classes)).tolist()
        assert abs(len(te) - 0.2 * len(labels)) <= len(layout.classes)
    x = tr.base.x
    assert x.dtype == torch.float32 and torch.isfinite(x).all() and torch.isfinite(te.base.x).all()
    x = x[:, CMC_NUMERIC] if name == "cmc" else x  # one-hot columns stay 0/1
    varied = x.std(0, unbiased=False) > 0
    assert x.mean(0).abs().max() < 1e-4 and (x.std(0, unbiased=False)[varied] - 1).abs().max() < 1e-3


def test_label_columns_and_codes(folders):
    """The label sits first in letter and balance-scale, last elsewhere; mfeat's is the row's block."""
    folder, written = folders["letter"]
    first = (folder / "letter-recognition.data").read_text().splitlines()[0].split(",")[0]
    assert first == written["letter-recognition.data"][0] == "A"
    assert LAYOUTS["letter"].classes.index("C") == 2 and LAYOUTS["balance-scale"].classes == ("L", "B", "R")
    tr = build_dataset("mfeat-morphological", root=folders["mfeat-morphological"][0])
    te = build_dataset("mfeat-morphological", root=folders["mfeat-morphological"][0], train=False)
    assert (tr.targets.bincount() + te.targets.bincount()).tolist() == [200] * 10
    assert build_dataset("arrhythmia", root=folders["arrhythmia"][0]).info.num_classes == 16  # 13 occur


def test_missing_values_are_filled_with_the_training_mean(folders):
    folder, _ = folders["arrhythmia"]
    lines = (folder / "arrhythmia.data").read_text().splitlines()
    assert sum(line.split(",")[13] == "?" for line in lines) == len(lines[::3])  # the writer's '?' marks
    tr = build_dataset("arrhythmia", root=folder, test_fraction=0.5)
    j = tr.base.x[:, 13]
    assert torch.isfinite(j).all() and abs(float(j.mean())) < 1e-5  # filled with the mean: 0 after centring


def test_cmc_categories_are_one_hot(folders):
    tr = build_dataset("cmc", root=folders["cmc"][0])
    x = tr.base.x
    onehot = torch.stack([x[:, k:k + 4] for k in CMC_ONE_HOT], 1)  # wife's and husband's education, occupation,
    assert set(onehot.unique().tolist()) == {0.0, 1.0} and torch.all(onehot.sum(2) == 1)  # living standard


def test_options_and_data_dir_forms(folders, tmp_path):
    assert dataset_options("optdigits") == {"split": "official", "test_fraction": 0.2, "split_seed": 0}
    assert dataset_options("mnist-784") == {}
    assert dataset_options("letter") == {"test_fraction": 0.2, "split_seed": 0}
    folder, _ = folders["balance-scale"]
    a = build_dataset("balance-scale", root=folder, split_seed=1, train=False).targets
    assert not torch.equal(a, build_dataset("balance-scale", root=folder, train=False).targets) or len(a) < 3
    file = build_dataset("balance-scale", root=folder / "balance-scale.data")  # --data-dir FILE (one-file sets)
    assert torch.equal(file.base.x, build_dataset("balance-scale", root=folder).base.x)
    write_uci("pendigits", tmp_path / "pendigits")  # DIR/<folder>/file
    assert len(build_dataset("pendigits", root=tmp_path)) == 40


@pytest.mark.parametrize("name", OFFICIAL_SPLIT)
def test_split_pooled_splits_both_files_as_one(folders, name):
    folder, written = folders[name]
    tr, te = (build_dataset(name, root=folder, split="pooled", train=t) for t in (True, False))
    labels = _codes(name, [label for file in written for label in written[file]])
    assert len(tr) + len(te) == len(labels) == 80 and abs(len(te) - 16) <= 1
    both = tr.targets.bincount(minlength=10) + te.targets.bincount(minlength=10)
    assert both.tolist() == np.bincount(labels).tolist()
    official = build_dataset(name, root=folder, train=False)
    assert official.targets.tolist() == _codes(name, written[list(written)[1]]) and len(official) == 40
    with pytest.raises(MsdaError, match=f"unknown {name} split 'writers'; choose from: official, pooled"):
        build_dataset(name, root=folder, split="writers")


def _edit_line(path, line_number, edit):
    lines = path.read_text().splitlines()
    lines[line_number] = edit(lines[line_number])
    path.write_text("\n".join(lines) + "\n")


def _fields(line):
    return line.split(",") if "," in line else line.split()


def _join(line, fields):
    return ",".join(fields) if "," in line else " ".join(fields)


def _set_feature(value):
    def edit(line):
        fields = _fields(line)
        k = 1 if fields[0].isalpha() else 0  # letter and balance-scale: the label comes first
        return _join(line, fields[:k] + [value] + fields[k + 1:])
    return edit


BREAKS = {
    "a field too many": (lambda line: _join(line, _fields(line) + ["1"]), "fields; expected"),
    "a field too few": (lambda line: _join(line, _fields(line)[1:]), "fields; expected"),
    "a word": (_set_feature("abc"), "'abc' is not a number"),
    "a NaN": (_set_feature("nan"), "nan is not a finite number"),
    "a huge value": (_set_feature("1e300"), "1e+300 is outside"),
    "an overflowing value": (_set_feature("1e400"), "inf is not a finite number"),
}
TEXT_SETS = [n for n, layout in LAYOUTS.items() if not layout.arff]


@pytest.mark.parametrize("name", TEXT_SETS)
@pytest.mark.parametrize("case", list(BREAKS))
def test_a_malformed_text_file_is_one_line(tmp_path, name, case):
    written = write_uci(name, tmp_path)
    path = tmp_path / list(written)[-1]
    edit, fragment = BREAKS[case]
    if case == "a field too few" and LAYOUTS[name].label_at is None:
        edit = lambda line: " ".join(line.split()[1:])  # noqa: E731  (mfeat: no label field to lose)
    _edit_line(path, 4, edit)
    with pytest.raises(MsdaError, match="line 5") as e:
        build_dataset(name, root=tmp_path, train=False)
    message = str(e.value)
    assert fragment in message and message.startswith(f"{name}: ") and "\n" not in message


@pytest.mark.parametrize("name", ["letter", "optdigits", "balance-scale"])
def test_a_label_outside_the_classes_and_a_value_outside_the_stated_range(tmp_path, name):
    written = write_uci(name, tmp_path)
    path = tmp_path / list(written)[0]
    label_first = LAYOUTS[name].label_at == 0
    _edit_line(path, 2, lambda line: ",".join(["Q7"] + line.split(",")[1:] if label_first
                                              else line.split(",")[:-1] + ["Q7"]))
    with pytest.raises(MsdaError, match=r"line 3: label 'Q7' is not one of the \d+ classes"):
        build_dataset(name, root=tmp_path)
    write_uci(name, tmp_path)
    hi = LAYOUTS[name].bounds[1]
    _edit_line(path, 0, _set_feature(str(int(hi) + 1)))
    with pytest.raises(MsdaError, match=rf"line 1, feature 1: {int(hi) + 1} is outside .*description states"):
        build_dataset(name, root=tmp_path)


def test_the_csv_copy_of_optdigits_has_its_header_line(tmp_path):
    write_uci("optdigits", tmp_path)
    for split in ("tra", "tes"):  # the shared copies' form: the same rows under a header line
        (tmp_path / f"optdigits.{split}").rename(tmp_path / f"optdigits.{split}.csv")
    with pytest.raises(MsdaError, match="optdigits.tra.csv line 1 is data; this copy of the set has a header line"):
        build_dataset("optdigits", root=tmp_path)
    for split in ("tra", "tes"):
        path = tmp_path / f"optdigits.{split}.csv"
        path.write_text(",".join([f"Block {i}" for i in range(1, 65)] + ["Class"]) + "\n" + path.read_text())
    assert len(build_dataset("optdigits", root=tmp_path)) == 40


def test_mfeat_row_count_and_a_missing_marker_only_where_the_format_has_one(tmp_path):
    write_uci("mfeat-zernike", tmp_path)
    path = tmp_path / "mfeat-zer"
    path.write_text("\n".join(path.read_text().splitlines()[:1999]) + "\n")
    with pytest.raises(MsdaError, match="has 1999 rows; the official file has 2000"):
        build_dataset("mfeat-zernike", root=tmp_path)
    write_uci("pendigits", tmp_path)  # '?' is a value only where the format says so
    _edit_line(tmp_path / "pendigits.tra", 0, _set_feature("?"))
    with pytest.raises(MsdaError, match="line 1, feature 1: '\\?' is not a number"):
        build_dataset("pendigits", root=tmp_path)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_a_missing_file_says_where_and_from_where(tmp_path, name):
    with pytest.raises(MsdaError, match=rf"^{name}: data not found; expected .*{LAYOUTS[name].files[0][0][0]}.*"
                                        rf"Get the official file\(s\) from {LAYOUTS[name].url}"):
        build_dataset(name, root=tmp_path)


# ----- ARFF -----------------------------------------------------------------------------


def test_dense_arff_equals_scipy_reader(tmp_path):
    """scipy.io.arff as the oracle on what both read: numeric and quoted nominal values, '?', comments."""
    path = tmp_path / "t.arff"
    path.write_text("% a comment\n@relation 't'\n@attribute 'a b' numeric\n@attribute c REAL\n"
                    "@attribute kind {'x y', z, 'w'}\n@data\n1.5,2,'x y'\n% inside the data\n"
                    "?,-3e2,z\n\n4,5,?\n7,8,'w'\n")
    from scipy.io import arff

    ours = read_arff("t", path)
    data, meta = arff.loadarff(path)
    assert list(ours.frame.columns) == list(meta.names()) == ["a b", "c", "kind"]
    for col in ("a b", "c"):
        np.testing.assert_array_equal(ours.frame[col].to_numpy(), data[col])
    theirs = [None if v == b"?" else v.decode() for v in data["kind"]]
    assert [None if pd.isna(v) else v for v in ours.frame["kind"]] == theirs
    assert ours.nominal["kind"] == ["x y", "z", "w"]
    assert ours.lines == [7, 9, 11, 12] and ours.relation == "t"


def test_sparse_arff_equals_its_dense_form(tmp_path):
    header = arff_header("s", 4)
    dense, sparse = tmp_path / "d.arff", tmp_path / "s.arff"
    dense.write_text("\n".join(header + ["0,0,3.5,0,'2'", "1,0,0,0,'0'", "0,0,0,0,'9'", "0,?,0,2,'1'"]) + "\n")
    sparse.write_text("\n".join(header + ["{2 3.5,4 '2'}", "{0 1}", "{4 9}", "{1 ?,3 2,4 '1'}"]) + "\n")
    a, b = read_arff("d", dense).frame, read_arff("s", sparse).frame
    assert a.equals(b) and list(a["class"]) == ["2", "0", "9", "1"]  # an omitted nominal is its first value


@pytest.mark.parametrize("data_line,fragment", [
    ("1,2,3,4,'0',5", "line 11 has 6 values; expected 5"),
    ("1,2,3,'0'", "line 11 has 4 values; expected 5"),
    ("1,x,3,4,'0'", "line 11, attribute 'V2': 'x' is not a number"),
    ("1,nan,3,4,'0'", "attribute 'V2': nan is not a finite number"),
    ("1,2,1e300,4,'0'", "attribute 'V3': 1e+300 is outside"),
    ("1,2,3,4,'11'", "attribute 'class': '11' is not one of its values"),
    ("{5 1}", "line 11: '5 1' is not 'index value' with a new index below 5"),
    ("{0 1,0 2}", "is not 'index value' with a new index"),
])
def test_a_malformed_arff_is_one_line(tmp_path, data_line, fragment):
    path = tmp_path / "bad.arff"
    path.write_text("\n".join(arff_header("bad", 4) + [data_line]) + "\n")
    with pytest.raises(MsdaError, match="^bad: ") as e:
        read_arff("bad", path)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text,fragment", [
    ("@relation r\n@attribute s string\n@data\n'a'\n", "has type 'string'; only numeric and nominal"),
    ("@relation r\n@attribute a numeric\n", "is not an ARFF file (no @data line)"),
    ("@relation r\n@attribute a numeric\n@data\n", "has no data lines"),
    ("@relation r\n@data\n1\n", "declares no @attribute before @data"),
    ("hello\n", "expected @relation, @attribute or @data"),
])
def test_a_malformed_arff_header_is_one_line(tmp_path, text, fragment):
    path = tmp_path / "h.arff"
    path.write_text(text)
    with pytest.raises(MsdaError, match="^h: ") as e:
        read_arff("h", path)
    assert fragment in str(e.value)


def test_volkert_checks_its_attributes(tmp_path):
    path = tmp_path / "volkert.arff"
    path.write_text("\n".join(arff_header("volkert", 179) + [",".join(["0"] * 179 + ["'3'"])] * 20) + "\n")
    with pytest.raises(MsdaError, match="has 179 attributes beside 'class'; expected 180"):
        build_dataset("volkert", root=tmp_path)
    path.write_text("\n".join(arff_header("volkert", 180)[:-3] + ["@DATA"] + [",".join(["0"] * 180)] * 20) + "\n")
    with pytest.raises(MsdaError, match="has no attribute 'class'"):
        build_dataset("volkert", root=tmp_path)


def test_mnist_784_pixels_stay_in_their_range(tmp_path):
    path = tmp_path / "mnist_784.arff"
    path.write_text("\n".join(arff_header("mnist_784", 784, prefix="pixel") + ["{3 256,784 '1'}"]) + "\n")
    with pytest.raises(MsdaError, match=r"line \d+, feature 4: 256 is outside 0..255"):
        build_dataset("mnist-784", root=tmp_path)


# ----- the shared copy of the real Optdigits ----------------------------------------------


@needs_shared
def test_optdigits_from_the_shared_copy_is_the_official_split():
    tr = build_dataset("optdigits", root=SHARED_DATA)
    te = build_dataset("optdigits", root=SHARED_DATA / "optdigits", train=False)
    assert (len(tr), len(te)) == (3823, 1797) and tr.info.in_chans == 64 and tr.info.num_classes == 10
    tes = pd.read_csv(SHARED_DATA / "optdigits" / "optdigits.tes.csv")
    assert te.targets.tolist() == tes["Class"].tolist()
    assert tr.targets.bincount().tolist() == [376, 389, 380, 389, 387, 376, 377, 387, 380, 382]  # optdigits.names
    pooled = [build_dataset("optdigits", root=SHARED_DATA, split="pooled", train=t) for t in (True, False)]
    assert [len(d) for d in pooled] == [4496, 1124]  # the recipes' split: 80/20 of all 5 620 digits


# ----- through the command line -------------------------------------------------------------


def test_a_malformed_file_stops_msda_train_in_one_line_with_nothing_written(msda, tmp_path, db_path,
                                                                          isolated_results):
    from test_bad_input import _nothing_written, _one_line

    write_uci("cmc", tmp_path / "data")
    _edit_line(tmp_path / "data" / "cmc.data", 6, _set_feature("1e300"))
    r = msda("train", "--recipe", "cmc", "--data-dir", tmp_path / "data", "--epochs", "1")
    _one_line(r, "cmc: ", "cmc.data line 7, feature 1: 1e+300 is outside")
    _nothing_written(db_path, isolated_results)
    (tmp_path / "empty").mkdir()
    r = msda("train", "--recipe", "volkert", "--data-dir", tmp_path / "empty", "--epochs", "1")
    _one_line(r, "volkert: data not found; expected volkert.arff in ", "https://www.openml.org/d/41166")
    _nothing_written(db_path, isolated_results)


def test_a_trained_set_fills_its_row_of_mixupe_4(msda, tmp_path, db_path, isolated_results):
    """The recipe as Table 4's plan makes it (25 epochs, --method for the ERM column) fills that cell."""
    import csv
    import io

    write_uci("balance-scale", tmp_path / "data")
    r = msda("train", "--recipe", "balance-scale", "--method", "vanilla", "--data-dir", tmp_path / "data")
    assert r.code == 0, r.stderr
    r = msda("report", "--table", "mixupe-4", "--paper", "--format", "csv")
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["Dataset"] for row in rows[::3]] == [label for label, _ in TABULAR_SETS]  # every Table 4 row
    filled = [(row["Dataset"], row["column"]) for row in rows if row["n"] != "0"]
    assert filled == [("Balance-scale", "ERM")] and all(row["paper"] for row in rows)
    cell = rows[[row["Dataset"] for row in rows].index("Balance-scale")]
    ((run_id, top1),) = query(db_path, "SELECT run_id, value FROM metric WHERE kind='eval' AND name='top1'")
    assert cell["run_ids"] == run_id and float(cell["mean"]) == pytest.approx(100 - top1)  # test error


def test_every_mixupe_4_row_trains_its_named_data_set():
    """Each row's plan resolves to the data set the row names (optdigits was `tabular`, so its row filtered none)."""
    from msda_cli.report import TABLES
    from msda_cli.report.build import table_plans

    cells = table_plans(TABLES["mixupe-4"])
    assert len(cells) == 3 * len(TABULAR_SETS) and all(res is not None for _, res in cells)
    for cs, res in cells:
        assert DATASETS.label(res.dataset).lower() == cs.row.label.lower(), (cs.row.label, res.dataset)
        method = {"ERM": "vanilla", "Mixup": "mixup", "MixupE": "mixupe"}[cs.col.label]
        assert res.arch == "mlp" and res.method == method
