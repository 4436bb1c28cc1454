"""Which epoch a report shows: each run's final one (its stored final metrics) or its best one.

`--epoch best` is the epoch of the highest validation top-1 where the run holds a validation split out
(`data.val_fraction`), else the epoch of the highest test top-1 (the last such epoch, as the CutMix code's
`is_best = err1 <= best_err1`), as the CutMix paper reports "averaged best performances during training". The
final frame's clean test metrics (kind eval: top1, top5, nll, val_top1, val_loss) are then replaced by that
epoch's per-epoch rows (test_top1, test_top5, test_loss, val_top1, val_loss); a run without per-epoch rows of
a metric keeps its final value of it, and the caption counts such runs. ECE (not stored per epoch) goes where
a best epoch exists; the measurements of other commands (robust, subsample, analysis) are of the stored
checkpoint whichever epoch is shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from msda_cli import metric_names as names
from msda_cli.checks import check_choice

from msda_cli.choices import EPOCHS  # one source with --help

FINAL, BEST = EPOCHS
# per-epoch row (kind train) -> the final metric (kind eval) it stands for at the best epoch
AT_EPOCH = {names.TEST_TOP1: names.TOP1, names.TEST_TOP5: names.TOP5, names.TEST_LOSS: names.NLL,
            names.VAL_TOP1: names.VAL_TOP1, names.VAL_LOSS: names.VAL_LOSS}
REPLACED = frozenset((*AT_EPOCH.values(), names.ECE))  # ECE is not stored per epoch: no best-epoch value


def check_epoch(epoch: str | None) -> str | None:
    return None if epoch is None else check_choice("--epoch", epoch, EPOCHS)


def epoch_rows(store) -> pd.DataFrame:
    """The per-epoch rows a best epoch is read from: run_id, name, value, epoch."""
    wanted = ", ".join(f"'{n}'" for n in AT_EPOCH)
    query = (f"SELECT run_id, name, value, epoch FROM metric WHERE kind = '{names.TRAIN}' AND epoch IS NOT NULL "
             f"AND name IN ({wanted})")
    with store.engine.connect() as con:
        frame = pd.read_sql_query(query, con)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def best_epochs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its best epoch and the per-epoch values there (columns named as AT_EPOCH's keys)."""
    if not len(rows):
        return pd.DataFrame(columns=["run_id", "epoch", *AT_EPOCH])
    wide = rows.pivot_table(index=["run_id", "epoch"], columns="name", values="value", aggfunc="last").reset_index()
    for name in AT_EPOCH:
        if name not in wide.columns:
            wide[name] = np.nan
    has_val = wide.groupby("run_id")[names.VAL_TOP1].transform(lambda v: v.notna().any())
    wide["score"] = np.where(has_val, wide[names.VAL_TOP1], wide[names.TEST_TOP1])
    wide = wide.dropna(subset=["score"]).sort_values(["run_id", "epoch"], ascending=[True, False], kind="stable")
    last_best = wide.groupby("run_id")["score"].idxmax()  # ties: the last, as CutMix's `is_best = err1 <= best_err1`
    return wide.loc[last_best, ["run_id", "epoch", *AT_EPOCH]].reset_index(drop=True)


def at_best_epoch(final: pd.DataFrame, rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The final-metrics frame with each run's clean test and validation metrics taken at its best epoch, and
    the number of runs whose final value of such a metric stays because it has no per-epoch rows of it (a run
    stored by hand, or before that metric was stored per epoch)."""
    best = best_epochs(rows).set_index("run_id")
    template = final.drop_duplicates("run_id").set_index("run_id")
    at_best: set[tuple[str, str]] = set()
    added = []
    for run_id in best.index.intersection(template.index):
        base = template.loc[run_id].to_dict()
        for per_epoch, metric in AT_EPOCH.items():
            value = best.at[run_id, per_epoch]
            if pd.notna(value):
                at_best.add((run_id, metric))
                added.append({**base, "run_id": run_id, "kind": names.EVAL, "metric": metric,
                              "value": float(value), "params": "{}"})
    replaced = (final["kind"] == names.EVAL) & final["metric"].isin(REPLACED)
    has_best = pd.Series([(r, m) in at_best or (m == names.ECE and r in best.index)
                          for r, m in zip(final["run_id"], final["metric"])], index=final.index, dtype=bool)
    stays = replaced & ~has_best
    kept = final[~(replaced & has_best)]
    n_final = int(final.loc[stays & final["metric"].isin(AT_EPOCH.values()), "run_id"].nunique())
    extra = pd.DataFrame(added, columns=final.columns)
    frame = pd.concat([kept, extra], ignore_index=True) if len(extra) else kept.reset_index(drop=True)
    return frame, n_final
