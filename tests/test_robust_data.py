"""Corruption folders (CIFAR-C layout) and ImageNet-A style folders, written by the tests."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from msda_cli.errors import MsdaError
from msda_cli.evaluation import select_indices
from msda_cli.metric_names import CORRUPTION_MEAN_TOP1, CORRUPTION_TOP1, NATURAL_ADV_TOP1
from msda_cli.models import Normalized
from msda_cli.robust import STANDARD_CORRUPTIONS, evaluate_corruptions, evaluate_natural_adversarial


class Brightness(nn.Module):
    """Class k for images of mean brightness k / (C - 1)."""

    def __init__(self, num_classes):
        super().__init__()
        self.c = num_classes

    def forward(self, x):
        level = x.flatten(1).mean(1, keepdim=True) * (self.c - 1)
        return -((level - torch.arange(self.c)) ** 2)


def brightness_model(c):
    return Normalized(Brightness(c), (0.0,) * 3, (1.0,) * 3)


N, C = 12, 4


def write_cifar_c(folder, repeat_labels=True):
    folder.mkdir()
    labels = np.arange(N) % C
    level = lambda k: np.uint8(round(255 * k / (C - 1)))

    def images(wrong_per_severity):
        out = np.zeros((5 * N, 6, 6, 3), np.uint8)
        for s in range(5):
            for i in range(N):
                k = labels[i] if i >= wrong_per_severity(s + 1) else (labels[i] + 1) % C
                out[s * N + i] = level(k)
        return out

    np.save(folder / "gaussian_noise.npy", images(lambda s: s))  # s wrong of 12 at severity s
    np.save(folder / "fog.npy", images(lambda s: 0))
    np.save(folder / "speckle_noise.npy", images(lambda s: N))  # extra corruption, all wrong
    np.save(folder / "labels.npy", np.tile(labels, 5) if repeat_labels else labels)


@pytest.mark.parametrize("repeat_labels", [True, False])
def test_corruption_accuracy_per_severity_and_mean(tmp_path, repeat_labels):
    write_cifar_c(tmp_path / "c", repeat_labels)
    notes = []
    rows = evaluate_corruptions(brightness_model(C), tmp_path / "c", batch_size=5, progress=False,
                                image_size=6, log=notes.append)
    per = {(p["corruption"], p["severity"]): v for name, v, _, p in rows if name == CORRUPTION_TOP1}
    assert len(per) == 15
    for s in range(1, 6):
        assert per[("gaussian_noise", s)] == pytest.approx(100 * (N - s) / N)
        assert per[("fog", s)] == 100.0 and per[("speckle_noise", s)] == 0.0
    mean = [r for r in rows if r[0] == CORRUPTION_MEAN_TOP1]
    assert mean == [(CORRUPTION_MEAN_TOP1, pytest.approx((75.0 + 100.0) / 2), None,
                     {"n_corruptions": 2, "n_examples": N})]
    assert rows[0][3] == {"corruption": "gaussian_noise", "severity": 1, "n_examples": N}
    assert len(notes) == 1 and "13 of the 15" in notes[0] and "shot_noise" in notes[0]
    assert "fog" not in notes[0] and len(STANDARD_CORRUPTIONS) == 15


def test_corruption_subset_of_examples(tmp_path):
    write_cifar_c(tmp_path / "c")
    rows = evaluate_corruptions(brightness_model(C), tmp_path / "c", corruptions=["gaussian_noise"],
                                n_examples=5, seed=3, progress=False)
    idx = select_indices(N, 5, 3)
    for name, v, _, p in rows[:5]:
        assert v == pytest.approx(100 * (idx >= p["severity"]).float().mean().item())
        assert p["n_examples"] == 5


def test_corruption_folder_errors(tmp_path):
    with pytest.raises(MsdaError, match="labels.npy"):
        evaluate_corruptions(brightness_model(C), tmp_path / "nowhere", progress=False)
    write_cifar_c(tmp_path / "c")
    with pytest.raises(MsdaError, match="no snow.npy"):
        evaluate_corruptions(brightness_model(C), tmp_path / "c", corruptions=["snow"], progress=False)
    with pytest.raises(MsdaError, match="takes 32x32"):
        evaluate_corruptions(brightness_model(C), tmp_path / "c", image_size=32, progress=False)
    (tmp_path / "c" / "labels.npy").unlink()
    with pytest.raises(MsdaError, match="no labels.npy"):
        evaluate_corruptions(brightness_model(C), tmp_path / "c", progress=False)


def write_imagenet_a(folder):
    # class folder -> brightness levels (out of 9) of its images
    content = {"n001": [1, 1], "n002": [3, 3], "n005": [4, 2], "n999": [5, 5]}
    for cls, levels in content.items():
        (folder / cls).mkdir(parents=True)
        for j, lv in enumerate(levels):
            Image.fromarray(np.full((8, 8, 3), round(255 * lv / 9), np.uint8)).save(folder / cls / f"{j}.png")


def test_natural_adversarial_restricts_logits_to_folder_classes(tmp_path):
    write_imagenet_a(tmp_path / "a")
    model_classes = [f"N{k:03d}" for k in range(10)]  # case differs from the folder names
    notes = []
    rows = evaluate_natural_adversarial(brightness_model(10), model_classes, tmp_path / "a", image_size=8,
                                        batch_size=4, progress=False, log=notes.append)
    # restricted to classes {1, 2, 5}: level 3 -> 2 (right), level 4 -> 5 (right), level 2 -> 2 (wrong)
    assert rows == [(NATURAL_ADV_TOP1, pytest.approx(100 * 5 / 6), None,
                     {"dataset_dir": str((tmp_path / "a").resolve()), "protocol": "imagenet-a-200",
                      "n_examples": 6})]
    assert len(notes) == 1 and "n999" in notes[0]
    with pytest.raises(MsdaError, match="no class"):
        evaluate_natural_adversarial(brightness_model(10), ["cat", "dog"], tmp_path / "a", image_size=8,
                                     progress=False)
    with pytest.raises(MsdaError, match="does not exist"):
        evaluate_natural_adversarial(brightness_model(10), model_classes, tmp_path / "b", image_size=8,
                                     progress=False)
