"""Figures for a paper: every figure command writes PNG, PDF or SVG after --out's suffix (read back by
magic bytes, PNG header and SVG's XML), --dpi sets a PNG's pixels, titles and legends name methods
and settings (never run ids), `msda plot curves` draws runs or a report's cells as mean ± std bands."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import query, train_shared_runs
from msda_cli.curves import band, distinct_labels
from msda_cli.store import Store

FAST = ["--set", "data.options.image_size=16", "--set", "batch_size=128", "--epochs", "2"]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    db = train_shared_runs(tmp_path_factory.mktemp("figure-results"), ["--recipe", "digits-vanilla", *FAST],
                           ["--recipe", "digits-mixup", *FAST], ["--recipe", "digits-mixup", *FAST, "--set", "seed=1"])
    runs = {(m, s): i for i, m, s in query(db, "SELECT id, method, seed FROM run")}
    return db, runs


@pytest.fixture
def env(trained, monkeypatch):
    db, runs = trained
    monkeypatch.setenv("MSDA_RESULTS", str(db.parent))
    monkeypatch.setenv("MSDA_DB", str(db))
    return db, runs


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def svg_text(path) -> str:
    """Every text of an SVG (text kept as text: svg.fonttype none), after parsing it as XML."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def check_written(path, fmt: str) -> None:
    data = path.read_bytes()
    if fmt == "png":
        assert png_size(path)[0] > 100
    elif fmt == "pdf":
        assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF")
    else:
        svg_text(path)


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_every_figure_command_writes_the_format_of_its_suffix(msda, env, tmp_path, fmt):
    _, runs = env
    a, b = runs[("vanilla", 0)], runs[("mixup", 0)]
    commands = {
        "preview": ["preview", "--method", "mixup,cutmix"],
        "coeffs": ["analyze", "coeffs", "--method", "mixup,cutmix", "--size", "12", "--draws", "8",
                   "--max-offset", "3", "--format", "csv"],
        "gradprod": ["analyze", "gradprod", a, b, "--n-examples", "4", "--max-offset", "2", "--format", "csv"],
        "landscape": ["analyze", "landscape", a, b, "--points", "3", "--n-examples", "16", "--format", "csv"],
        "curves": ["plot", "curves", a, b],
    }
    for name, command in commands.items():
        out = tmp_path / f"{name}.{fmt}"
        r = msda(*command, "--out", out)
        assert r.code == 0, (name, r.stderr)
        check_written(out, fmt)


def test_dpi_sets_the_pixels_of_a_png(msda, tmp_path):
    sizes = []
    for dpi in (50, 100):
        out = tmp_path / f"p{dpi}.png"
        assert msda("preview", "--method", "mixup", "--out", out, "--dpi", dpi).code == 0
        sizes.append(png_size(out))
    assert sizes[1][0] == pytest.approx(2 * sizes[0][0], abs=4) and sizes[1][1] == pytest.approx(2 * sizes[0][1], abs=4)


@pytest.mark.parametrize("command", [["preview", "--method", "mixup"],
                                     ["analyze", "coeffs", "--method", "mixup", "--size", "8", "--draws", "2",
                                      "--max-offset", "2"],
                                     ["plot", "curves", "deadbeef"]])
@pytest.mark.parametrize("bad", [["--out", "{tmp}/fig.jpg"], ["--out", "{tmp}/fig"],
                                 ["--out", "{tmp}/f.png", "--dpi", "0"]])
