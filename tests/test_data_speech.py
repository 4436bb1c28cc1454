"""Google Speech Commands from the official folder layout, its spectrograms against scipy's STFT, the speech
architectures, and MixupE Table 5 end to end on a tiny folder of WAV files written here."""

from __future__ import annotations

import csv
import io
import struct

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal
import torch

from msda_cli.data import build_dataset
from msda_cli.data.speech import WORDS, spectrogram
from msda_cli.errors import MsdaError
from msda_cli.models import build_model
from speechfiles import wave, write_speech

@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory):
    return write_speech(tmp_path_factory.mktemp("data") / "speech_commands")


def _oracle(samples: np.ndarray) -> np.ndarray:
    """GCommandsPytorch's spect_loader recipe with scipy: centred (reflect-padded) 320-sample periodic Hamming
    frames every 160 samples, |STFT|, log1p, 160 of the 161 bins, zero frames to 101, z-score (ddof 1)."""
    x = samples.astype(np.float64) / 32768
    window = scipy.signal.get_window("hamming", 320)
    _, _, z = scipy.signal.stft(np.pad(x, 160, mode="reflect"), fs=16000, window=window, nperseg=320,
                                noverlap=160, nfft=320, detrend=False, return_onesided=True, boundary=None,
                                padded=False, scaling="spectrum")
    spect = np.log1p(np.abs(z) * window.sum())[:160, :101]  # 'spectrum' scaling divides by the window's sum
    spect = np.pad(spect, ((0, 0), (0, 101 - spect.shape[1])))
    return (spect - spect.mean()) / spect.std(ddof=1)


def test_the_splits_are_the_official_lists(speech_dir):
    train = build_dataset("speech-commands", root=speech_dir, train=True)
    test = build_dataset("speech-commands", root=speech_dir.parent, train=False)  # DIR/speech_commands found
    assert train.info.num_classes == 30 and train.info.classes == list(WORDS) and len(WORDS) == 30
    assert len(test) == 30 and test.targets.tolist() == list(range(30))  # file 0 of each word, in class order
    assert len(train) == 30 and train.targets.tolist() == list(range(30))  # file 2: in neither list
    assert "learn" in train.info.note  # a word folder that is not v0.01's is named, not read
    x, y = train[5]
    assert x.shape == (1, 160, 101) and x.dtype == torch.float32 and y == 5


def test_spectrograms_equal_scipy_stft(speech_dir):
    train = build_dataset("speech-commands", root=speech_dir, train=True)
    test = build_dataset("speech-commands", root=speech_dir, train=False)
    for ds, c, k in ((train, 0, 2), (train, 7, 2), (test, 3, 0)):  # (0, 2) is the half-second file
        _, samples = scipy.io.wavfile.read(speech_dir / WORDS[c] / f"{c:04x}{k:04x}_nohash_0.wav")
        ours = ds[c][0][0].numpy()
        np.testing.assert_allclose(ours, _oracle(samples), rtol=0, atol=2e-4)
    short = train[0][0][0]
    assert (short[:, 51:] == short[0, -1]).all() and short[0, -1] < 0  # padded frames: the z-score of 0


def test_the_spectrogram_of_a_batch_is_that_of_each_wave():
    waves = torch.from_numpy(np.stack([wave(s) for s in range(3)]).astype(np.float32) / 32768)
    batch = spectrogram(waves)
    assert batch.shape == (3, 1, 160, 101)
    for i in range(3):
        torch.testing.assert_close(batch[i], spectrogram(waves[i:i + 1])[0])
    assert torch.equal(spectrogram(torch.zeros(1, 16000)), torch.zeros(1, 1, 160, 101))  # constant: zeros


def _header(rate=16000, channels=1, bits=16, frames=16000, fmt=1) -> bytes:
    data = frames * channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate,
            rate * channels * bits // 8, channels * bits // 8, bits) + b"data" + struct.pack("<I", data))


BAD_WAVS = {
    "rate": (_header(rate=8000, frames=8000) + bytes(16000), "8000 Hz"),
    "stereo": (_header(channels=2, frames=100) + bytes(400), "2 channels"),
    "8-bit": (_header(bits=8, frames=1000) + bytes(1000), "8-bit samples"),
    "truncated header": (_header()[:20], "not a readable WAV file"),
    "huge size": (_header(frames=2**30) + bytes(100), "the header declares 1073741824 samples"),
    "truncated data": (_header(frames=16000) + bytes(1000) + b"x", "more than the file's"),
    "truncated tail": (_header(frames=16000) + bytes(31990), "truncated: 15995 of the 16000 samples"),
    "float": (_header(fmt=3, bits=32, frames=10) + bytes(40), "not a readable WAV file"),
    "too short": (_header(frames=100) + bytes(200), "100 samples, fewer than the 161"),
}


