"""Figures and what they draw from: msda preview, analyze coeffs/gradprod/landscape, plot curves, export."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from msda_cli.checks import check_float
from msda_cli.choices import CHANNELS, CURVE_METRICS, OUTPUTS, PIXELS, REDUCES, TARGETS, spoken
from msda_cli.completion import choices as offer
from msda_cli.errors import MsdaError
from msda_cli.cli.common import (
    DataDirOption, DbOption, DpiOption, FormatOption, _check_out, _list, _store, analyze_app, app, err, out, plot_app,
)


# ----- preview ------------------------------------------------------------------------
@app.command()
def preview(
    method: Annotated[str, typer.Option(
        "--method", "--methods", "-m", help="Method(s), comma-separated, or `all` (one row each).")],
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="Figure to write: .png, .pdf or .svg.")] = Path("preview.png"),
    lam: Annotated[Optional[float], typer.Option(help="Mixing weight λ of the first image; omit to draw it.")] = 0.65,
    images: Annotated[Optional[List[Path]], typer.Option(
        "--images", help="Your source images (two or more), e.g. --images a.png b.png.")] = None,
    more_images: Annotated[Optional[List[Path]], typer.Argument(hidden=True)] = None,
    set_: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Method hyperparameter, e.g. --set r=0.75 (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random draws (box positions, partners).")] = 0,
    dpi: DpiOption = None,
):
    """Draw the papers' mixed-sample figure: two sources, the mixed image and its mask.

    \b
    Examples:
      msda preview --method hmix --lam 0.65 --out hmix.png
      msda preview --methods all --out all.pdf
      msda preview --method gmix --images cat.png dog.png --out gmix.png
    """
    from msda_cli.config import parse_assignments
    from msda_cli.mixing.preview import render_preview

    if more_images and not images:
        raise MsdaError(f"unexpected argument {more_images[0]}; images go after --images")
    paths = list(images or []) + list(more_images or [])
    for p in paths:
        if not p.is_file():
            raise MsdaError(f"image {p} does not exist")
    if paths and len(paths) < 2:
        raise MsdaError("--images needs at least two images")
    if lam is not None:
        check_float("--lam", lam, min=0, max=1)
    _check_out(out_path, dpi)
    hparams = parse_assignments(set_)
    methods = _list(method)
    written = render_preview(methods, out_path, lam=lam, images=paths or None, seed=seed, hparams=hparams or None,
                             dpi=dpi)
    out.print(f"wrote {written}")


# ----- analyze ------------------------------------------------------------------------
def _analysis_frame(rows: list[dict], fmt: str):
    """Rows as a frame; text formats show 4 significant digits (the values are small fractions)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if fmt in ("rich", "markdown", "latex"):
        for col in frame.columns:
            if pd.api.types.is_float_dtype(frame[col]) or frame[col].dtype == object:
                frame[col] = [("–" if v is None or v != v else f"{v:.4g}") if isinstance(v, float) or v is None
                              else v for v in frame[col]]
    return frame


