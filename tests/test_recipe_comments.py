"""Every paper recipe of an image table says, in its comments, which split its cells report and how the test images
are evaluated (choices the papers leave open); DCutMix Table 5's recipes also state the gray-box PGD settings."""

from __future__ import annotations

import pytest
import yaml

from msda_cli.config import list_recipe_names, recipe_chain
from msda_cli.report import TABLES
from msda_cli.report.build import table_plans

IMAGE_SETS = {"cifar10", "cifar100", "svhn", "tiny-imagenet", "imagenet", "imagenet100"}


def _comments(name: str) -> str:
    return "\n".join(line for path in recipe_chain(name) for line in path.read_text().splitlines()
                     if line.lstrip().startswith("#"))


def _paper_image_recipes() -> list[str]:
    out = []
    for name in list_recipe_names():
        raw = {}
        for path in recipe_chain(name):
            raw.update(yaml.safe_load(path.read_text()) or {})
        if raw.get("paper_table") and raw.get("dataset") in IMAGE_SETS:
            out.append(name)
    return out


@pytest.mark.parametrize("name", _paper_image_recipes())
def test_a_paper_image_recipe_names_its_split_and_eval_transform(name):
    text = _comments(name)
    assert "# Split:" in text and "Eval:" in text, name


def test_the_recipes_of_the_robustness_table_state_the_gray_box_pgd_settings():
    recipes = {res.recipe for _, res in table_plans(TABLES["dcutmix-5"]) if res is not None}
    assert recipes >= {"imagenet-vanilla", "imagenet-cutmix", "imagenet-dcutmix", "imagenet-saliency-dcutmix"}
    for name in recipes:
        text = _comments(name)
        assert "Gray-box PGD" in text and "10 steps of 2/255" in text and "different random seed" in text, name
