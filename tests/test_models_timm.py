"""timm architectures: ViT-B/16 and CoAtNet-0 at their sizes, `timm:NAME`, and the input size from the data set."""

from __future__ import annotations

import pytest
import torch

from msda_cli.config import check_names, validate
from msda_cli.engine import build
from msda_cli.errors import MsdaError
from msda_cli.models import build_model, model_options

torch.set_num_threads(1)


def n_params(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(name, **kwargs).parameters())


def test_vit_b16_and_coatnet_0_have_the_published_sizes():
    # ViT-B/16: 86 M (Dosovitskiy et al., Table 1); CoAtNet-0: 25 M (Dai et al., Table 3), both at 1000 classes
    assert abs(n_params("vit-b16", num_classes=1000) / 1e6 - 86.6) < 0.1
    assert abs(n_params("coatnet-0", num_classes=1000) / 1e6 - 25.0) < 0.1
    assert model_options("vit-b16") == {"img_size": 224, "patch_size": 16}
    assert model_options("coatnet-0") == {"img_size": 224}


def test_the_builder_gives_the_data_sets_classes_channels_and_input_size():
    from msda_cli.data import DatasetInfo

    info = DatasetInfo("fake", num_classes=7, in_chans=1, image_size=32, mean=(0.5,), std=(0.5,))
    cfg = validate({"dataset": "cifar10", "arch": "vit-b16", "epochs": 1,
                    "model": {"patch_size": 16}})
    with torch.device("meta"):
        net = build.build_network(cfg, info).net
    assert net.patch_embed.img_size == (32, 32) and net.patch_embed.num_patches == 4  # 2 x 2 tokens of 16 px
    assert net.head.out_features == 7 and net.patch_embed.proj.in_channels == 1


def test_timm_name_builds_any_timm_model_with_the_input_size_where_it_takes_one():
    torch.manual_seed(0)
    deit = build_model("timm:deit_tiny_patch16_224", num_classes=5, img_size=32, patch_size=8, depth=1)
    assert deit(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    resnet = build_model("timm:resnet18", num_classes=3, in_chans=1, img_size=32)  # ResNet takes no img_size
    assert resnet(torch.rand(2, 1, 32, 32)).shape == (2, 3)


def test_coatnet_0_trains_a_step_at_32_px():
    torch.manual_seed(0)
    model = build_model("coatnet-0", num_classes=4, img_size=32).train()
    model(torch.rand(2, 3, 32, 32)).logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_timm_names_and_options_are_one_line_errors(msda, tmp_path):
    with pytest.raises(MsdaError, match="unknown timm architecture 'no_such_net'"):
        check_names(validate({"dataset": "digits", "arch": "timm:no_such_net", "epochs": 1}))
    with pytest.raises(MsdaError, match="timm model 'resnet18'"):
        build_model("timm:resnet18", num_classes=3, no_such_option=1)
    result = msda("train", "--recipe", "digits-vanilla", "--arch", "timm:no_such_net", "--epochs", "1")
    assert result.code == 2 and result.stderr.strip().count("\n") == 0 and "no_such_net" in result.stderr
    assert "Traceback" not in result.stderr
