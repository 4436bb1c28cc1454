"""Figures: one matplotlib style for every figure command and the output formats.

Figures are drawn on matplotlib's Agg canvas directly (no global backend is changed) under one
rc style; the format follows the file's suffix (PNG at `dpi`, PDF and SVG as vectors with their
text kept as text).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from msda_cli.errors import MsdaError

FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
DEFAULT_DPI = 200
STYLE = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": False, "lines.linewidth": 1.2, "lines.markersize": 3, "image.cmap": "viridis",
    "pdf.fonttype": 42, "svg.fonttype": "none",  # text stays editable in the paper's vector figures
    "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
}


def figure_format(path: Path) -> str:
    """The format of an --out file from its suffix; MsdaError for any other suffix."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise MsdaError(f"--out {path}: the file name must end in {', '.join(FORMATS)}")
    return fmt


def check_dpi(dpi: int | None) -> None:
    if dpi is not None and not 10 <= dpi <= 2400:
        raise MsdaError(f"--dpi must be between 10 and 2400, got {dpi}")


@contextmanager
def figure(out: Path, size: tuple[float, float], dpi: int | None = None):
    """Yield a styled Figure of `size` inches; on leaving, lay it out and write it to `out` (nothing on error)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fmt = figure_format(out)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"Creator": "msda"} if fmt != "png" else {"Software": "msda"}
        fig.savefig(out, format=fmt, dpi=dpi or DEFAULT_DPI, metadata=metadata)


def integer_ticks(ax, axes: str = "xy") -> None:
    """Ticks on whole numbers only (pixel offsets, epochs) on the x and / or y axis."""
    from matplotlib.ticker import MaxNLocator

    for name in axes:
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(integer=True))