@analyze_app.command("coeffs")
def analyze_coeffs(
    method: Annotated[str, typer.Option("--method", "-m", help="Method(s), comma-separated: one map each.")],
    lam: Annotated[float, typer.Option(help="The fixed mixing weight λ of the first image, in [0, 1].")] = 0.5,
    set_: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Method hyperparameter, e.g. --set r=0.75 (repeatable).")] = None,
    size: Annotated[int, typer.Option(help="Image side in pixels (square images).")] = 32,
    draws: Annotated[int, typer.Option(help="Monte-Carlo masks per method.")] = 4000,
    max_offset: Annotated[int, typer.Option("--max-offset", help="Largest |dx|, |dy| of the map.")] = 8,
    margin: Annotated[int, typer.Option(
        help="Only pixels this far from the border (the GMix closed form holds inside).")] = 0,
    pixels: Annotated[str, typer.Option(
        help=f"Pixel pairs: {spoken(PIXELS)} (the same pixels, max-offset or more inside, at every offset; or "
             "every pair in the image).", autocompletion=offer(PIXELS))] = "interior",
    seed: Annotated[int, typer.Option(help="Seed of the mask draws.")] = 0,
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also draw the maps (one panel per method, one colour scale): .png, .pdf or .svg.")] = None,
    dpi: DpiOption = None,
    fmt: FormatOption = "rich",
):
    """Regularization coefficients a_jk = E[(1 − M_j)(1 − M_k)] at fixed λ, by pixel offset.

    The map A(dx, dy) = mean over pixels i of a_{i, i+(dx,dy)} (Figure 4), from the method's own sampler.

    Printed by offset distance beside the exact value where known: Mixup (1 − λ)², CutMix and HMix
    (all box positions), Stochastic Mixup & CutMix, GMix (λ >= 0.5, away from the border). No database.

    \b
    Examples:
      msda analyze coeffs --method mixup,cutmix,hmix,gmix --lam 0.5 --size 64 --out coeffs.png
      msda analyze coeffs --method hmix --set r=0.75 --format csv
      msda analyze coeffs --method gmix --lam 0.7 --size 64 --margin 20
    """
    from msda_cli.analysis.coeffs import check_geometry, check_lam, coefficient_mixer, estimate_map, plot_maps
    from msda_cli.config import parse_assignments
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    check_lam(lam)
    if pixels not in PIXELS:
        raise MsdaError(f"--pixels must be {spoken(PIXELS)}, got {pixels!r}")
    interior = pixels == "interior"
    check_geometry(size, max_offset, margin, interior)
    _check_out(out_path, dpi)
    hparams = parse_assignments(set_)
    methods = _list(method)
    if not methods:
        raise MsdaError("--method needs at least one method name")
    per_method = {name: _method_settings(name, hparams, several=len(methods) > 1) for name in methods}
    unused = sorted(set(hparams) - {k for hp in per_method.values() for k in hp})
    if unused:
        raise MsdaError(f"none of the methods {', '.join(methods)} has hyperparameter {', '.join(map(repr, unused))}")
    for name in methods:  # every name and setting checked before any work
        coefficient_mixer(name, per_method[name])
    maps = [estimate_map(name, lam, size=size, draws=draws, max_offset=max_offset, seed=seed, margin=margin,
                         hparams=per_method[name], interior=interior) for name in methods]
    for cm in maps:
        for note in cm.notes:
            err.print(f"note: {note}", markup=False, highlight=False)
    rows = [row for cm in maps for row in cm.rows()]
    print_frame(_analysis_frame(rows, fmt), fmt, console=out,
                title=f"a_jk by offset distance (λ = {lam:g}, {size}×{size} px, {draws} draws)")
    if out_path is not None:
        plot_maps(maps, out_path, dpi)
        err.print(f"wrote {out_path}", markup=False, highlight=False)


def _method_settings(method: str, hparams: dict, several: bool) -> dict:
    """The --set values for `method`: all of them for one method; with several, the keys it has."""
    from msda_cli.mixing import MIXERS, method_hparams

    if not several:
        return dict(hparams)
    MIXERS.lookup(method)
    valid = method_hparams(method)
    return {k: v for k, v in hparams.items() if k in valid}


