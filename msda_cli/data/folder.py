"""Image files on disk: scanning class folders, and a data set of (path, label) samples.

Labels come from the folder layout, so `targets` is known without decoding any image.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def class_folders(directory: Path) -> list[str]:
    """Names of the sub-folders of `directory` (sorted), skipping hidden ones."""
    return sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))


def image_files(directory: Path) -> list[Path]:
    """Image files below `directory` (recursive, sorted)."""
    out = []
    for base, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(base) / f for f in sorted(files) if is_image_file(f))
    return out


def scan_folder(directory: Path, classes: list[str]) -> tuple[list[tuple[Path, int]], list[str]]:
    """(path, label) for every image in `directory/<class>/` (label = index in `classes`),
    and the classes that have no folder or no image there."""
    samples, empty = [], []
    for label, name in enumerate(classes):
        folder = directory / name
        files = image_files(folder) if folder.is_dir() else []
        if not files:
            empty.append(name)
        samples.extend((f, label) for f in files)
    return samples, empty


def load_rgb(path) -> Image.Image:
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


class ImageFiles(Dataset):
    """Images read from disk on access, converted to RGB, then `transform`ed."""

    def __init__(self, samples: list[tuple[Path, int]], transform=None):
        self.samples = samples
        self.transform = transform

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        img = load_rgb(path)
        if self.transform is not None:
            img = self.transform(img)
        return img, label
