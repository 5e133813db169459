"""Configs that refuse mistakes (issue 12, item 5): every key of an experiment config is checked at load time.

An unknown or misspelt key in any section is an error naming the key, the file and the closest valid key, in
`load_config`, in `python -m ray_jobs.sweep ... --check --set`, in `python -m ray_jobs.train ... --set` and in the
DVC train stage (`python -m experiments.stages train KEY`), before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from experiments import stages
from ray_jobs import sweep as sweep_cli
from ray_jobs import train as train_cli
from v2s_models import config, regnet_losses, varietysound_losses
from v2s_models.config import ConfigError, load_config, validate
from v2s_models.training import autoregressive, contrastive, gan_mel, gan_regnet, gan_varietysound, vocoder
from v2s_models.training.loop import build_solver

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs"
REGNET_DEBUG = CONFIGS / "regnet" / "debug.yaml"
VS_DEBUG = CONFIGS / "varietysound" / "debug.yaml"


def test_key_lists_match_what_the_solvers_read() -> None:
    """config.py's per-paradigm lists are the solvers' own (so a key a solver learns cannot be refused)."""
    for paradigm, module in (
        ("gan_mel", gan_mel),
        ("autoregressive", autoregressive),
        ("correlation", contrastive),
        ("vocoder", vocoder),
    ):
        assert set(config.DATA_KEYS[paradigm]) == set(module.DATA_KEYS), paradigm
    for paradigm, module in (("autoregressive", autoregressive), ("correlation", contrastive)):
        assert set(config.TRAIN_KEYS[paradigm]) == set(module.TRAIN_KEYS), paradigm
        assert set(config.LOSS_KEYS[paradigm]) == set(module.LOSS_KEYS), paradigm
    assert set(config.LOSS_KEYS["vocoder"]) == set(vocoder.LOSS_KEYS)
    # gan_mel: the generator's own system says which weights it reads (config asks it when a config loads)
    assert set(gan_regnet.RegnetGan.loss_keys) == set(regnet_losses.GENERATOR_LOSS_KEYS)
    assert set(gan_varietysound.VarietySoundGan.loss_keys) == set(
        varietysound_losses.PAPER_LOSS_WEIGHTS
    ) | set(varietysound_losses.OPTIONAL_LOSS_WEIGHTS)
    assert set(config.LOSS_KEYS["gan_mel"]) == {"gan", "mel", "silence", "adv", "mel_peak", "event_shape"}
    assert set(config.TRAIN_KEYS["gan_mel"]) == set(gan_mel.TRAIN_KEYS)
    assert gan_regnet.RegnetGan.train_keys == ()  # its options are the paradigm's


@pytest.mark.parametrize(
    ("path", "override", "bad", "closest"),
    [
        (REGNET_DEBUG, {"epohcs": 3}, "epohcs", "epochs"),
        (REGNET_DEBUG, {"optim.generator.weight_decy": 0.1}, "optim.generator.weight_decy", "weight_decay"),
        (REGNET_DEBUG, {"optim.generator.bettas": [0.5, 0.9]}, "optim.generator.bettas", "betas"),
        (REGNET_DEBUG, {"schedule.constant_epoch": 3}, "schedule.constant_epoch", "constant_epochs"),
        (REGNET_DEBUG, {"data.manifets": "x"}, "data.manifets", "manifest"),
        (REGNET_DEBUG, {"data.visual_prt": "all"}, "data.visual_prt", "visual_part"),
        (REGNET_DEBUG, {"scaling.num_worker": 2}, "scaling.num_worker", "num_workers"),
        (REGNET_DEBUG, {"train.artifact_clip": 2}, "train.artifact_clip", "artifact_clips"),
        (REGNET_DEBUG, {"train.max_steps_per_epok": 2}, "train.max_steps_per_epok", "max_steps_per_epoch"),
        (REGNET_DEBUG, {"tracking.experimnet": "x"}, "tracking.experimnet", "experiment"),
        (REGNET_DEBUG, {"losses.mell": 1.0}, "losses.mell", "mel"),
        (REGNET_DEBUG, {"model.generator.visual_dimm": 3}, "model.generator.visual_dimm", "visual_dim"),
        (REGNET_DEBUG, {"model.discriminator.chanels": 3}, "model.discriminator.chanels", "channels"),
        (VS_DEBUG, {"losses.advv": 1.0}, "losses.advv", "adv"),
        (
            VS_DEBUG,
            {"model.generator.use_backgrund": True},
            "model.generator.use_backgrund",
            "use_background",
        ),
        (REGNET_DEBUG, {"init_from": {"modle": "models:/regnet@champion"}}, "init_from.modle", "model"),
    ],
)
def test_misspelt_keys_are_named_with_the_closest(
    path: Path, override: dict[str, Any], bad: str, closest: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(path, override)
    msg = str(e.value)
    assert msg.startswith(f"{path}: {bad}: unknown key"), msg
    assert f"did you mean {closest!r}?" in msg, msg


def test_keys_of_another_paradigm_or_schedule_are_refused() -> None:
    """A key that exists elsewhere is still refused where it is not read (it would be silently ignored)."""
    with pytest.raises(ConfigError, match=r"train\.tbptt_chunk: unknown key"):
        load_config(REGNET_DEBUG, {"train.tbptt_chunk": 1024})  # autoregressive only
    with pytest.raises(ConfigError, match=r"schedule\.gamma: unknown key"):
        load_config(REGNET_DEBUG, {"schedule.name": "linear_decay", "schedule.gamma": 0.9})
    with pytest.raises(ConfigError, match=r"losses\.silence: unknown key"):
        load_config(VS_DEBUG, {"losses.silence": 1.0})  # REGNET's, not VarietySound's
    for key, value in (
        ("background_input", "shuffled"),
        ("pitch_shift_bins", 4),
        ("mel_peak_window", 4),
        ("temporal_warmup_epochs", 2),
    ):
        with pytest.raises(ConfigError, match=rf"train\.{key}: unknown key"):
            load_config(REGNET_DEBUG, {f"train.{key}": value})  # VarietySound's, not REGNET's
        assert load_config(VS_DEBUG, {f"train.{key}": value})["train"][key] == value
    with pytest.raises(
        ConfigError, match=r"schedule\.name: 'linear_decy' is not one of .*did you mean 'linear_decay'"
    ):
        load_config(REGNET_DEBUG, {"schedule.name": "linear_decy"})
    with pytest.raises(ConfigError, match=r"optim\.generatr: optimises 'generatr'.*did you mean 'generator'"):
        cfg = yaml.safe_load(REGNET_DEBUG.read_text())
        cfg["optim"]["generatr"] = cfg["optim"].pop("generator")
        validate(cfg, "x.yaml")


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"optim.generator.betas": [0.5]}, r"optim\.generator\.betas: must be two numbers"),
        ({"optim.generator.weight_decay": -1}, r"optim\.generator\.weight_decay: must be a number >= 0"),
        ({"scaling.cpus_per_worker": 0}, r"scaling\.cpus_per_worker: must be a positive number"),
        ({"init_from": {"freeze": ["generator"]}}, r"init_from\.model: must name a model"),
        (
            {"init_from": {"model": "models:/regnet@champion", "freeze": "gen"}},
            r"init_from\.freeze: must be a list",
        ),
        ({"init_from": "models:/regnet@champion"}, r"init_from: expected dict"),
    ],
)
def test_bad_values_are_named(override: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(REGNET_DEBUG, override)


def test_init_from_is_accepted() -> None:
    init = {"model": "models:/regnet@champion", "freeze": ["generator.visual_encoder", "discriminator"]}
    assert load_config(REGNET_DEBUG, {"init_from": init})["init_from"] == init
    assert load_config(REGNET_DEBUG, {"init_from": {"model": "0123abcd" * 4}})["init_from"]["model"]


SWEEP_CASES = [
    ("optim.generator.weight_decy=0.1", "weight_decy", "weight_decay"),
    ("model.generator.visual_dimm=2560", "visual_dimm", "visual_dim"),
    ("data.manifets=data/prepared/manifest.jsonl", "manifets", "manifest"),
]


@pytest.mark.parametrize(("assignment", "bad", "closest"), SWEEP_CASES)
def test_sweep_check_refuses_misspelt_set(
    assignment: str, bad: str, closest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m ray_jobs.sweep regnet_bottleneck --check --set KEY=VALUE` exits 2 naming the key."""
    assert sweep_cli.main(["regnet_bottleneck", "--check", "--set", assignment]) == 2
    err = capsys.readouterr().err
    assert (
        bad in err and f"did you mean {closest!r}" in err and "experiments/configs/regnet/demo.yaml" in err
    ), err


