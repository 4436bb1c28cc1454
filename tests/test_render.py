"""The one renderer: escaping, bold cells, floats and captions in Markdown and LaTeX; plain frames in every format."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from rich.console import Console

from msda_cli.errors import MsdaError
from msda_cli.render import (
    TextCell, TextTable, check_format, latex_escape, print_frame, rich_to_text, to_latex, to_markdown, to_rich,
)


def _table(**kw) -> TextTable:
    rows = [[TextCell("HMix & co"), TextCell("83.00 ± 9.90", bold=True, aside="(paper 80%; +3.00)")],
            [TextCell("a|b"), TextCell("–")]]
    return TextTable(headers=["Method", "Top_1 | %"], rows=rows, align="lr", **kw)


def test_latex_escape_specials_and_unicode_signs():
    assert latex_escape(r"a_b & 5% $x #1 {y} ~ ^ \ ") == \
        r"a\_b \& 5\% \$x \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} "
    assert latex_escape("±–−Δαε∞×≈·—") == \
        r"$\pm$--$-$$\Delta$$\alpha$$\epsilon$$\infty$$\times$$\approx$$\cdot$---"


def test_latex_float_caption_bold_value_and_escaped_cells():
    lines = to_latex(_table(title="Table 2: CIFAR_100", caption="n = 2–3 seeds.", label="tab:msda-2")).splitlines()
    assert lines[:4] == [r"\begin{table}[t]", r"\centering", r"\caption{Table 2: CIFAR\_100. n = 2--3 seeds.}",
                         r"\label{tab:msda-2}"]
    assert lines[4:7] == [r"\begin{tabular}{lr}", r"\toprule", r"Method & Top\_1 | \% \\"]
    assert r"HMix \& co & \textbf{83.00 $\pm$ 9.90} (paper 80\%; +3.00) \\" in lines  # only our value bold
    assert r"a|b & -- \\" in lines
    assert lines[-3:] == [r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def test_latex_without_label_is_a_bare_tabular():
    text = to_latex(_table(title="ignored"))
    assert text.startswith(r"\begin{tabular}{lr}") and "caption" not in text and "ignored" not in text


def test_markdown_title_pipe_table_and_caption():
    lines = to_markdown(_table(title="A | B", caption="Bold: best.")).splitlines()
    assert lines[0] == r"**A \| B**" and lines[1] == "" and lines[-1] == "Bold: best." and lines[-2] == ""
    header, rule, first, second = lines[2:6]
    assert [c.strip() for c in header.split(" | ")] == ["| Method", r"Top_1 \| % |"]
    assert rule.startswith("|:-") and rule.endswith("-:|") and set(rule) == set("|:-")
    assert first.replace(" ", "") == r"|HMix&co|**83.00±9.90**(paper80%;+3.00)|"
    assert second.replace(" ", "") == r"|a\|b|–|"


def test_rich_bold_and_dim_aside():
    title, grid, caption = to_rich(_table(title="T", caption="C")).renderables
    assert (title.plain, caption.plain, grid.row_count) == ("T", "C", 2)
    cell = list(grid.columns[1].cells)[0]
    assert cell.plain == "83.00 ± 9.90 (paper 80%; +3.00)" and str(cell.style) == "bold"
    assert [str(s.style) for s in cell.spans] == ["dim"]
    assert "83.00 ± 9.90" in rich_to_text(to_rich(_table()))


FRAME = pd.DataFrame({"run": ["a_1", "b|2"], "epochs": [3, 10], "top1": [71.234, None]})


@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv", "json", "rich"])
def test_print_frame_every_format(fmt, capsys):
    console = Console(file=io.StringIO(), width=120, color_system=None)
    print_frame(FRAME, fmt, title="Runs", console=console)
    out = capsys.readouterr().out + console.file.getvalue()
    if fmt == "csv":
        assert out == FRAME.to_csv(index=False) + "\n"
    elif fmt == "json":
        assert json.loads(out) == [{"run": "a_1", "epochs": 3, "top1": 71.234},
                                   {"run": "b|2", "epochs": 10, "top1": None}]
    elif fmt == "markdown":
        lines = out.splitlines()
        assert lines[0] == "**Runs**" and lines[3].startswith("|:-") and lines[3].endswith("-:|")
        assert lines[4].replace(" ", "") == "|a_1|3|71.23|" and lines[5].replace(" ", "") == r"|b\|2|10|–|"
    elif fmt == "latex":
        lines = out.splitlines()
        assert lines[0] == r"\begin{tabular}{lrr}" and r"a\_1 & 3 & 71.23 \\" in lines and r"b|2 & 10 & -- \\" in lines
    else:
        assert "Runs" in out and "71.23" in out and "–" in out


def test_unknown_format_is_an_msda_error():
    assert check_format("latex") == "latex"
    with pytest.raises(MsdaError, match="unknown format 'xml'"):
        print_frame(FRAME, "xml")
