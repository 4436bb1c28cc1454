"""msda's own small table on the embedded digits data: no paper, trains in minutes on a CPU.

It exercises everything `msda reproduce` does (runs on two architectures, a follow-up attack on
finished runs) where no download is possible: tests and demos use it.
"""

from __future__ import annotations

from msda_cli import metric_names as names
from msda_cli.report.spec import TOP1_ACC, Header, MetricSpec, Paper, Plan, TableSpec, methods, robust

PAPER = Paper("digits", "msda's check on the embedded digits data (no paper)", short="Digits check")

DIGITS = TableSpec(
    id="digits", source=PAPER, paper_table="digits", number="", plan=Plan(recipe="digits-{method}"),
    caption="Methods on two small architectures. Top-1 accuracy (%) on the digits test split of the digits CNN "
            "and an MLP (two hidden layers of 128), and of the CNN under white-box FGSM (ε = 8/255)",
    rows=methods(("Vanilla", "vanilla"), ("Mixup", "mixup"), ("CutMix", "cutmix")),
    cols=(Header("CNN", plan=Plan(arch="digits-cnn")), Header("MLP", plan=Plan(arch="mlp")),
          Header("CNN, FGSM (ε = 8)", plan=Plan(arch="digits-cnn", followups=(robust(attack="fgsm", eps=8),)),
                 metric=MetricSpec(names.FGSM, names.ROBUST, params={"eps": 8}, label="FGSM top-1 (%)"))),
    metric=TOP1_ACC,
)

TABLES = (DIGITS,)
