"""OOD detection and deformations: numbers against sklearn, hand computations, invariants."""

import numpy as np
import pytest
import torch
from torch import nn

from msda_cli.data import TensorDataset
from msda_cli.errors import MsdaError
from msda_cli.metric_names import OOD_AUPR, OOD_AUROC
from msda_cli.models import Normalized
from msda_cli.robust import DEFORMATIONS, evaluate_deformations, evaluate_ood, open_ood_set
from msda_cli.robust.deform import deform


# ----- OOD ------------------------------------------------------------------------------
class Temperature(nn.Module):
    """Confident on bright images, unsure on dark ones."""

    def forward(self, x):
        b = x.flatten(1).mean(1, keepdim=True)
        return torch.cat([10 * b, torch.zeros_like(b), torch.zeros_like(b)], dim=1)


def test_evaluate_ood_uses_negative_max_softmax():
    from sklearn.metrics import average_precision_score, roc_auc_score

    g = torch.Generator().manual_seed(0)
    x_in = 0.5 + 0.5 * torch.rand(30, 1, 4, 4, generator=g)  # bright: in-distribution
    x_out = 0.3 + 0.7 * torch.rand(20, 1, 4, 4, generator=g)  # darker on average, overlapping: less confident
    rows = evaluate_ood(Temperature(), TensorDataset(x_in, torch.zeros(30, dtype=torch.long)),
                        TensorDataset(x_out, torch.zeros(20, dtype=torch.long)), "dark", batch_size=8, progress=False)
    with torch.no_grad():
        msp = torch.cat([Temperature()(x_in), Temperature()(x_out)]).softmax(1).max(1).values.numpy()
    is_ood = np.r_[np.zeros(30), np.ones(20)]
    values = {name: (v, p) for name, v, _, p in rows}
    assert values[OOD_AUPR][0] == pytest.approx(100 * average_precision_score(is_ood, -msp))
    assert values[OOD_AUROC][0] == pytest.approx(100 * roc_auc_score(is_ood, -msp))
    assert 50 < values[OOD_AUROC][0] < 100
    assert values[OOD_AUPR][1] == {"ood_set": "dark", "protocol": "all-classes", "n_in": 30, "n_out": 20}
    capped = evaluate_ood(Temperature(), TensorDataset(x_in, torch.zeros(30, dtype=torch.long)),
                          TensorDataset(x_out, torch.zeros(20, dtype=torch.long)), "dark", n_examples=10,
                          progress=False)
    assert capped[0][3] == {"ood_set": "dark", "protocol": "all-classes", "n_in": 10, "n_out": 10}


def test_ood_set_from_folder_or_name(tmp_path):
    from PIL import Image

    from msda_cli.data import DatasetInfo

    info = DatasetInfo("x", 10, 3, 16, (0.5,) * 3, (0.5,) * 3)
    (tmp_path / "ood" / "any").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 60 * i, np.uint8)).save(tmp_path / "ood" / "any" / f"{i}.png")
    ds, name = open_ood_set(str(tmp_path / "ood"), info)
    assert name == "ood" and len(ds) == 3 and ds[2][0].shape == (3, 16, 16)
    assert ds[2][0].max().item() == pytest.approx(120 / 255)
    digits, name = open_ood_set("digits", info)
    assert name == "digits" and digits[0][0].shape == (3, 16, 16)
    with pytest.raises(MsdaError, match="neither a folder"):
        open_ood_set(str(tmp_path / "missing"), info)
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(MsdaError, match="sub-folder per class"):
        open_ood_set(str(tmp_path / "empty"), info)


# ----- deformations ----------------------------------------------------------------------
def test_identity_deformations_leave_batch_unchanged():
    x = torch.rand(5, 3, 12, 12)
    assert torch.equal(deform(x, "rotate", 0.0), x)
    assert torch.equal(deform(x, "shear", 0.0), x)
    assert torch.equal(deform(x, "zoom", 1.0), x)


def test_deformation_geometry():
    x = torch.rand(2, 1, 8, 8) + 0.1  # no zeros
    assert torch.equal(deform(x, "rotate", 90.0), torch.rot90(x, -1, (2, 3)))  # clockwise as displayed
    zin = deform(x, "zoom", 0.5)  # central 4x4 magnified twice, nearest
    assert torch.equal(zin, x[:, :, 2:6, 2:6].repeat_interleave(2, 2).repeat_interleave(2, 3))
    zout = deform(x, "zoom", 2.0)  # shrunk to half, fill 0
    assert (zout[:, :, :2] == 0).all() and (zout[:, :, :, -2:] == 0).all() and (zout[:, :, 2:6, 2:6] > 0).all()
    sheared = deform(x, "shear", 30.0)
    # the centre column stays: row_in = row there
    assert not torch.equal(sheared, x) and torch.equal(sheared[:, :, :, 4], x[:, :, :, 4])


def test_named_deformations_are_seeded_and_vectorized():
    assert list(DEFORMATIONS) == ["rotate20", "rotate40", "shear28.6", "shear57.3",
                                  "zoomin60", "zoomin80", "zoomout120", "zoomout140"]
    rot = DEFORMATIONS["rotate20"]
    a = rot.sample(50, torch.Generator().manual_seed(3))
    assert torch.equal(a, rot.sample(50, torch.Generator().manual_seed(3)))
    assert a.abs().max() <= 20 and a.min() < -10 and a.max() > 10
    x = torch.rand(4, 1, 9, 9)
    per_image = deform(x, "rotate", a[:4])
    for i in range(4):
        assert torch.equal(per_image[i:i + 1], deform(x[i:i + 1], "rotate", a[i]))


class PixelSum(nn.Module):
    """Predicts 1 when the image keeps most of its mass, else 0: sensitive to zoom-out."""

    def forward(self, x):
        s = x.flatten(1).sum(1, keepdim=True) / (x[0].numel() * 0.5)
        return torch.cat([0.8 - s, s - 0.8], dim=1)


def test_evaluate_deformations_rows_and_same_set_for_any_batch_size():
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(0.5 + 0.1 * torch.rand(30, 1, 8, 8, generator=g), torch.ones(30, dtype=torch.long))
    model = Normalized(PixelSum(), (0.0,), (1.0,))
    a = evaluate_deformations(model, ds, seed=4, n_examples=25, batch_size=4, progress=False)
    b = evaluate_deformations(model, ds, seed=4, n_examples=25, batch_size=25, progress=False)
    assert a == b
    values = {p["deformation"]: v for _, v, _, p in a}
    assert a[0][3] == {"deformation": "rotate20", "seed": 4, "n_examples": 25}
    assert values["zoomin80"] == 100.0 and values["zoomout140"] == 0.0
    with pytest.raises(MsdaError, match="unknown deformation"):
        evaluate_deformations(model, ds, deformations=["rotate90"], progress=False)
