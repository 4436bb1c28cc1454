"""Google Speech Commands in the official archive's layout, small: for the tests that need a speech folder."""

from __future__ import annotations

import numpy as np
import scipy.io.wavfile

from msda_cli.data.speech import WORDS

SHORT = 8000  # one half-second file: 51 frames, zero-padded to 101


def wave(seed: int, n: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    tone = 0.3 * np.sin(2 * np.pi * (200 + 40 * seed) * t) + 0.05 * rng.standard_normal(n)
    return np.clip(tone * 32767, -32768, 32767).astype(np.int16)


def write_speech(root, per_word: int = 3):
    """The archive's layout: 30 word folders of 16 kHz WAV files (file k of a word: k = 0 tested, 1 validation,
    the others trained on), the two list files, a `_background_noise_` folder and a v0.02 word not to be read."""
    tests, vals = [], []
    for c, word in enumerate(WORDS):
        (root / word).mkdir(parents=True)
        for k in range(per_word):
            name = f"{word}/{c:04x}{k:04x}_nohash_0.wav"
            n = SHORT if (c, k) == (0, 2) else 16000
            scipy.io.wavfile.write(root / name, 16000, wave(100 * c + k, n))
            if k < 2:
                (tests, vals)[k].append(name)
    (root / "testing_list.txt").write_text("\n".join(tests) + "\n")
    (root / "validation_list.txt").write_text("\n".join(vals) + "\n")
    for extra in ("_background_noise_", "learn"):
        (root / extra).mkdir()
        (root / extra / "junk.wav").write_bytes(b"not a wav")  # never read
    return root
