"""Per-second appearance and log-mel audio features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from v2s_models.media.persecond import AUDIO_BANDS, log_mel_per_second, per_second_features
from v2s_models.media.visual import build_extractor

SAMPLE_RATE = 16000


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def extractor():  # noqa: ANN201 - a VisualExtractor
    return build_extractor("random_projection", image_size=32)


def frames(num: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(num, 36, 48, 3), dtype=np.uint8)


def test_shapes_for_whole_seconds(extractor) -> None:  # noqa: ANN001
    audio = np.random.default_rng(1).normal(0, 0.1, 3 * SAMPLE_RATE + 500).astype(np.float32)
    out = per_second_features(frames(3), audio, sample_rate=SAMPLE_RATE, extractor=extractor)
    assert set(out) == {"appearance", "audio"}
    assert out["appearance"].shape == (3, extractor.dim) and out["appearance"].dtype == np.float32
    assert out["audio"].shape == (3, AUDIO_BANDS) and out["audio"].dtype == np.float32
    assert np.isfinite(out["audio"]).all()
    np.testing.assert_allclose(out["appearance"], extractor(frames(3)), rtol=1e-5, atol=1e-6)


def test_one_frame_fewer_or_short_audio(extractor) -> None:  # noqa: ANN001
    audio = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    out = per_second_features(frames(3), audio, sample_rate=SAMPLE_RATE, extractor=extractor)
    assert out["audio"].shape == (3, AUDIO_BANDS)
    short = np.zeros(SAMPLE_RATE // 3, dtype=np.float32)  # under a second: padded to one
    out = per_second_features(frames(1), short, sample_rate=SAMPLE_RATE, extractor=extractor)
    assert out["appearance"].shape == (1, extractor.dim) and out["audio"].shape == (1, AUDIO_BANDS)


def test_audio_follows_the_content_of_each_second() -> None:
    """A 1 kHz tone in second 0 and silence in second 1: band energy near 1 kHz drops in second 1."""
    sample_rate = 22050
    t = np.arange(sample_rate) / sample_rate
    audio = np.concatenate([0.5 * np.sin(2 * np.pi * 1000 * t), np.zeros(sample_rate)]).astype(np.float32)
    features = log_mel_per_second(audio, sample_rate=sample_rate, num_seconds=2)
    assert features.shape == (2, AUDIO_BANDS)
    loudest = int(features[0].argmax())
    assert features[0, loudest] - features[1, loudest] > 3.0, f"{features[:, loudest]=}"
    # Silence is log(offset); the first STFT windows of second 1 still overlap the tone, hence the tolerance.
    np.testing.assert_allclose(features[1], np.log(0.01), atol=0.2)


def test_bad_inputs_raise(extractor) -> None:  # noqa: ANN001
    audio = np.zeros(5 * SAMPLE_RATE, dtype=np.float32)
    with pytest.raises(ValueError, match="one frame per second"):
        per_second_features(frames(2), audio, sample_rate=SAMPLE_RATE, extractor=extractor)
    with pytest.raises(ValueError, match="mono"):
        per_second_features(
            frames(5), np.zeros((2, 5 * SAMPLE_RATE)), sample_rate=SAMPLE_RATE, extractor=extractor
        )
    with pytest.raises(ValueError, match="float"):
        per_second_features(frames(5), audio.astype(np.int16), sample_rate=SAMPLE_RATE, extractor=extractor)
    with pytest.raises(ValueError, match="empty"):
        per_second_features(frames(0), audio, sample_rate=SAMPLE_RATE, extractor=extractor)
