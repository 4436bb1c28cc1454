"""The fixed sets of values that options take: one source for the code that checks them, `--help` and TAB.

The code that validates a value imports its set from here (`check_choice` with it); the command line
writes the same set into its `--help` text and offers it to the shell (`completion.choices`). This module
imports nothing heavy (no torch, pandas or store): `msda --help` and every TAB read it at start-up.
"""

from __future__ import annotations

from msda_cli import metric_names as names

# Tuples checked by check_choice, not Typer enums: a comma list (--measure cv,std) and a recipe value get the same
# check and one-line message, and an enum would give every value a second name.

FORMATS = ("rich", "markdown", "latex", "csv", "json")  # tables: render.render
ATTACKS = (names.FGSM, names.PGD, names.AUTOATTACK)  # msda robust --attack; AutoAttack runs in robust.autoattack
OOD_PROTOCOLS = (names.OOD_HENDRYCKS, names.OOD_ALL_CLASSES)  # msda robust --ood-protocol
LAUNCHERS = ("local", "slurm")  # msda train / reproduce --launcher
RUN_STATUSES = ("running", "finished", "failed", "interrupted")  # store.tables.Run.status
EPOCHS = ("final", "best")  # msda report --epoch
SELECT_METRICS = {names.VAL_TOP1: False, names.VAL_LOSS: True, names.TOP1: False}  # --select-by: lower is better?
MEASURES = ("cv", "mean", "std", "random")  # msda subsample --measure
ORDERS = ("high", "low")  # msda subsample --order
SELECTS = ("top", "interval")  # msda subsample --select
OUTPUTS = ("prob", "logit", "loss")  # msda analyze gradprod --output
CHANNELS = ("norm", "sum")  # msda analyze gradprod --channels
REDUCES = ("mean", "max")  # msda analyze gradprod --reduce
PIXELS = ("interior", "valid")  # msda analyze coeffs --pixels
TARGETS = ("tensorboard", "mlflow")  # msda export --to
CURVE_METRICS = {names.TRAIN_LOSS: "training loss", names.TEST_TOP1: "test top-1 (%)", names.LR: "learning rate",
                 names.EPOCH_TIME: "epoch time (s)", names.TEST_LOSS: "test loss (NLL)",  # MixupE Figure 1
                 names.VAL_TOP1: "validation top-1 (%)", names.VAL_LOSS: "validation loss (NLL)"}  # plot --metric


def spoken(values) -> str:
    """`a, b or c`: how a --help text lists a set."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
