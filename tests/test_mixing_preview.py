"""The mixed-sample preview figure renders to a valid PNG."""

from __future__ import annotations

import struct

import pytest
import torch

from msda_cli.errors import MsdaError
from msda_cli.mixing.preview import render_preview

torch.set_num_threads(1)


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND"
    return width, height, len(data)


def test_preview_of_several_methods_is_a_png(tmp_path):
    out = render_preview(["cutmix", "gmix", "dcutmix", "mixupe"], tmp_path / "sub" / "fig.png", lam=0.65)
    w, h, n = png_size(out)
    assert out == tmp_path / "sub" / "fig.png"
    assert w >= 400 and h >= 4 * 150 and n > 10_000  # four rows of real pixels, not an empty canvas


def test_preview_with_user_images_and_drawn_lambda(tmp_path):
    from PIL import Image

    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        img = Image.new("RGB", (90, 60), colour)
        img.putpixel((10 + i, 10), (255, 255, 255))
        paths.append(tmp_path / f"img{i}.png")
        img.save(paths[-1])
    out = render_preview(["hmix", "saliency-dcutmix"], tmp_path / "u.png", lam=None, images=paths, seed=1,
                         hparams={"hmix": {"r": 0.75}, "saliency-dcutmix": {"k": 4}})
    w, h, n = png_size(out)
    assert w > 400 and h > 250


def test_preview_rejects_bad_input(tmp_path):
    with pytest.raises(MsdaError, match="choose from"):
        render_preview(["nope"], tmp_path / "x.png")
    with pytest.raises(MsdaError, match="not found"):
        render_preview(["mixup"], tmp_path / "x.png", images=[tmp_path / "a.png", tmp_path / "b.png"])
    with pytest.raises(MsdaError):
        render_preview(["mixup"], tmp_path / "x.png", lam=1.5)
    assert not (tmp_path / "x.png").exists()
