"""The measuring commands on a stored run: msda eval, robust and subsample."""

from __future__ import annotations

import json
from typing import Optional

import typer
from typing_extensions import Annotated

from msda_cli.choices import ATTACKS, MEASURES, OOD_PROTOCOLS, ORDERS, SELECTS, spoken
from msda_cli.completion import choices as offer
from msda_cli.cli.common import _list, _store, _progress, out, err, app, DataDirOption, DbOption, FormatOption


# ----- eval ---------------------------------------------------------------------------
@app.command("eval")
def eval_(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    dataset: Annotated[Optional[str], typer.Option(help="Evaluate on this data set's test split instead.")] = None,
    data_dir: DataDirOption = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Compute top-1, top-5, NLL and ECE (15 bins) of a run on the test split and store them."""
    from msda_cli.eval_command import run_eval
    from msda_cli.render import check_format, print_frame
    from msda_cli.runs import pick_device

    check_format(fmt)
    store = _store(db, create=False)
    run, frame = run_eval(store, run_id, pick_device(), dataset=dataset, data_dir=data_dir)
    print_frame(frame, fmt, title=f"Evaluation of run {run}", console=out)


# ----- robust -------------------------------------------------------------------------
@app.command()
def robust(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix) to measure.")],
    attack: Annotated[Optional[str], typer.Option(
        help=f"White-box attack: {spoken(ATTACKS)} (L-inf; torchattacks' standard AutoAttack).",
        autocompletion=offer(ATTACKS))] = None,
    eps: Annotated[float, typer.Option(help="Attack radius in 0-255 pixel units (8 means 8/255).")] = 8.0,
    steps: Annotated[int, typer.Option(help="PGD steps.")] = 10,
    step_size: Annotated[float, typer.Option("--step-size", help="PGD step size in pixel units.")] = 2.0,
    restarts: Annotated[int, typer.Option(help="PGD random restarts (per-example worst case).")] = 1,
    source: Annotated[Optional[str], typer.Option(
        help="Craft PGD examples on this run instead (gray-box if same arch, else black-box).")] = None,
    ood: Annotated[Optional[str], typer.Option(
        help="Out-of-distribution set: a data set name or a folder of class folders (AUPR, AUROC).")] = None,
    ood_protocol: Annotated[Optional[str], typer.Option(
        "--ood-protocol", help=f"OOD protocol: {spoken(OOD_PROTOCOLS)} (Hendrycks et al.'s 200 classes, the default "
                               "for ImageNet-O; or the whole test set and all logits, the default otherwise).",
        autocompletion=offer(OOD_PROTOCOLS))] = None,
    natural_adversarial: Annotated[Optional[str], typer.Option(
        "--natural-adversarial", help="ImageNet-A folder: accuracy over its 200 classes.")] = None,
    deform: Annotated[bool, typer.Option(
        "--deform", help="Accuracy under the eight deformations of MixupE Table 8.")] = False,
    corruptions: Annotated[Optional[str], typer.Option(
        help="CIFAR-10/100-C folder: accuracy per corruption and severity.")] = None,
    n_examples: Annotated[Optional[int], typer.Option(
        "--n-examples", help="Evaluate a fixed subset of N test examples.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per batch on the device.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the subset, random starts and deformations.")] = 0,
    data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Local copy of the data sets.")] = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Attack and probe a trained run; every number is stored (kind robust) with its settings.

    \b
    Examples:
      msda robust 3f2a --attack pgd --eps 8 --step-size 2 --steps 10
      msda robust 3f2a --attack pgd --source 9c1d          # transfer attack
      msda robust 3f2a --ood fashion-mnist --deform
      msda robust 3f2a --corruptions ~/data/CIFAR-100-C
    """
    import pandas as pd

    from msda_cli.render import check_format, print_frame
    from msda_cli.robust.command import RobustRequest, run_robust
    from msda_cli.runs import pick_device

    check_format(fmt)
    req = RobustRequest(attack=attack, eps=eps, steps=steps, step_size=step_size, restarts=restarts, source=source,
                        ood=ood, ood_protocol=ood_protocol, natural_adversarial=natural_adversarial, deform=deform,
                        corruptions=corruptions,
                        n_examples=n_examples, batch_size=batch_size, seed=seed, data_dir=data_dir)
    store = _store(db, create=False)
    run, rows = run_robust(store, run_id, req, pick_device(),
                           log=lambda msg: err.print(f"note: {msg}", markup=False))
    frame = pd.DataFrame([{"measure": name, "value": value,
                           "settings": ", ".join(f"{k}={v}" for k, v in params.items())}
                          for name, value, _, params in rows])
    print_frame(frame, fmt, title=f"Robustness of run {run} (values in %)", console=out)


# ----- subsample ----------------------------------------------------------------------
@app.command()
def subsample(
    run_id: Annotated[str, typer.Argument(
        help="Trained run whose model scores its training set (id or unique prefix).")],
    ratio: Annotated[Optional[str], typer.Option(
        help="Subset ratio(s) t in (0, 1], comma-separated: one subset each.")] = None,
    measure: Annotated[str, typer.Option(help=f"Measure(s), comma-separated: {spoken(MEASURES)}.",
                                                     autocompletion=offer(MEASURES, many=True))] = "cv",
    order: Annotated[str, typer.Option(help=f"End of the measure to keep: {spoken(ORDERS)} (high,low for both).",
                                                   autocompletion=offer(ORDERS, many=True))] = "high",
    select: Annotated[str, typer.Option(
        help=f"Per class: {spoken(SELECTS)} (the first round(t*N), or evenly spaced ranks).",
        autocompletion=offer(SELECTS))] = "top",
    mixes: Annotated[int, typer.Option(help="DCutMix mixes M per anchor.")] = 10,
    partners: Annotated[int, typer.Option(help="Partner images K-1 per mix.")] = 2,
    partner_alpha: Annotated[str, typer.Option(
        "--partner-alpha", help="Dirichlet alpha of the partners' shares (e.g. 2/9).")] = "2/9",
    anchor_share: Annotated[str, typer.Option(
        "--anchor-share", help="The anchor's fixed share of the image, in (0, 1).")] = "1/3",
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Anchors per forward pass (each brings M mixes).")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the mixes and of the random measure.")] = 0,
    export: Annotated[Optional[str], typer.Option(
        help="Also write per-sample scores (index, label, mean, std, cv, losses) to this CSV.")] = None,
    data_dir: DataDirOption = None,
    fmt: FormatOption = "rich",
    db: DbOption = None,
):
    """Score a run's training samples by DCutMix loss uncertainty and store per-class subsets."""
    import pandas as pd

    from msda_cli import subsample as sub
    from msda_cli.render import check_format, print_frame

    check_format(fmt)
    selections = sub.plan(_list(ratio), _list(measure), _list(order), _list(select))
    settings = sub.ScoreSettings(mixes=mixes, partners=partners, batch_size=batch_size, seed=seed,
                                 partner_alpha=sub.parse_fraction(partner_alpha, "--partner-alpha"),
                                 anchor_share=sub.parse_fraction(anchor_share, "--anchor-share")).check()
    store = _store(db, create=False)
    with _progress() as progress:
        result = sub.subsample(store, run_id, selections, settings, export=export, data_dir=data_dir,
                               progress=progress)
    frame = pd.DataFrame([{"id": s.id, "measure": s.measure, "order": json.loads(s.params).get("order") or "",
                           "select": json.loads(s.params)["select"], "ratio": s.ratio, "size": s.size}
                          for s in result.subsets])
    print_frame(frame, fmt, title=f"Subsets of run {result.subsets[0].source_run_id}", console=out)
