"""Google Speech Commands (Warden, 2018), v0.01's 30 words, as MixupE's Table 5 (after Zhang et al., 2018) uses it.

On disk, the official archive's layout (`speech_commands_v0.01.tar.gz` unpacked), in `--data-dir DIR` or
DIR/speech_commands or DIR/speech_commands_v0.01:
  <word>/<speaker>_nohash_<n>.wav    one folder per word: 16 kHz mono 16-bit PCM WAV, at most one second
  validation_list.txt, testing_list.txt    one `<word>/<file>.wav` per line: the official splits
  _background_noise_/                not read (it is no word); folders of other words (v0.02's) are not read
The test split is `testing_list.txt`; the training split is every other file of the 30 words that is in
neither list (the official training split). `validation_list.txt` must be there but its files are not read:
`--set data.val_fraction=F` holds a validation split out of the training split, as for every set. Classes: the
30 words in alphabetical order (the order of GCommandsPytorch's `find_classes`, which sorts the folders).

MixupE §4.3: "We preprocess the utterances by first extracting the normalized spectrograms from the original
waveform at a sampling rate of 16 kHz, followed by zero-padding the spectrograms to equalize their size at
160×101. This preprocessing step is exactly the same as Zhang et al. [2018]." Zhang et al. publish no speech
code; the recipe below is that of GCommandsPytorch's `spect_loader` (github.com/adiyoss/GCommandsPytorch, the
PyTorch Speech Commands loader of its time, whose 160/161×101 spectrograms and LeNet/VGG models match the
mixup paper's description), step by step:
  - samples as librosa.load(sr=None) gives them: int16 / 32768 at the file's own 16 kHz (no resampling);
  - STFT: n_fft = win_length = int(16000 · 0.02) = 320 (window_size .02), hop = int(16000 · 0.01) = 160
    (window_stride .01), window 'hamming' (librosa: scipy's periodic Hamming window), centred frames with
    the signal reflect-padded by n_fft / 2 at both ends (librosa.stft's center=True and its pad_mode of
    2018, 'reflect'): 1 + 16000 // 160 = 101 frames of 161 bins for a one-second file;
  - magnitude (librosa.magphase), then log1p ("S = log(S+1)");
  - fewer than 101 frames (a shorter file): zero columns appended up to 101 (before the normalization);
  - z-score normalization of each spectrogram by its own mean and (unbiased, torch's) standard deviation.
The loader as read at its commit 32f9c77 (gcommand_loader.py).
CHOSEN where GCommandsPytorch and the papers differ or are silent: its spectrograms have 161 bins, the papers
print 160: the top (Nyquist, 8 kHz) bin is dropped, before the normalization; a file longer than one second
(none in the archive) is cut to its first 101 frames (the loader's `max_len` branch slices `spect[:max_len, ]`,
the bins, a slip we do not copy). A constant spectrogram (standard deviation 0: a silent file) is left as it
is, as the loader's latest version does (`if std != 0`).

The spectrograms are computed once when the data set is built, with `torch.stft` (one code path on any
device; here the CPU), files of equal length as one batch, and held in memory as float32 [N, 1, 160, 101]:
about 3.3 GB for the ~51 000 training files, 0.4 GB for the ~6 800 test files. The values are z-scores, not
[0, 1] pixels: `info.mean`/`info.std` are 0 and 1 (the model's normalization is the identity). Every WAV file
is checked before it is read (RIFF/WAVE header, PCM, mono, 16 bit, 16 kHz, a data chunk as long as it says
and at least 161 samples, what the centred STFT needs); a file that breaks one is one line naming it.
"""

from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from msda_cli.data import DatasetInfo, LabeledDataset, TensorDataset, fail_missing, register_dataset, resolve_root
from msda_cli.errors import MsdaError

# Speech Commands v0.01's 30 words (the v0.02 archive adds backward, follow, forward, learn, visual)
WORDS = ("bed", "bird", "cat", "dog", "down", "eight", "five", "four", "go", "happy", "house", "left", "marvin",
         "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up",
         "wow", "yes", "zero")
URL = "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz"
FOLDERS = ("speech_commands", "speech_commands_v0.01")
LISTS = ("validation_list.txt", "testing_list.txt")
RATE = 16000
N_FFT = int(RATE * 0.02)  # window_size .02 s: 320 samples
HOP = int(RATE * 0.01)  # window_stride .01 s: 160 samples
BINS, FRAMES = 160, 101  # the papers' 160×101 (of the STFT's 161 bins)