def test_an_unknown_suffix_or_dpi_is_one_line_and_nothing_written(msda, tmp_path, command, bad):
    before = sorted(tmp_path.rglob("*"))
    r = msda(*command, *[a.format(tmp=tmp_path) for a in bad])
    assert r.code == 2
    assert len(r.stderr.strip().splitlines()) == 1 and ("--out" in r.stderr or "--dpi" in r.stderr), r.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_titles_and_legends_name_methods_not_run_ids(msda, env, tmp_path):
    _, runs = env
    a, b = runs[("vanilla", 0)], runs[("mixup", 0)]
    for command in (["analyze", "gradprod", a, b, "--n-examples", "4", "--max-offset", "2", "--format", "csv"],
                    ["analyze", "landscape", a, b, "--points", "3", "--n-examples", "16", "--format", "csv"],
                    ["plot", "curves", a, b, "--metric", "train_loss"]):
        out = tmp_path / "f.svg"
        assert msda(*command, "--out", out).code == 0
        text = svg_text(out)
        assert "Vanilla" in text and "Mixup (alpha 1)" in text and "Digits" in text, text
        assert a not in text and b not in text and a[:8] not in text
        assert "mask_mode" not in text and "smoothing" not in text


def test_legend_names_only_what_the_runs_differ_in(env):
    db, runs = env
    store = Store(db)
    two_seeds = [store.get_run(runs[("mixup", 0)]), store.get_run(runs[("mixup", 1)])]
    assert distinct_labels(two_seeds) == ["Mixup (alpha 1), seed 0", "Mixup (alpha 1), seed 1"]
    methods = [store.get_run(runs[("vanilla", 0)]), store.get_run(runs[("mixup", 0)])]
    assert distinct_labels(methods) == ["Vanilla", "Mixup (alpha 1)"]


def test_a_band_is_the_mean_and_sample_std_over_runs_epoch_by_epoch(env):
    db, runs = env
    store = Store(db)
    ids = [runs[("mixup", 0)], runs[("mixup", 1)]]
    values = np.array([[v for (v,) in query(db, "SELECT value FROM metric WHERE run_id=? AND name='test_top1' "
                                                "AND epoch IS NOT NULL ORDER BY epoch", r)] for r in ids])
    curve = band(store, "Mixup", ids, "test_top1")
    assert list(curve.epochs) == [1, 2] and curve.n == 2
    assert np.allclose(curve.mean, values.mean(0)) and np.allclose(curve.std, values.std(0, ddof=1))
    assert (curve.std > 0).any()  # two seeds differ: a band of zero width would not test the spread


def test_plot_curves_of_a_report_cell_draws_its_runs_as_one_band(msda, env, tmp_path):
    out = tmp_path / "cell.svg"
    r = msda("plot", "curves", "--where", "dataset=digits", "--cell", "Mixup/digits-cnn", "--out", out)
    assert r.code == 0, r.stderr
    text = svg_text(out)
    assert "Mixup" in text and "n = 2" in text and "mean ± std" in text and "Vanilla" not in text
    every = tmp_path / "all.svg"
    assert msda("plot", "curves", "--where", "dataset=digits", "--out", every).code == 0
    text = svg_text(every)
    assert "Vanilla, digits-cnn (n = 1)" in text and "Mixup, digits-cnn (n = 2)" in text


@pytest.mark.parametrize("args,message", [
    (["--metric", "top5"], "--metric"),
    ([], "give run ids"),
    (["--cell", "Mixup/CNN"], "--cell needs"),
    (["--where", "dataset=digits", "--cell", "Mixup"], "ROW/COL"),
    (["--where", "dataset=digits", "--cell", "FMix/digits-cnn"], "no finished run"),
    (["{a}", "{a}"], "named twice"),
    (["{a}", "--where", "dataset=digits"], "not both"),
])
def test_plot_curves_bad_input_is_one_line(msda, env, tmp_path, args, message):
    _, runs = env
    out = tmp_path / "never.png"
    args = [a.format(a=runs[("vanilla", 0)]) for a in args]
    if args[:1] == ["--metric"]:
        args = [runs[("vanilla", 0)], *args]
    r = msda("plot", "curves", *args, "--out", out)
    assert r.code == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()