@analyze_app.command("gradprod")
def analyze_gradprod(
    run_ids: Annotated[List[str], typer.Argument(
        help="Trained image run(s) (id or unique prefix); several are overlaid in one figure.")],
    n_examples: Annotated[int, typer.Option("--n-examples", help="Test images (a fixed seeded subset).")] = 256,
    max_offset: Annotated[int, typer.Option("--max-offset", help="Largest |dx|, |dy| of the offset p.")] = 8,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per backward pass.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the image subset.")] = 0,
    output: Annotated[str, typer.Option(
        help=f"f: {spoken(OUTPUTS)} (prob: the true-class softmax, the paper's example).",
        autocompletion=offer(OUTPUTS))] = "prob",
    channels: Annotated[str, typer.Option(
        help=f"Per-pixel gradient over channels: {spoken(CHANNELS)} (norm: Figure 5).",
        autocompletion=offer(CHANNELS))] = "norm",
    reduce: Annotated[str, typer.Option(
        help=f"Over images: {spoken(REDUCES)} (the mean of the per-image maxima, or the max: the slides).",
        autocompletion=offer(REDUCES))] = "mean",
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also plot each run's map and their curves: .png, .pdf or .svg.")] = None,
    dpi: DpiOption = None,
    data_dir: DataDirOption = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Partial gradient product max_v |∂_v f(x) ∂_{v+p} f(x)| (eq. 12) of a run, by offset distance ‖p‖.

    f: the true-class softmax probability (the paper: "f_θ(x) (e.g., a softmax output of a neural network)").

    Gradients w.r.t. pixels in [0, 1]; one metric row per distance is stored (kind analysis, name gradprod).

    \b
    Examples:
      msda analyze gradprod 3f2a --n-examples 256 --max-offset 8 --out gradprod.png
      msda analyze gradprod 3f2a --output logit --reduce max --format csv
      msda analyze gradprod 3f2a 9c41 --out gradprod.pdf
    """
    from msda_cli.analysis.gradprod import check_request, gradprod, plot_gradprod
    from msda_cli.render import check_format
    from msda_cli.runs import pick_device

    check_format(fmt)
    check_request(n_examples, max_offset, batch_size, output, channels, reduce)
    _check_out(out_path, dpi)
    store = _store(db, create=False)
    runs = _distinct_runs(store, run_ids)
    results = [gradprod(store, run.id, n_examples=n_examples, max_offset=max_offset, batch_size=batch_size, seed=seed,
                        output=output, channels=channels, reduce=reduce, device=pick_device(), data_dir=data_dir)
               for run in runs]
    first = results[0]
    what = f"run {first.run_id}" if len(results) == 1 else f"{len(results)} runs"
    _store_analysis(store, runs, results, fmt, f"Gradient product, {what} (f={output}, {reduce} of {first.n_examples})",
                    plot_gradprod, out_path, dpi)


def _distinct_runs(store, run_ids: list[str]) -> list:
    """The stored runs named (ids or unique prefixes), each once; MsdaError for an unknown or repeated one."""
    runs = [store.get_run(r) for r in run_ids]
    if len({r.id for r in runs}) < len(runs):
        raise MsdaError("a run is named twice")
    return runs


def _store_analysis(store, runs: list, results: list, fmt: str, title: str, plot, out_path: Optional[Path],
                    dpi: Optional[int]) -> None:
    """Store each run analysis's rows (kind analysis), print them in one table, and plot them when asked."""
    from msda_cli.curves import common_title, distinct_labels
    from msda_cli.render import print_frame

    for res in results:
        store.add_metrics(res.run_id, "analysis", res.metric_rows())
    labels = distinct_labels(runs)
    rows = results[0].rows() if len(results) == 1 else [
        {"run": res.run_id, "label": label, **row} for res, label in zip(results, labels) for row in res.rows()]
    print_frame(_analysis_frame(rows, fmt), fmt, console=out, title=title)
    if out_path is not None:
        plot(results, labels, common_title(runs), out_path, dpi)
        err.print(f"wrote {out_path}", markup=False, highlight=False)


@analyze_app.command("landscape")
def analyze_landscape(
    run_ids: Annotated[List[str], typer.Argument(help="Trained run(s) (id or unique prefix); several are overlaid.")],
    span: Annotated[float, typer.Option(help="t runs over [-span, span].")] = 1.0,
    points: Annotated[int, typer.Option(help="Values of t (odd counts include t = 0, the trained weights).")] = 21,
    directions: Annotated[int, typer.Option(help="Independent random directions (the table shows their mean).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the directions and of the test subset.")] = 0,
    n_examples: Annotated[int, typer.Option("--n-examples", help="Test examples (a fixed seeded subset).")] = 512,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per forward pass.")] = 256,
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Also plot loss and top-1 against t: .png, .pdf or .svg.")] = None,
    dpi: DpiOption = None,
    data_dir: DataDirOption = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """1-D loss landscape (Li et al., 2018): test loss and top-1 of θ + t·d along random directions d.

    d is Gaussian and filter-normalized (each conv / linear filter of d has the norm of θ's filter;
    biases and BatchNorm parameters are not moved); BatchNorm uses its running statistics (eval mode).
    One metric row per (direction, t) is stored (kind analysis, names landscape_loss, landscape_top1).

    \b
    Examples:
      msda analyze landscape 3f2a --span 1 --points 21 --out landscape.png
      msda analyze landscape 3f2a --directions 5 --n-examples 1000 --format csv
      msda analyze landscape 3f2a 9c41 --out landscape.pdf
    """
    from msda_cli.analysis.landscape import check_request, landscape, plot_landscape
    from msda_cli.render import check_format
    from msda_cli.runs import pick_device

    check_format(fmt)
    check_request(span, points, directions, n_examples, batch_size)
    _check_out(out_path, dpi)
    store = _store(db, create=False)
    runs = _distinct_runs(store, run_ids)
    results = [landscape(store, run.id, span=span, points=points, directions=directions, seed=seed,
                         n_examples=n_examples, batch_size=batch_size, device=pick_device(), data_dir=data_dir)
               for run in runs]
    first = results[0]
    what = f"run {first.run_id}" if len(results) == 1 else f"{len(results)} runs"
    title = f"Loss landscape, {what} (mean of {directions} dir., n={first.n_examples})"
    _store_analysis(store, runs, results, fmt, title, plot_landscape, out_path, dpi)


# ----- plot, export -------------------------------------------------------------------
@plot_app.command("curves")
def plot_curves(
    run_ids: Annotated[Optional[List[str]], typer.Argument(
        help="Runs (ids or unique prefixes): one line each.")] = None,
    metric: Annotated[str, typer.Option(
        help=f"Per-epoch metric: {spoken(CURVE_METRICS)}.", autocompletion=offer(CURVE_METRICS))] = "test_top1",
    table: Annotated[Optional[str], typer.Option(
        "--table", "-t", help="A paper table id: one mean ± std band per cell.")] = None,
    where: Annotated[Optional[List[str]], typer.Option(
        help="Runs with key=value (as msda report): a band per method × arch cell (repeatable).")] = None,
    cell: Annotated[Optional[str], typer.Option(
        help="Only this cell of the table, ROW/COL as the report labels it.")] = None,
    out_path: Annotated[Path, typer.Option(
        "--out", "-o", help="Figure to write: .png, .pdf or .svg.")] = Path("curves.png"),
    dpi: DpiOption = None,
    db: DbOption = None,
):
    """Training curves of several runs in one figure, or each report cell's runs as mean ± std over seeds.

    \b
    Examples:
      msda plot curves 3f2a 9c41 --metric train_loss --out loss.pdf
      msda plot curves --where dataset=digits --metric test_top1 --out top1.png
      msda plot curves --table digits --cell Mixup/CNN --out mixup.svg
    """
    from msda_cli.curves import check_metric, cell_curves, common_title, plot_curves as draw, run_curves

    check_metric(metric)
    _check_out(out_path, dpi)
    grouped = table is not None or bool(where) or cell is not None
    if run_ids and grouped:
        raise MsdaError("give run ids or --table/--where/--cell, not both")
    if not run_ids and not grouped:
        raise MsdaError("give run ids, or --table / --where to draw a report's cells")
    if cell is not None and table is None and not where:
        raise MsdaError("--cell needs --table or --where")
    store = _store(db, read_only=True)
    curves, runs = (run_curves(store, list(run_ids), metric) if run_ids
                    else cell_curves(store, table, list(where or []), cell, metric))
    draw(curves, metric, common_title(runs), out_path, dpi)
    out.print(f"wrote {out_path}", markup=False, highlight=False)


@app.command("export")
def export(
    run_ids: Annotated[List[str], typer.Argument(help="Runs to export (ids or unique prefixes).")],
    to: Annotated[str, typer.Option("--to", help=f"Tracker: {spoken(TARGETS)}.", autocompletion=offer(TARGETS))],
    dest: Annotated[str, typer.Argument(help="TensorBoard: a log directory; MLflow: a tracking URI (file:./mlruns).")],
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "msda",
    db: DbOption = None,
):
    """Export runs to a tracker: per-epoch metrics (step = epoch), final metrics, the config as params.

    TensorBoard: one sub-directory per run (DEST/RUN_ID), scalars under train/… and final/…, the
    config as text. MLflow: one MLflow run per run (named by its setting, tagged msda.run_id).

    \b
    Examples:
      msda export 3f2a 9c41 --to tensorboard tb/
      msda export 3f2a --to mlflow file:./mlruns
    """
    from msda_cli.export import TARGETS, export_runs

    if to not in TARGETS:
        raise MsdaError(f"--to must be one of {', '.join(TARGETS)}; got {to!r}")
    store = _store(db, read_only=True)
    runs = _distinct_runs(store, run_ids)
    written = export_runs(store, runs, to, dest, experiment=experiment)
    for line in written:
        out.print(line, markup=False, highlight=False)
