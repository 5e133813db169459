"""Tests for the gan_mel paradigm (v2s_models/training/gan_mel.py) and the artifact writers (artifacts.py).

They train the shipped debug configs (experiments/configs/{regnet,varietysound}/debug.yaml) through the plain
loop on the prepared tiny SynthFoley data: the tiny built-in set, prepared once per test session by tests/conftest.py.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from v2s_models.config import load_config
from v2s_models.data import MelVisualDataset, collate_dicts, read_manifest
from v2s_models.training import artifacts
from v2s_models.training.gan_mel import GanMelSolver, frame_energy, onset_strength, pearson
from v2s_models.training.gan_varietysound import shift_mel_bins
from v2s_models.training.loop import build_solver, fit, load_checkpoint

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs"
MANIFEST = "data/prepared/manifest.jsonl"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def tiny_root(tiny_data_root: Path) -> Path:
    """The prepared tiny data set (tests/conftest.py builds it once per session)."""
    return tiny_data_root


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _cfg(name: str, **changes: Any) -> dict[str, Any]:
    cfg = load_config(CONFIGS / name / "debug.yaml")
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node[k]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return cfg


_DELETE = object()
SYSTEMS = ["regnet", "varietysound"]


def _train(cfg: dict[str, Any], root: Path, **kwargs: Any) -> tuple[GanMelSolver, dict[str, float]]:
    solver = build_solver(cfg, root=root)
    assert isinstance(solver, GanMelSolver)
    return solver, fit(solver, cfg, **kwargs)


# ---------------------------------------------------------------------------------------- training runs


@pytest.mark.parametrize("system", SYSTEMS)
def test_debug_config_trains_through_fit(system: str, tiny_root: Path, tmp_path: Path) -> None:
    cfg = _cfg(system)
    solver, metrics = _train(cfg, tiny_root, checkpoint_dir=tmp_path, epochs=1)
    assert solver.system == system
    assert metrics["epoch"] == 1
    # the tiny data has no val split: validation ran on the test split and says so
    assert solver.val_split_used == "test"
    for key in ("mel_l1", "mel_mse", "energy_corr", "onset_corr", "onset_corr_mismatched"):
        assert math.isfinite(metrics[f"val/test_split/{key}"]), key
    assert math.isfinite(metrics["train/g_total"]) and metrics["train/g_mel"] > 0
    if system == "regnet":
        assert 0.0 < metrics["train/d_real_prob"] < 1.0 and math.isfinite(metrics["train/d"])
    else:
        assert metrics["train/d_tdad"] > 0 and metrics["train/d_mel"] > 0 and metrics["train/g_adv_tdad"] > 0
        assert metrics["val/test_split/ref_other_fraction"] == 0.0  # one test clip per category
    assert (tmp_path / "checkpoint.pt").is_file()
    assert solver.inference_modules() == ["generator"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_same_seed_same_losses(system: str, tiny_root: Path) -> None:
    cfg = _cfg(system)
    _, first = _train(cfg, tiny_root, epochs=1)
    _, second = _train(cfg, tiny_root, epochs=1)
    assert first == second
    _, other_seed = _train({**cfg, "seed": 1}, tiny_root, epochs=1)
    assert other_seed["train/g_total"] != first["train/g_total"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_resume_from_checkpoint_matches_straight_run(system: str, tiny_root: Path, tmp_path: Path) -> None:
    cfg = _cfg(system)
    _, straight = _train(cfg, tiny_root, checkpoint_dir=tmp_path / "straight", epochs=2)
    _, first = _train(cfg, tiny_root, checkpoint_dir=tmp_path / "resumed", epochs=1)
    assert load_checkpoint(tmp_path / "resumed")["epoch"] == 1
    resumed_solver, resumed = _train(cfg, tiny_root, checkpoint_dir=tmp_path / "resumed", epochs=2)
    assert resumed == straight
    assert first["train/g_total"] != straight["train/g_total"]  # the second epoch really ran
    a = load_checkpoint(tmp_path / "straight")["solver"]["modules"]["generator"]
    b = resumed_solver.unwrapped("generator").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ablation_configs_train(tiny_root: Path) -> None:
    no_mel_d = _cfg(
        "varietysound", **{"model.mel_discriminator": _DELETE, "optim.mel_discriminator": _DELETE}
    )
    solver, metrics = _train(no_mel_d, tiny_root, epochs=1, max_steps_per_epoch=1)
    assert "mel_discriminator" not in solver.modules and "train/d_mel" not in metrics
    assert metrics["train/g_adv_mel"] == 0.0 and metrics["train/g_adv_tdad"] > 0

    no_tdad = _cfg("varietysound", **{"model.tdad": _DELETE, "optim.tdad": _DELETE})
    solver, metrics = _train(no_tdad, tiny_root, epochs=1, max_steps_per_epoch=1)
    assert "tdad" not in solver.modules and "train/d_tdad" not in metrics
    assert metrics["train/g_adv_tdad"] == 0.0 and metrics["train/g_adv_mel"] > 0


# ---------------------------------------------------------------------------------- vision-only validation


class _ReplaceMel(Dataset):
    """The same items with the mel of the clips in `clip_ids` (all if None) replaced by noise."""

    def __init__(self, base: Dataset, clip_ids: set[str] | None = None) -> None:
        self.base, self.clip_ids = base, clip_ids

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.base[i])
        if self.clip_ids is None or item["clip_id"] in self.clip_ids:
            item["mel"] = torch.rand(item["mel"].shape, generator=torch.Generator().manual_seed(i))
        return item


def _generated(solver: GanMelSolver, dataset: Dataset) -> dict[str, Any]:
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate_dicts)
    out: dict[str, Any] = {}
    for batch in solver.generate_batches(loader):
        for i, cid in enumerate(batch["clip_id"]):
            out[cid] = (batch["generated"][i], batch["reference"][i])
    return out


def test_regnet_validation_does_not_read_the_real_mel(tiny_root: Path) -> None:
    cfg = _cfg("regnet")
    solver, _ = _train(cfg, tiny_root, epochs=1)
    val = MelVisualDataset(read_manifest(MANIFEST, split="test", root=tiny_root, max_clips=4), root=tiny_root)
    clean, noisy = _generated(solver, val), _generated(solver, _ReplaceMel(val))
    assert clean.keys() == noisy.keys()
    for cid in clean:
        assert torch.equal(clean[cid][0], noisy[cid][0]), cid
    loader = DataLoader(val, batch_size=2, collate_fn=collate_dicts)
    noisy_loader = DataLoader(_ReplaceMel(val), batch_size=2, collate_fn=collate_dicts)
    assert solver.validate(loader)["test_split/mel_l1"] != solver.validate(noisy_loader)["test_split/mel_l1"]

    # the check can fail: in training the regularizer reads the real mel, so the same swap changes the output
    G = solver.unwrapped("generator").train()
    item, noise = val[0], torch.randn(1, G.noise_dim)
    visual = item["visual"][None]
    a = G(visual, item["mel"][None], noise).mel_postnet
    b = G(visual, torch.rand_like(item["mel"])[None], noise).mel_postnet
    assert not torch.allclose(a, b)


def test_varietysound_validation_uses_another_clips_reference(tiny_root: Path) -> None:
    cfg = _cfg("varietysound")
    solver, _ = _train(cfg, tiny_root, epochs=1, max_steps_per_epoch=1)
    # train + test: two clips per category, so every clip gets the other one's mel as reference
    rows = [r for r in read_manifest(MANIFEST, split=["train", "test"], root=tiny_root)]
    rows = [r for r in rows if r["category"] in {"cough", "drum"}]
    assert len(rows) == 4
    val = MelVisualDataset(rows, root=tiny_root)
    clean = _generated(solver, val)
    for cid, (_, ref) in clean.items():
        assert ref != cid and ref.split("/")[0] == cid.split("/")[0]
    victim = rows[0]["clip_id"]
    noisy = _generated(solver, _ReplaceMel(val, {victim}))
    assert torch.equal(clean[victim][0], noisy[victim][0])  # its own mel is not an input
    user = next(cid for cid, (_, ref) in clean.items() if ref == victim)
    assert not torch.equal(clean[user][0], noisy[user][0])  # the clip whose reference it is changes
    metrics = solver.validate(DataLoader(val, batch_size=2, collate_fn=collate_dicts))
    assert metrics["test_split/ref_other_fraction"] == 1.0


def test_varietysound_real_background_validation(tiny_root: Path) -> None:
    """train.val_background: real (Table 8's "w Bi") feeds the clip's own mel as background: with it, replacing
    a clip's mel changes that clip's output; with the default (silence) it does not (test above)."""
    solver = build_solver(_cfg("varietysound", **{"train.val_background": "real"}), root=tiny_root)
    rows = [r for r in read_manifest(MANIFEST, split=["train", "test"], root=tiny_root)]
    val = MelVisualDataset([r for r in rows if r["category"] in {"cough", "drum"}], root=tiny_root)
    victim = val.rows[0]["clip_id"]
    clean, noisy = _generated(solver, val), _generated(solver, _ReplaceMel(val, {victim}))
    assert not torch.equal(clean[victim][0], noisy[victim][0])
    silent = build_solver(_cfg("varietysound"), root=tiny_root)  # same seed: the same weights
    assert not torch.equal(_generated(silent, val)[victim][0], clean[victim][0])

    with pytest.raises(ValueError, match="train.val_background"):
        build_solver(_cfg("varietysound", **{"train.val_background": "noise"}), root=tiny_root)
    with pytest.raises(ValueError, match="train.val_background: 'real' needs a VarietySound"):
        build_solver(_cfg("regnet", **{"train": {"val_background": "real"}}), root=tiny_root)
    no_bg = {"train.val_background": "real", "model.generator.use_background": False}
    with pytest.raises(ValueError, match="use_background"):
        build_solver(_cfg("varietysound", **no_bg), root=tiny_root)


def test_validation_on_a_real_val_split(tiny_root: Path) -> None:
    """With a non-empty val split the metric names carry no split prefix."""
    cfg = _cfg("regnet", **{"data.val_split": "test"})
    solver = build_solver(cfg, root=tiny_root)
    _, val = solver.datasets()
    metrics = solver.validate(DataLoader(val, batch_size=4, collate_fn=collate_dicts))
    assert set(metrics) == {
        "mel_l1",
        "mel_mse",
        "energy_corr",
        "onset_corr",
        "onset_corr_mismatched",
        "mcd_db",
    }
    assert metrics["mcd_db"] > 0.0  # the evaluation suite's MCD of generated vs real mel (untrained: far)


# --------------------------------------------------------------------------------------------- artifacts


def _stream_seconds(path: Path) -> dict[str, float]:
    import av

    with av.open(str(path)) as f:
        return {s.type: float(s.duration * s.time_base) for s in f.streams}


def _fps(path: Path) -> float:
    import av

    with av.open(str(path)) as f:
        return float(f.streams.video[0].average_rate)


@pytest.mark.parametrize("system", SYSTEMS)
def test_artifacts_are_written(system: str, tiny_root: Path, tmp_path: Path) -> None:
    import soundfile as sf

    cfg = _cfg(system)
    solver, _ = _train(cfg, tiny_root, epochs=1, max_steps_per_epoch=1)
    paths = solver.write_artifacts(tmp_path / "art", None)
    by_ext: dict[str, list[Path]] = {}
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0, p
        by_ext.setdefault(p.suffix, []).append(p)
    assert {k: len(v) for k, v in by_ext.items()} == {".png": 2, ".wav": 2, ".mp4": 2}
    for wav in by_ext[".wav"]:
        info = sf.info(wav)
        assert (info.samplerate, info.frames) == (22050, 860 * 256)
    categories = {p.name.split("__")[0] for p in by_ext[".mp4"]}
    assert len(categories) == 2  # the clips are taken across categories
    for mp4 in by_ext[".mp4"]:
        seconds = _stream_seconds(mp4)
        assert abs(seconds["audio"] - seconds["video"]) <= 1.0 / _fps(mp4), seconds


@pytest.mark.parametrize("copy_video", [True, False])
def test_mux_matches_the_video_duration(tiny_root: Path, tmp_path: Path, copy_video: bool) -> None:
    row = read_manifest(MANIFEST, split="test", root=tiny_root)[0]
    video = tiny_root / row["source_path"]
    duration = artifacts.video_duration(video)
    for seconds in (duration + 3.0, duration / 2):  # longer audio is cut, shorter is padded with silence
        wav = 0.1 * np.sin(np.arange(int(seconds * 22050)) * 0.05).astype(np.float32)
        out = artifacts.mux_audio_onto_video(video, wav, 22050, tmp_path / "x.mp4", copy_video=copy_video)
        got = _stream_seconds(out)
        assert abs(got["audio"] - got["video"]) <= 1.0 / _fps(out), got
        assert abs(got["video"] - duration) <= 1.0 / _fps(out), got
    with pytest.raises(FileNotFoundError, match="not found"):
        artifacts.mux_audio_onto_video(tmp_path / "missing.mp4", wav, 22050, tmp_path / "y.mp4")


def test_artifact_selection_takes_categories_in_turn() -> None:
    rows = [{"clip_id": f"{c}/{c}_{i}", "category": c} for c in ("a", "b", "c") for i in range(3)]
    rows = rows[:7]  # c has one clip

    class Rows(Dataset):
        def __init__(self) -> None:
            self.rows = rows

    solver = build_solver(_cfg("regnet", **{"train.artifact_clips": 5}))
    assert solver.artifact_selection(DataLoader(Rows())) == ["a/a_0", "b/b_0", "c/c_0", "a/a_1", "b/b_1"]


def test_plot_and_wav_helpers(tmp_path: Path) -> None:
    mel = torch.rand(80, 64)
    png = artifacts.plot_mel_comparison(tmp_path / "m.png", mel, mel * 0.5, title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="generated"):
        artifacts.plot_mel_comparison(tmp_path / "bad.png", torch.rand(80))
    with pytest.raises(ValueError, match="mono"):
        artifacts.write_wav(tmp_path / "bad.wav", np.zeros((2, 10)), 22050)
    assert artifacts.safe_name("cough/cough_0000") == "cough__cough_0000"


# -------------------------------------------------------------------------------------- config errors


def test_visual_dim_mismatch_names_the_config_key(tiny_root: Path) -> None:
    cfg = _cfg("regnet", **{"model.generator.visual_dim": 16, "model.discriminator.visual_dim": 16})
    with pytest.raises(ValueError, match=r"model\.generator\.visual_dim is 16 .* 2560"):
        build_solver(cfg, root=tiny_root).datasets()
    cfg = _cfg("varietysound", **{"data.visual_part": "motion"})
    with pytest.raises(ValueError, match=r"model\.generator\.video_dim is 2560 .* 1280-d"):
        build_solver(cfg, root=tiny_root).datasets()


def test_bad_solver_config_keys_are_named(tiny_root: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.manifets"):
        build_solver(_cfg("regnet", **{"data.manifets": "x"}), root=tiny_root).datasets()
    with pytest.raises(ValueError, match=r"model\.discriminator: missing"):
        build_solver(_cfg("regnet", **{"model.discriminator": _DELETE, "optim.discriminator": _DELETE}))
    with pytest.raises(ValueError, match=r"optim\.tdad: missing"):
        build_solver(_cfg("varietysound", **{"optim.tdad": _DELETE}))
    with pytest.raises(ValueError, match=r"losses: .*gan"):
        build_solver(_cfg("regnet", losses={"mel": 1.0}))
    with pytest.raises(ValueError, match=r"losses: .*mel, adv"):
        build_solver(_cfg("varietysound", losses={"mel": 1.0, "adv": 1.0, "gan": 1.0}))
    with pytest.raises(ValueError, match=r"model\.tdad: not a regnet component"):
        cfg = _cfg("regnet")
        cfg["model"]["tdad"] = copy.deepcopy(_cfg("varietysound")["model"]["tdad"])
        build_solver(cfg)
    with pytest.raises(ValueError, match=r"train\.tdad_shift"):
        build_solver(_cfg("varietysound", **{"train.tdad_shift": 5}))


# ----------------------------------------------------------------------------------- mixed precision hook


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("system", SYSTEMS)
def test_autocast_hook_runs_steps_in_bfloat16(system: str, tiny_root: Path) -> None:
    cfg = _cfg(system)
    results = {}
    for amp in (None, torch.bfloat16):
        solver = build_solver(cfg, root=tiny_root)
        train, _ = solver.datasets()
        batch = collate_dicts([train[0], train[1]])
        solver.amp_dtype = amp
        solver.train(True)
        torch.manual_seed(0)
        # oneDNN has no bf16 LSTM on every CPU; the native kernels run it (a GPU uses cuDNN under the same hook)
        with torch.backends.mkldnn.flags(enabled=False):
            results[amp] = solver.train_step(batch)
    full, half = results[None], results[torch.bfloat16]
    assert all(math.isfinite(v) for v in half.values()), half
    assert half["g_mel"] != full["g_mel"]  # the forward passes really ran in bfloat16 ...
    assert half["g_mel"] == pytest.approx(full["g_mel"], rel=0.05)  # ... and computed the same thing
    solver.amp_dtype = torch.float16
    with pytest.raises(ValueError, match="bfloat16"):
        solver.train_step(batch)


# ------------------------------------------------------------------------------------- alignment proxy


def test_onset_proxy_rewards_aligned_events() -> None:
    L = 256
    events = torch.zeros(L)
    events[[20, 90, 150, 230]] = 1.0
    envelope = torch.zeros(L)
    for t in range(L):  # an attack and an exponential decay after each event
        envelope[t] = sum(math.exp(-(t - e) / 6.0) for e in (20, 90, 150, 230) if t >= e)
    real = (0.1 + 0.8 * envelope.clamp(max=1.0)).expand(1, 80, L)
    shifted = real.roll(37, dims=2)
    assert frame_energy(real).shape == (1, L)
    assert onset_strength(real, pool=4).shape == (1, math.ceil((L - 1) / 4))
    aligned = pearson(onset_strength(real * 0.7 + 0.05, pool=4), onset_strength(real, pool=4)).item()
    misaligned = pearson(onset_strength(shifted, pool=4), onset_strength(real, pool=4)).item()
    assert aligned == pytest.approx(1.0, abs=1e-5) and misaligned < 0.2
    flat = torch.full((1, 80, L), 0.3)
    assert pearson(onset_strength(flat, pool=4), onset_strength(real, pool=4)).item() == 0.0
    with pytest.raises(ValueError, match="pearson"):
        pearson(torch.zeros(3), torch.zeros(3))


def test_shipped_gan_mel_configs_match_the_data() -> None:
    """Paper configs keep the papers' sizes but read our 2560-d features; demo/debug configs too."""
    for path in sorted(CONFIGS.glob("*/*.yaml")):
        cfg = load_config(path)
        if cfg["paradigm"] != "gan_mel":
            continue
        for name, comp in cfg["model"].items():
            for key in ("visual_dim", "video_dim"):
                if key in comp:
                    assert comp[key] == 2560, f"{path}: model.{name}.{key}"
    paper = load_config(CONFIGS / "regnet" / "paper.yaml")
    assert paper["losses"] == {"gan": 1.0, "mel": 10000.0} and paper["batch_size"] == 8
    assert paper["epochs"] == 1000 and paper["schedule"] == {"name": "linear_decay", "constant_epochs": 100}
    paper = load_config(CONFIGS / "varietysound" / "paper.yaml")
    assert paper["losses"] == {"mel": 10000.0, "adv": 1.0} and paper["batch_size"] == 48
    assert paper["epochs"] == 500
    assert all(o["name"] == "adamw" and o["eps"] == 1.0e-8 for o in paper["optim"].values())


def test_varietysound_shuffled_background_keeps_the_frames_and_drops_their_order(tiny_root: Path) -> None:
    """train.background_input: shuffled (not in the paper) hands the background encoder the clip's own frames in
    a random order, so the background cannot carry the clip's timing; `own` (the paper) hands it the mel."""
    cfg = _cfg("varietysound", **{"train.background_input": "shuffled", "losses.mel_peak": 1.0})
    solver = build_solver(cfg, root=tiny_root)
    assert solver.gan.mel_peak_window == solver.modules["generator"].upsample_factor
    mel = torch.rand(2, 80, 64)
    torch.manual_seed(0)
    shuffled = solver.gan._training_background(mel)
    assert not torch.equal(shuffled, mel)
    for b in range(2):  # every frame once, whole (its bins together)
        assert torch.equal(shuffled[b].T[shuffled[b][0].argsort()], mel[b].T[mel[b][0].argsort()])
    own = build_solver(_cfg("varietysound"), root=tiny_root)
    assert own.gan._training_background(mel) is mel
    _, metrics = _train(cfg, tiny_root)
    assert math.isfinite(metrics["train/g_mel_peak"])

    for bad in ({"train.background_input": "reversed"}, {"train.mel_peak_window": 0}, {"losses.peak": 1.0}):
        with pytest.raises(ValueError, match=r"train.background_input|train.mel_peak_window|losses"):
            build_solver(_cfg("varietysound", **bad), root=tiny_root)


def test_shift_mel_bins_moves_each_clip_by_its_own_whole_number_of_bins() -> None:
    """train.pitch_shift_bins (not in the paper): every clip's mel moves along the mel axis by one shift drawn from
    [-K, K]; the moved bins are the clip's own, and the bins left empty take the clip's lowest value."""
    torch.manual_seed(0)
    mel = torch.rand(16, 80, 7) + 1.0  # every value in [1, 2): the fill (the clip's minimum) is found below
    shifted = shift_mel_bins(mel, 4)
    seen = set()
    for b in range(16):
        matches = [
            k
            for k in range(-4, 5)
            if torch.equal(shifted[b, max(k, 0) : 80 + min(k, 0)], mel[b, max(-k, 0) : 80 - max(k, 0)])
        ]
        assert len(matches) == 1, f"clip {b}: not one whole-bin shift of the input ({matches})"
        k = matches[0]
        seen.add(k)
        empty = shifted[b, :k] if k > 0 else shifted[b, 80 + k :]
        assert torch.equal(empty, torch.full_like(empty, float(mel[b].min())))
    assert len(seen) > 3  # the shifts differ between clips


def test_varietysound_pitch_shift_gives_target_and_reference_the_same_shifted_mel(
    tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With train.pitch_shift_bins the step's target, timbre reference and background input are one shifted mel,
    so the shift can only be read from the reference; the video is unchanged. Bad values are refused by name."""
    from v2s_models.training import gan_varietysound

    cfg = _cfg("varietysound", **{"train.pitch_shift_bins": 6, "model.generator.use_background": True})
    solver = build_solver(cfg, root=tiny_root)
    seen: dict[str, Tensor] = {}
    real_loss = gan_varietysound.generator_loss

    def spy_loss(fake: Tensor, target: Tensor, **kw: Any):
        seen["target"] = target
        return real_loss(fake, target, **kw)

    monkeypatch.setattr(gan_varietysound, "generator_loss", spy_loss)
    generator = solver.modules["generator"]
    hook = generator.register_forward_pre_hook(
        lambda _m, args: seen.update(visual=args[0], reference=args[1], background=args[2])
    )
    torch.manual_seed(3)
    mel = torch.rand(4, 80, generator.upsample_factor * 32)
    visual = torch.rand(4, 32, generator.video_dim)
    solver.gan.train_step(visual, mel)
    hook.remove()
    assert seen["reference"] is seen["target"] and seen["visual"] is visual
    assert not torch.equal(seen["target"], mel)  # 4 clips drawn from 13 shifts: some moved (seed 3)
    assert sorted(seen["background"][0].sum(0).tolist()) == pytest.approx(
        sorted(seen["target"][0].sum(0).tolist())
    )
    for bad in (-1, 40, 2.5, True):
        with pytest.raises(ValueError, match="train.pitch_shift_bins"):
            build_solver(_cfg("varietysound", **{"train.pitch_shift_bins": bad}), root=tiny_root)


def test_varietysound_temporal_warmup_gives_silence_to_the_other_encoders_for_its_epochs(
    tiny_root: Path,
) -> None:
    """train.temporal_warmup_epochs: N (not in the paper): the first N epochs hand the acoustic and background
    encoders silence, then the clip's mel; counted by the schedule, so it survives a resume."""
    cfg = _cfg("varietysound", **{"train.temporal_warmup_epochs": 1, "model.generator.use_background": True})
    solver = build_solver(cfg, root=tiny_root)
    generator = solver.modules["generator"]
    seen: list[tuple[Tensor, Tensor]] = []
    hook = generator.register_forward_pre_hook(lambda _m, args: seen.append((args[1], args[2])))
    torch.manual_seed(0)
    mel = torch.rand(2, 80, generator.upsample_factor * 32)
    visual = torch.rand(2, 32, generator.video_dim)
    solver.gan.train_step(visual, mel)
    reference, background = seen[-1]
    assert torch.equal(reference, torch.full_like(mel, generator.silence_value)) and background is reference
    solver.end_epoch()
    assert not solver.gan.in_temporal_warmup
    resumed = build_solver(cfg, root=tiny_root)
    resumed.load_state_dict(solver.state_dict())
    assert not resumed.gan.in_temporal_warmup
    solver.gan.train_step(visual, mel)
    hook.remove()
    reference, background = seen[-1]
    assert reference is mel and not torch.equal(background, torch.full_like(mel, generator.silence_value))
    assert not build_solver(_cfg("varietysound"), root=tiny_root).gan.in_temporal_warmup  # off by default
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="train.temporal_warmup_epochs"):
            build_solver(_cfg("varietysound", **{"train.temporal_warmup_epochs": bad}), root=tiny_root)