def test_sweep_check_accepts_a_correct_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep_cli.main(["regnet_bottleneck", "--check", "--set", "optim.generator.weight_decay=0.1"]) == 0
    capsys.readouterr()


def test_train_refuses_misspelt_set_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m ray_jobs.train CONFIG --set ...` exits 2 before Ray starts."""
    for assignment, bad, closest in SWEEP_CASES:
        assert train_cli.main([str(REGNET_DEBUG), "--set", assignment]) == 2
        err = capsys.readouterr().err
        assert bad in err and f"did you mean {closest!r}" in err and str(REGNET_DEBUG) in err, err


def test_dvc_train_stage_refuses_misspelt_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """params.yaml `train.experiments.KEY.set` goes through the same check (`python -m experiments.stages`)."""
    for assignment, bad, closest in SWEEP_CASES:
        key, value = assignment.split("=", 1)
        entry = {"config": str(REGNET_DEBUG), "set": {key: value}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"experiments": {"bad": entry}}}))
        assert stages.main(["train", "bad", "--root", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert bad in err and f"did you mean {closest!r}" in err and str(REGNET_DEBUG) in err, err
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "models").exists()


# ------------------------------------------------------------------- optimisers and schedules as components
def _lrs(
    optim_spec: dict[str, Any], schedule: dict[str, Any] | None, epochs: int = 6
) -> tuple[type, list[float]]:
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = config.build_optimizer(optim_spec, params)
    sched = config.build_lr_schedule(schedule, opt, epochs=epochs)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return type(opt), lrs


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            (
                {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
                {"name": "linear_decay", "constant_epochs": 2},
            ),
            (
                {"_component_": "torch.optim.Adam", "lr": 2e-4, "betas": [0.5, 0.999]},
                {"_component_": "v2s_models.components.linear_decay", "constant_epochs": 2},
            ),
        ),
        (
            ({"name": "adamw", "lr": 1e-3, "weight_decay": 0.01}, {"name": "exponential", "gamma": 0.9}),
            (
                {"_component_": "torch.optim.AdamW", "lr": 1e-3, "weight_decay": 0.01},
                {"_component_": "v2s_models.components.exponential", "gamma": 0.9},
            ),
        ),
        (({"name": "adam", "lr": 1e-3}, None), ({"_component_": "torch.optim.Adam", "lr": 1e-3}, None)),
    ],
)
def test_component_form_equals_the_named_form(old: tuple[Any, Any], new: tuple[Any, Any]) -> None:
    (cls_old, lrs_old), (cls_new, lrs_new) = _lrs(*old), _lrs(*new)
    assert cls_old is cls_new and lrs_old == lrs_new
    assert len(set(lrs_old)) > 1 or old[1] is None  # the schedule did something


def test_solver_builds_optimiser_and_schedule_components() -> None:
    cfg = load_config(
        REGNET_DEBUG,
        {
            "optim.generator": {"_component_": "torch.optim.AdamW", "lr": 1e-3, "weight_decay": 0.01},
            "schedule": {"_component_": "torch.optim.lr_scheduler.StepLR", "step_size": 2, "gamma": 0.5},
        },
    )
    solver = build_solver(cfg)
    opt = solver.optimizers["generator"]
    assert type(opt) is torch.optim.AdamW and opt.defaults["weight_decay"] == 0.01
    assert type(solver.optimizers["discriminator"]) is torch.optim.Adam  # the named form beside it
    for _ in range(2):
        solver.schedulers["generator"].step()
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        (
            {"optim.generator": {"_component_": "os.system", "lr": 1.0}},
            r"optim\.generator\._component_: 'os\.system' is not a registered optimiser",
        ),
        (
            {"optim.generator": {"_component_": "torch.optim.AdamW", "lr": 1e-3, "weight_decy": 0.1}},
            r"optim\.generator\.weight_decy: unknown key \(did you mean 'weight_decay'\?",
        ),
        (
            {"optim.generator": {"_component_": "torch.optim.Adamw", "lr": 1e-3}},
            r"did you mean 'torch\.optim\.AdamW'",
        ),
        (
            {"schedule": {"_component_": "torch.optim.lr_scheduler.CosineAnnealingLR"}},
            r"schedule\.T_max: missing",
        ),
        (
            {"schedule": {"_component_": "torch.optim.lr_scheduler.LambdaLR", "lr_lambda": "x"}},
            r"not a registered schedule",
        ),
        (
            {"schedule": {"_component_": "torch.optim.lr_scheduler.StepLR", "step_sise": 2}},
            r"schedule\.step_sise: unknown key \(did you mean 'step_size'",
        ),
    ],
)
def test_optimiser_and_schedule_components_are_checked(override: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(REGNET_DEBUG, override)