def spectrogram(waves: torch.Tensor) -> torch.Tensor:
    """[B, 1, 160, 101] normalized log spectrograms of `waves` [B, T] (float, in [-1, 1), equal lengths T > 160),
    on the device `waves` are on (see the module docstring for where each step comes from)."""
    window = torch.hamming_window(N_FFT, periodic=True, dtype=waves.dtype, device=waves.device)
    stft = torch.stft(waves, N_FFT, hop_length=HOP, win_length=N_FFT, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    spect = torch.log1p(stft.abs())[:, :BINS, :FRAMES]
    if spect.shape[-1] < FRAMES:
        spect = torch.nn.functional.pad(spect, (0, FRAMES - spect.shape[-1]))
    flat = spect.reshape(len(spect), -1)
    mean, std = flat.mean(1)[:, None, None], flat.std(1)[:, None, None]
    normalized = torch.where(std > 0, (spect - mean) / std.clamp_min(torch.finfo(spect.dtype).tiny), spect)
    return normalized.unsqueeze(1)  # a constant spectrogram stays as it is (the loader's `if std != 0`)


def read_wav(path: Path) -> np.ndarray:
    """The int16 samples of a 16 kHz mono 16-bit PCM WAV file; MsdaError naming the file for anything else."""
    def bad(why: str):
        raise MsdaError(f"speech-commands: {path}: {why}; expected 16 kHz mono 16-bit PCM WAV")

    try:
        size = path.stat().st_size
        with wave.open(str(path), "rb") as f:
            channels, width, rate, frames = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            if f.getcomptype() != "NONE":
                bad(f"compressed ({f.getcomptype()})")
            if channels != 1:
                bad(f"{channels} channels")
            if width != 2:
                bad(f"{8 * width}-bit samples")
            if rate != RATE:
                bad(f"{rate} Hz")
            if frames * width > size:  # a declared length the file cannot hold: refused before reading it
                bad(f"the header declares {frames} samples, more than the file's {size} bytes hold")
            data = f.readframes(frames)
    except (wave.Error, EOFError) as e:
        bad(f"not a readable WAV file ({e or type(e).__name__})")
    except OSError as e:
        raise MsdaError(f"speech-commands: cannot read {path} ({type(e).__name__}: {e})") from None
    if len(data) != frames * 2:
        bad(f"truncated: {len(data) // 2} of the {frames} samples its header declares")
    if frames <= N_FFT // 2:
        bad(f"{frames} samples, fewer than the {N_FFT // 2 + 1} a centred 320-sample STFT needs")
    return np.frombuffer(data, dtype="<i2")


def _root(root) -> Path:
    base = resolve_root(root)
    for folder in (base, *(base / f for f in FOLDERS)):
        if all((folder / name).is_file() for name in LISTS):
            return folder
    fail_missing("speech-commands", f"{' and '.join(LISTS)} and one folder per word in {base} or "
                 f"{base / FOLDERS[0]}", f"Get {URL} and unpack it there")


def _listed(root: Path, name: str) -> set[str]:
    try:
        lines = (root / name).read_text(errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise MsdaError(f"speech-commands: cannot read {root / name} ({type(e).__name__}: {e})") from None
    return {line.strip() for line in lines if line.strip()}


def _files(root: Path, train: bool) -> list[tuple[str, int]]:
    """(relative path, class) of the split's files, in sorted order."""
    missing = [w for w in WORDS if not (root / w).is_dir()]
    if missing:
        raise MsdaError(f"speech-commands: {root} lacks the word folder(s) {', '.join(missing)} "
                        f"(the 30 words of {URL})")
    held = {name: _listed(root, name) for name in LISTS}
    out = []
    for c, word in enumerate(WORDS):
        found = {f"{word}/{p.name}" for p in (root / word).iterdir() if p.suffix.lower() == ".wav" and p.is_file()}
        for listed in sorted(held["testing_list.txt"]):
            if listed.split("/", 1)[0] == word and listed not in found:
                raise MsdaError(f"speech-commands: testing_list.txt names {listed}, which is not in {root}")
        chosen = (found & held["testing_list.txt"] if not train
                  else found - held["testing_list.txt"] - held["validation_list.txt"])
        out += [(rel, c) for rel in sorted(chosen)]
    if not out:
        raise MsdaError(f"speech-commands: no WAV file of the {'training' if train else 'test'} split in {root}")
    return out


@lru_cache(maxsize=2)
def _tensors(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    base = Path(root)
    files = _files(base, train)
    waves = [read_wav(base / rel) for rel, _ in files]
    x = torch.empty(len(files), 1, BINS, FRAMES)
    by_length: dict[int, list[int]] = {}
    for i, w in enumerate(waves):
        by_length.setdefault(len(w), []).append(i)
    for length, idx in by_length.items():
        for start in range(0, len(idx), 1000):  # bounded memory per STFT batch
            part = idx[start:start + 1000]
            batch = torch.from_numpy(np.stack([waves[i] for i in part]).astype(np.float32) / 32768.0)
            x[part] = spectrogram(batch)
    y = torch.tensor([c for _, c in files], dtype=torch.long)
    others = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name not in WORDS
                    and p.name != "_background_noise_")
    note = f"folders not read (not v0.01's 30 words): {', '.join(others)}" if others else ""
    return x, y, note


@register_dataset("speech-commands", label="Speech Commands")
def speech_commands(root=None, train: bool = True, augment: bool = True) -> LabeledDataset:
    x, y, note = _tensors(str(_root(root)), bool(train))
    info = DatasetInfo(name="speech-commands", num_classes=len(WORDS), in_chans=1, image_size=BINS,
                       mean=(0.0,), std=(1.0,), classes=list(WORDS), note=note)
    return LabeledDataset(TensorDataset(x, y), info, y)