@pytest.mark.parametrize("case", sorted(BAD_WAVS))
def test_an_invalid_wav_is_one_line_naming_it(tmp_path, case):
    root = write_speech(tmp_path / "sc", per_word=2)
    content, fragment = BAD_WAVS[case]
    (root / "dog" / "0003_nohash_0.wav").write_bytes(content)  # in neither list: a training file
    with pytest.raises(MsdaError, match="0003_nohash_0.wav") as e:
        build_dataset("speech-commands", root=root, train=True)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_missing_folders_and_listed_files(tmp_path):
    with pytest.raises(MsdaError, match="data not found; expected validation_list.txt and testing_list.txt"):
        build_dataset("speech-commands", root=tmp_path, train=True)
    root = write_speech(tmp_path / "sc", per_word=2)
    (root / "testing_list.txt").write_text("bed/nothere_nohash_0.wav\n")
    with pytest.raises(MsdaError, match="testing_list.txt names bed/nothere_nohash_0.wav"):
        build_dataset("speech-commands", root=root, train=False)
    for f in (root / "zero").iterdir():
        f.unlink()
    (root / "zero").rmdir()
    with pytest.raises(MsdaError, match="lacks the word folder"):
        build_dataset("speech-commands", root=root, train=True)


@pytest.mark.parametrize("arch, flat", [("lenet", 16280), ("vgg11", 7680), ("vgg13", 7680)])
def test_the_speech_architectures_take_a_spectrogram(arch, flat):
    model = build_model(arch, num_classes=30, in_chans=1)
    linear = [m for m in model.head if isinstance(m, torch.nn.Linear)][0]
    assert linear.in_features == flat  # GCommandsPytorch's Linear(16280, 1000) / Linear(7680, 512)
    out = model(torch.randn(2, 1, 160, 101))
    assert out.shape == (2, 30) and len(model.manifold_layers()) == (2 if arch == "lenet" else 5)
    out.sum().backward()


def test_a_bad_wav_stops_msda_train_in_one_line_with_nothing_written(msda, tmp_path, db_path, isolated_results):
    from test_bad_input import _nothing_written, _one_line

    root = write_speech(tmp_path / "sc", per_word=2)
    (root / "cat" / "0003_nohash_0.wav").write_bytes(BAD_WAVS["stereo"][0])
    r = msda("train", "--recipe", "speech-vanilla", "--data-dir", root, "--epochs", "1")
    _one_line(r, "speech-commands: ", "2 channels")
    _nothing_written(db_path, isolated_results)


def test_vanilla_mixup_and_mixupe_train_and_fill_mixupe_5(msda, speech_dir, db_path):
    for method in ("vanilla", "mixup", "mixupe"):
        r = msda("train", "--recipe", f"speech-{method}", "--data-dir", speech_dir, "--epochs", "1",
                 "--set", "batch_size=10")
        assert r.code == 0, r.stderr
    r = msda("report", "--table", "mixupe-5", "--paper", "--where", "epochs=1", "--where", "batch_size=10",
             "--format", "csv")
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(row["Architecture"], row["column"]) for row in rows if row["n"] == "1"] == [
        ("LeNet", "ERM"), ("LeNet", "Mixup"), ("LeNet", "MixupE")]
    assert {row["paper"] for row in rows if row["Architecture"] == "VGG-13"} == {"5.77", "4.68", "3.84"}


def test_mixupe_5_renders_with_the_published_values(msda, speech_dir):
    r = msda("report", "--table", "mixupe-5", "--paper")
    assert r.code == 0, r.stderr
    for value in ("10.43", "10.12", "10.02", "6.04", "4.63", "3.93", "5.77", "4.68", "3.84"):
        assert value in r.stdout
    r = msda("reproduce", "--table", "mixupe-5", "--dry-run", "--seeds", "0", "--data-dir", speech_dir)
    assert r.code == 0, r.stderr
    assert "9 planned runs" in r.stdout and "--arch vgg13" in r.stdout
