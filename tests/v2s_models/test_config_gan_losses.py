"""gan_mel's `losses` keys come from the generator's own GanSystem (issue 12, items 5 and 7).

`config.validate` asks the system registered for the class a config's generator builds (`loss_keys`), so a user's
system with a loss of its own name (the toy's `l2`, tests/toy/model.py) loads, and a misspelt key is refused at
load time naming it and the closest key, as for the built-in systems.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from tests.toy.model import TRUSTED_PREFIX, ToyGan, ToyMelGenerator
from v2s_models import components
from v2s_models.config import ConfigError, load_config, validate
from v2s_models.training.loop import build_solver

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "toy" / "toy.yaml"
REGNET_DEBUG = REPO / "experiments" / "configs" / "regnet" / "debug.yaml"


@pytest.fixture
def trusted_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(components.TRUSTED_ENV, TRUSTED_PREFIX)


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Names registered in this process by a test (unregistered afterwards)."""
    names: list[str] = []
    yield names
    for name in names:
        components.unregister(name)


def test_a_loss_of_the_user_systems_own_name_loads(trusted_toy: None) -> None:
    cfg = load_config(TOY)
    assert cfg["losses"] == {"mel": 1.0, "l2": 1.0, "adv": 0.1}
    assert "l2" in ToyGan.loss_keys


@pytest.mark.parametrize(("bad", "closest"), [("l22", "l2"), ("mell", "mel"), ("silence", None)])
def test_a_misspelt_loss_of_a_user_system_is_named(trusted_toy: None, bad: str, closest: str | None) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(TOY, {f"losses.{bad}": 1.0})
    msg = str(e.value)
    assert msg.startswith(f"{TOY}: losses.{bad}: unknown key"), msg
    assert "known: adv, l2, mel" in msg, msg  # the toy's keys, not the built-in systems'
    if closest is not None:
        assert f"did you mean {closest!r}?" in msg, msg


def test_the_user_systems_key_is_refused_for_a_built_in_generator() -> None:
    with pytest.raises(ConfigError, match=r"losses\.l2: unknown key .*known: gan, mel, silence\)"):
        load_config(REGNET_DEBUG, {"losses.l2": 1.0})


def test_the_toy_solver_reads_its_own_loss(trusted_toy: None) -> None:
    """The key the config accepted is the one the system trains with (one step on random tensors)."""
    cfg = load_config(TOY)
    solver = build_solver(cfg)
    g = torch.Generator().manual_seed(0)
    visual, mel = torch.randn(2, 3, 2560, generator=g), torch.rand(2, 80, 12, generator=g)
    losses = solver.gan.train_step(visual, mel)
    assert {"g_mel", "g_l2", "g_adv", "d"} <= set(losses), losses
    total = losses["g_mel"] + losses["g_l2"] + 0.1 * losses["g_adv"]
    assert losses["g_total"] == pytest.approx(total, rel=1e-5), losses


def _toy_config(generator: str) -> dict:
    cfg = yaml.safe_load(TOY.read_text(encoding="utf-8"))
    cfg["model"]["generator"] = {"_component_": generator}
    return cfg


def test_a_builder_function_is_asked_through_its_return_annotation(
    trusted_toy: None, registered: list[str]
) -> None:
    def toy_builder(hidden: int = 16) -> ToyMelGenerator:
        return ToyMelGenerator(hidden=hidden)

    components.register("mylab.toy_builder", toy_builder)
    registered.append("mylab.toy_builder")
    validate(_toy_config("mylab.toy_builder"), "toy.yaml")
    with pytest.raises(ConfigError, match=r"toy\.yaml: losses\.gan: unknown key .*known: adv, l2, mel\)"):
        validate({**_toy_config("mylab.toy_builder"), "losses": {"gan": 1.0}}, "toy.yaml")


def test_a_builder_with_no_class_to_ask_gets_the_keys_some_system_reads(
    trusted_toy: None, registered: list[str]
) -> None:
    """Without a class, any registered system's key passes (its own system narrows them when the solver starts);
    a key none reads is still refused at load time."""

    def opaque_builder(hidden: int = 16):  # no return annotation: the class is unknown
        return ToyMelGenerator(hidden=hidden)

    components.register("mylab.opaque_builder", opaque_builder)
    registered.append("mylab.opaque_builder")
    validate(_toy_config("mylab.opaque_builder"), "toy.yaml")  # l2: the toy system's (registered on import)
    with pytest.raises(ConfigError, match=r"losses\.mell: unknown key \(did you mean 'mel'\?"):
        validate({**_toy_config("mylab.opaque_builder"), "losses": {"mell": 1.0}}, "toy.yaml")


def test_a_train_option_of_another_system_passes_an_opaque_builder_then_its_own_system_refuses_it(
    trusted_toy: None, registered: list[str]
) -> None:
    """VarietySound's `train.background_input` passes the load-time check of a builder with no class to ask (some
    system reads it), and the toy system, which does not, refuses it by name when the solver starts."""

    def opaque_builder(hidden: int = 16):  # no return annotation: the class is unknown
        return ToyMelGenerator(hidden=hidden)

    components.register("mylab.opaque_builder2", opaque_builder)
    registered.append("mylab.opaque_builder2")
    cfg = _toy_config("mylab.opaque_builder2")
    cfg["train"] = {**(cfg.get("train") or {}), "background_input": "shuffled"}
    validate(cfg, "toy.yaml")
    with pytest.raises(ValueError, match=r"train: \w+ does not read \['background_input'\]"):
        build_solver(cfg)
    with pytest.raises(ConfigError, match=r"train\.background_inptu: unknown key"):
        validate({**cfg, "train": {"background_inptu": "shuffled"}}, "toy.yaml")


def test_a_generator_class_without_a_system_is_refused_at_load_time(
    trusted_toy: None, registered: list[str]
) -> None:
    class Untrained(nn.Module):
        def __init__(self, hidden: int = 16) -> None:
            super().__init__()

    components.register("mylab.untrained", Untrained)
    registered.append("mylab.untrained")
    with pytest.raises(
        ConfigError, match=r"toy\.yaml: model\.generator: builds a Untrained; the gan_mel paradigm trains"
    ):
        validate(_toy_config("mylab.untrained"), "toy.yaml")
