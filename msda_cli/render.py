"""Print a plain table (a pandas DataFrame) in any of the output formats.

Used by listing commands (`runs list`, `recipes list`, `robust`); `msda report` has its own
renderer for paper tables with mean ± std cells.
"""

from __future__ import annotations

import json

import pandas as pd
from rich.console import Console
from rich.table import Table

from msda_cli.errors import MsdaError

FORMATS = ("rich", "markdown", "latex", "csv", "json")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise MsdaError(f"unknown format {fmt!r}; choose from: {', '.join(FORMATS)}")
    return fmt


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"±": r"$\pm$", "–": "--", "−": "$-$", "Δ": r"$\Delta$", "α": r"$\alpha$", "ε": r"$\epsilon$",
                  "∞": r"$\infty$", "×": r"$\times$", "≈": r"$\approx$", "·": r"$\cdot$", "—": "---"}


def latex_escape(s: str) -> str:
    """Escape LaTeX specials and spell the Unicode signs the tables use (±, –, Δ ...) in LaTeX."""
    out = []
    for ch in s:
        out.append(_LATEX_SPECIAL.get(ch) or _LATEX_UNICODE.get(ch) or ch)
    return "".join(out)


def frame_to_text(df: pd.DataFrame, fmt: str, title: str = "") -> str:
    """markdown, latex (booktabs), csv or json text of `df`."""
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return json.dumps(json.loads(df.to_json(orient="records", date_format="iso")), indent=2)
    cols = [str(c) for c in df.columns]
    rows = [[_cell(v) for v in row] for row in df.itertuples(index=False)]
    if fmt == "markdown":
        lines = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if fmt == "latex":
        lines = [r"\begin{tabular}{" + "l" * len(cols) + "}", r"\toprule", " & ".join(map(latex_escape, cols)) + r" \\", r"\midrule"]
        lines += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)
    raise MsdaError(f"unknown format {fmt!r}")


def print_frame(df: pd.DataFrame, fmt: str = "rich", title: str = "", console: Console | None = None) -> None:
    check_format(fmt)
    console = console or Console()
    if fmt == "rich":
        table = Table(title=title or None, header_style="bold")
        for col in df.columns:
            table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(df[col]) else "left")
        for row in df.itertuples(index=False):
            table.add_row(*[_cell(v) for v in row])
        console.print(table)
    else:
        print(frame_to_text(df, fmt, title))