def test_preview_of_all_methods_is_in_the_papers_order(monkeypatch, tmp_path):
    from msda_cli.mixing import MIXERS
    from msda_cli.mixing import preview as P

    names = P._resolve(["all"])
    assert names[0] == "vanilla" and names[:3] == ["vanilla", "mixup", "cutmix"]
    assert names == list(MIXERS.labels) + sorted(set(MIXERS) - set(MIXERS.labels))
    out = P.render_preview(["vanilla", "cutmix", "dcutmix"], tmp_path / "p.svg", lam=0.65)
    text = svg_text(out)
    assert "unmixed: λ = 1" in text and "CutMix" in text and "DCutMix" in text
    assert "mix: λ = " in text  # CutMix names the λ of its clipped box


# ---- LaTeX tables --------------------------------------------------------------------------

def latex_cells(text: str) -> list[str]:
    start, end = text.index(r"\midrule"), text.index(r"\bottomrule")
    return [c.strip().rstrip("\\").strip() for line in text[start:end].splitlines()[1:]
            for c in re.split(r"(?<!\\)&", line)[1:]]  # `\&` is a row label's ampersand


def test_paper_latex_table_has_its_label_a_plain_caption_and_bare_empty_cells(msda, env):
    r = msda("report", "--table", "2", "--paper", "--format", "latex")
    assert r.code == 0, r.stderr
    text = r.stdout
    assert r"\label{tab:msda-2}" in text and r"\resizebox{\ifdim\width>\columnwidth" in text
    caption = text[text.index(r"\caption{"):text.index(r"\label{")]
    assert "`" not in caption and "--runs" not in caption and "msda " not in caption
    cells = latex_cells(text)
    assert cells and all(c == "--" for c in cells), cells  # no run: `–` alone, no published value inside
    rich = msda("report", "--table", "2", "--paper", "--format", "markdown").stdout
    assert "(paper " in rich  # the terminal and Markdown keep the published values beside empty cells


def test_every_table_and_pivot_has_its_own_label_and_overrides_apply(msda, env):
    from msda_cli.report import TABLES

    labels = set()
    for table_id in TABLES:
        text = msda("report", "--table", table_id, "--format", "latex").stdout
        labels.add(text[text.index(r"\label{") + 7:text.index("}", text.index(r"\label{"))])
    assert len(labels) == len(TABLES)
    pivots = [msda("report", "--where", "dataset=digits", "--metric", m, "--format", "latex").stdout
              for m in ("top1", "nll")]
    assert len({p[p.index(r"\label{"):].splitlines()[0] for p in pivots}) == 2
    r = msda("report", "--table", "digits", "--format", "latex", "--caption", "Our digits results.", "--label",
             "tab:digits", "--landscape")
    assert r.code == 0, r.stderr
    assert r"\begin{sidewaystable}" in r.stdout and r"\label{tab:digits}" in r.stdout
    assert r"\caption{Digits check: Methods on two small architectures. Our digits results.}" in r.stdout
    bad = msda("report", "--table", "digits", "--format", "latex", "--label", "tab:a b}")
    assert bad.code == 2 and "--label" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None, reason="needs pdflatex")
def test_latex_tables_compile_in_a_two_column_paper(msda, env, tmp_path):
    import subprocess

    tables = [msda("report", "--table", "2", "--paper", "--format", "latex").stdout,
              msda("report", "--table", "digits", "--format", "latex", "--landscape").stdout,
              msda("report", "--where", "dataset=digits", "--paper", "--format", "latex").stdout]
    doc = tmp_path / "paper.tex"
    doc.write_text("\\documentclass[twocolumn]{article}\n\\usepackage{booktabs,graphicx,rotating}\n"
                   "\\begin{document}\n" + "\n".join(tables) + "\n\\end{document}\n")
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:]
    assert "multiply defined" not in res.stdout and (tmp_path / "paper.pdf").read_bytes()[:5] == b"%PDF-"


def test_legend_tells_runs_of_one_setting_apart_by_their_ids(env):
    db, runs = env
    run = Store(db).get_run(runs[("mixup", 0)])
    assert distinct_labels([run, run]) == [f"Mixup (alpha 1), run {run.id}"] * 2
