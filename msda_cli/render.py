"""Tables of text in every output format: rich (terminal), Markdown, LaTeX (booktabs), CSV, JSON.

The CLI's one renderer: `print_frame` prints a plain DataFrame (listing commands, `eval`,
`robust`, `subsample`, `analyze`), and `msda report` turns its Report into a `TextTable` and
renders it here. Markdown is pandas' `DataFrame.to_markdown` (tabulate), LaTeX is
`Styler.to_latex` with booktabs rules; this module adds the escaping, the bold of the best
cells, and the title and caption around the table.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pandas as pd
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from msda_cli.checks import check_choice

from msda_cli.choices import FORMATS  # one source with --help
MISSING = "–"
_ALIGN = {"l": "left", "r": "right"}


def check_format(fmt: str) -> str:
    return check_choice("format", fmt, FORMATS)


@dataclass(frozen=True)
class TextCell:
    text: str
    bold: bool = False
    aside: str = ""  # after the text, not bold (dim in the terminal): published values, run ids


@dataclass
class TextTable:
    headers: list[str]
    rows: list[list[TextCell]]
    align: str  # "l" or "r" per column
    title: str = ""
    caption: str = ""
    label: str | None = None  # LaTeX: put the tabular in a table float with this label, captioned
    label_columns: int = 0  # leading columns of row labels (never wrapped in the terminal)
    fit: bool = False  # LaTeX: scale the tabular to the column width (graphicx's \resizebox)
    landscape: bool = False  # LaTeX: a sidewaystable (the rotating package) for a table wider than a column


# ----- escaping -------------------------------------------------------------------------------
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"±": r"$\pm$", "–": "--", "−": "$-$", "Δ": r"$\Delta$", "α": r"$\alpha$", "ε": r"$\epsilon$",
                  "∞": r"$\infty$", "×": r"$\times$", "≈": r"$\approx$", "·": r"$\cdot$", "—": "---"}


def latex_escape(s: str) -> str:
    """Escape LaTeX specials and spell the Unicode signs the tables use (±, –, Δ ...) in LaTeX."""
    return "".join(_LATEX_SPECIAL.get(ch) or _LATEX_UNICODE.get(ch) or ch for ch in s)


def markdown_escape(s: str) -> str:
    return s.replace("|", "\\|")


# ----- writers --------------------------------------------------------------------------------
def _markup(cell: TextCell, escape, bold: str) -> str:
    text = escape(cell.text)
    if cell.bold:
        text = bold.format(text)
    return f"{text} {escape(cell.aside)}".strip()


def to_markdown(table: TextTable) -> str:
    """Bold title, a pipe table, the caption."""
    body = pd.DataFrame([[_markup(c, markdown_escape, "**{}**") for c in row] for row in table.rows],
                        columns=range(len(table.headers)))
    text = body.to_markdown(index=False, headers=[markdown_escape(h) for h in table.headers],
                            colalign=[_ALIGN[a] for a in table.align], disable_numparse=True)
    parts = ([f"**{markdown_escape(table.title)}**"] if table.title else []) + [text]
    if table.caption:
        parts.append(markdown_escape(table.caption))
    return "\n\n".join(parts) + "\n"


def to_latex(table: TextTable) -> str:
    """A booktabs tabular; with a label, inside a table float (or sidewaystable) captioned with the title and
    caption, the tabular scaled to the column width when `fit`."""
    body = pd.DataFrame([[_markup(c, latex_escape, r"\textbf{{{}}}") for c in row] for row in table.rows],
                        columns=range(len(table.headers)))
    styler = body.style.hide(axis="index").relabel_index([latex_escape(h) for h in table.headers], axis=1)
    tabular = styler.to_latex(column_format=table.align, hrules=True)
    if not table.label:
        return tabular
    if table.fit:
        width = r"\textheight" if table.landscape else r"\columnwidth"
        tabular = f"\\resizebox{{\\ifdim\\width>{width}{width}\\else\\width\\fi}}{{!}}{{%\n{tabular}}}\n"
    env = "sidewaystable" if table.landscape else "table"
    title = latex_escape(f"{table.title}. {table.caption}".strip())
    return (f"\\begin{{{env}}}[t]\n\\centering\n\\caption{{{title}}}\n\\label{{{table.label}}}\n{tabular}"
            f"\\end{{{env}}}\n")


def to_rich(table: TextTable) -> Group:
    """The title, the table (bold best cells) and the caption, title and caption at full console width
    (a rich Table's own would wrap to the table's width)."""
    grid = Table(header_style="bold")
    for k, (header, align) in enumerate(zip(table.headers, table.align)):
        grid.add_column(header, justify=_ALIGN[align], no_wrap=k < table.label_columns)
    for row in table.rows:
        texts = []
        for cell in row:
            t = Text(cell.text, style="bold" if cell.bold else "")
            if cell.aside:
                t.append(" " + cell.aside, style="dim")
            texts.append(t)
        grid.add_row(*texts)
    parts = ([Text(table.title, style="bold italic")] if table.title else []) + [grid]
    if table.caption:
        parts.append(Text(table.caption, style="dim"))
    return Group(*parts)


def rich_to_text(renderable, width: int = 160) -> str:
    """A rich renderable as plain text (no colour), e.g. for tests or logs."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()


# ----- plain frames ---------------------------------------------------------------------------
SIGNIFICANT = 7  # what a float32 holds (a metric computed in float32 reads 86.66667, not 86.66666746139526)


def significant(v: float) -> float:
    """`v` to SIGNIFICANT digits: CSV and JSON carry no float32 noise."""
    return float(f"{v:.{SIGNIFICANT}g}")


def plain_text(v) -> str:
    """A frame value as shown: `–` for missing, floats with two decimals, or three significant digits below 1
    (a learning rate of 0.001 is not 0.00)."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return MISSING
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 1 or v == 0 else f"{v:.3g}"
    return str(v)


def _significant_floats(df: pd.DataFrame) -> pd.DataFrame:
    floats = df.select_dtypes("float").columns
    return df.assign(**{c: df[c].map(lambda v: v if pd.isna(v) else significant(v)) for c in floats}) if len(floats) \
        else df


def frame_table(df: pd.DataFrame, title: str = "") -> TextTable:
    """A DataFrame as a TextTable: numeric columns right-aligned."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(dtype) else "l" for dtype in df.dtypes)
    rows = [[TextCell(plain_text(v)) for v in row] for row in df.itertuples(index=False)]
    return TextTable(headers=[str(c) for c in df.columns], rows=rows, align=align, title=title)


def print_frame(df: pd.DataFrame, fmt: str = "rich", title: str = "", console: Console | None = None) -> None:
    check_format(fmt)
    if fmt == "csv":
        print(_significant_floats(df).to_csv(index=False))
    elif fmt == "json":
        print(json.dumps(json.loads(_significant_floats(df).to_json(orient="records", date_format="iso",
                                                                    double_precision=15)), indent=2))
    elif fmt == "rich":
        (console or Console()).print(to_rich(frame_table(df, title)))
    else:
        writer = to_markdown if fmt == "markdown" else to_latex
        print(writer(frame_table(df, title)), end="")
