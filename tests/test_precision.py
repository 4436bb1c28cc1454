"""Numbers show the precision they have: small values keep their digits, CSV/JSON carry no float32 noise."""

import io
import json

import numpy as np
import pandas as pd
from rich.console import Console

from msda_cli.render import plain_text, print_frame, significant


def test_shown_values_keep_their_significant_digits():
    assert plain_text(0.001) == "0.001" and plain_text(0.05) == "0.05" and plain_text(0.00123) == "0.00123"
    assert plain_text(86.66666746139526) == "86.67" and plain_text(0.0) == "0.00" and plain_text(-0.5) == "-0.5"
    assert plain_text(float("inf")) == "inf" and plain_text(float("nan")) == "–"


def test_csv_and_json_round_float32_values_to_seven_significant_digits(capsys):
    top1 = float(np.float32(260 / 3))  # a float32 metric: 86.66666412353516
    assert significant(top1) == 86.66666 and significant(86.66666746139526) == 86.66667
    assert significant(0.001) == 0.001 and significant(0.004775) == 0.004775  # exact values unchanged
    frame = pd.DataFrame({"run": ["a"], "top1": [86.66666746139526], "lr": [0.001], "epochs": [3]})
    print_frame(frame, "csv", console=Console(file=io.StringIO()))
    assert capsys.readouterr().out.splitlines()[1] == "a,86.66667,0.001,3"
    print_frame(frame, "json", console=Console(file=io.StringIO()))
    assert json.loads(capsys.readouterr().out) == [{"run": "a", "top1": 86.66667, "lr": 0.001, "epochs": 3}]


def test_report_csv_carries_no_float32_noise(msda, db_path):
    from msda_cli.store import Store

    store = Store(db_path)
    for seed, value in enumerate((86.66666746139526, 90.00000357627869)):
        run = store.create_run(recipe="digits-mixup", dataset="digits", arch="digits-cnn", method="mixup",
                               seed=seed, config=json.dumps({"method": "mixup", "seed": seed}))
        store.add_metrics(run.id, "eval", [("top1", value)])
        store.finish_run(run.id)
    r = msda("report", "--rows", "method", "--metric", "top1", "--format", "csv")
    assert r.code == 0, r.stderr
    assert ",88.33334,2.357025," in r.stdout and "88.333335" not in r.stdout, r.stdout  # mean 88.3333355...
    r = msda("runs", "list", "--format", "json")
    assert sorted(row["top1"] for row in json.loads(r.stdout)) == [86.66667, 90.0]
