"""Trained models in and out of MLflow: log a model package, resolve any model reference, promote explicitly.

A trained model travels as a package folder (`v2s_models.package`: `v2s_model.yaml` + `model.pt`, data settings
included, so generation can rebuild its inputs). Here:

- `write_checkpoint_meta` puts a `v2s_checkpoint.yaml` beside a training checkpoint (config, data settings,
  feature settings, inference module names), so a bare Ray checkpoint folder can become a package;
- `package_from_checkpoint` turns a checkpoint folder (plain loop or Ray Train) into a package folder;
- `log_model` logs a package as an MLflow model (MLflow 3 "logged model", `models:/m-<id>`) whose pyfunc
  `predict(visual (B, T, D) float32, params={"seed": 0}) -> mel (B, n_mels, 4T)` generates from features
  (VarietySound: {"visual", "reference_mel"}), logged with that signature and a small input example (zeros);
- `resolve_model` loads a `ModelPackage` from `models:/<name>@<alias>`, `models:/<name>/<version>`,
  `models:/m-<id>`, `m-<id>`, `runs:/<run_id>/<name>`, a bare run id, a package folder, a checkpoint folder or a
  Ray run folder (its latest checkpoint);
- `promote` is the only way into the registry: it registers a run's (or a logged) model under a name and sets
  the `candidate` or `champion` alias. Training never registers anything.

mlflow is imported lazily: resolving a package folder does not import it.

The pyfunc is logged as "models from code" (a three-line script that builds `V2SGeneratorModel`), not as a
pickle, so loading it needs only this package installed, and every requirement is given explicitly, so
logging works offline (MLflow's requirement inference starts a subprocess and may reach the network).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from v2s_models import model_card
from v2s_models.config import build_component
from v2s_models.interface import check_reference, is_sound_model, sound_model
from v2s_models.lineage import TAG_PREFIX as LINEAGE_TAG_PREFIX
from v2s_models.lineage import describe_lineage
from v2s_models.package import META_FILE, ModelPackage, check_components, load_package, save_package
from v2s_models.settings import DataSettings, get_preset
from v2s_models.tracking import default_tracking_uri
from v2s_models.training.checkpoint import CHECKPOINT_FILE, load_checkpoint

CHECKPOINT_META_FILE = "v2s_checkpoint.yaml"
PACKAGE_ARTIFACT = "package"  # name of the package folder among the pyfunc model's artifacts
LOGGED_MODEL_NAME = "model"
ALIASES = ("candidate", "champion")

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")

_PYFUNC_CODE = '''"""v2s generator as an MLflow pyfunc (models from code): see v2s_models.registry."""

import mlflow

from v2s_models.registry import V2SGeneratorModel

mlflow.models.set_model(V2SGeneratorModel())
'''


# ----------------------------------------------------------------------------------------- checkpoints
def write_checkpoint_meta(
    ckpt_dir: str | Path,
    *,
    config: Mapping[str, Any],
    data_settings: DataSettings,
    features: Mapping[str, Any],
    inference_modules: Sequence[str],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Writes `<ckpt_dir>/v2s_checkpoint.yaml`: what `package_from_checkpoint` needs besides the weights."""
    path = Path(ckpt_dir) / CHECKPOINT_META_FILE
    meta = {
        "paradigm": config["paradigm"],
        "config": dict(config),
        "data_settings": data_settings.to_dict(),
        "features": dict(features),
        "inference_modules": list(inference_modules),
        "extra": dict(extra or {}),
    }
    path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return path


def default_inference_modules(config: Mapping[str, Any]) -> list[str]:
    """The rule of `Solver.inference_modules` applied to a config: every model component but discriminators."""
    return [k for k in config["model"] if "discriminator" not in k and not k.startswith("d_")]


def latest_checkpoint(path: str | Path) -> Path:
    """`path` itself if it holds `checkpoint.pt`, else its newest `checkpoint_*` sub-folder (a Ray run folder;
    Ray Train names them `checkpoint_<date>_<time>`, so the last in sorted order is the newest)."""

    path = Path(path)
    if (path / CHECKPOINT_FILE).is_file():
        return path
    found = sorted(p for p in path.glob("checkpoint_*") if (p / CHECKPOINT_FILE).is_file())
    if not found:
        raise FileNotFoundError(f"{path}: no {CHECKPOINT_FILE} in it nor in a checkpoint_* sub-folder")
    return found[-1]


def package_from_checkpoint(
    ckpt_dir: str | Path,
    out_dir: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    data_settings: DataSettings | None = None,
    features: Mapping[str, Any] | None = None,
    inference_modules: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Builds a package folder from a training checkpoint folder.

    Missing arguments come from the folder's `v2s_checkpoint.yaml`; without one, `config` is required, the data
    settings default to the config's `data.preset` (regnet) and the modules to every non-discriminator.
    """

    ckpt_dir = latest_checkpoint(ckpt_dir)
    meta: dict[str, Any] = {}
    meta_path = ckpt_dir / CHECKPOINT_META_FILE
    if meta_path.is_file():
        meta = yaml.safe_load(meta_path.read_text()) or {}
    cfg = dict(config if config is not None else meta.get("config") or {})
    if not cfg:
        raise ValueError(
            f"{ckpt_dir}: no {CHECKPOINT_META_FILE} beside the checkpoint; pass the experiment config"
        )
    if data_settings is None:
        data_settings = (
            DataSettings.from_dict(meta["data_settings"])
            if "data_settings" in meta
            else get_preset(cfg["data"].get("preset", "regnet"))
        )
    names = list(inference_modules or meta.get("inference_modules") or default_inference_modules(cfg))
    where = str(meta_path) if config is None else f"{ckpt_dir} (the config passed)"
    check_components(cfg, names, source=where)  # before any read or import: loading runs no code
    state = load_checkpoint(ckpt_dir)
    saved = state["solver"]["modules"]
    modules = {}
    for name in names:
        if name not in saved:
            raise KeyError(f"{ckpt_dir}: the checkpoint has no module {name!r} (has {sorted(saved)})")
        module = build_component(cfg["model"][name], source=where, key=f"config.model.{name}")
        module.load_state_dict(saved[name])
        modules[name] = module
    info = {"epoch": int(state.get("epoch", 0)), "config_hash": state.get("config_hash", "")}
    info.update(meta.get("extra") or {})
    info.update(extra or {})
    return save_package(
        out_dir,
        paradigm=cfg["paradigm"],
        config=cfg,
        data_settings=data_settings,
        features=dict(features if features is not None else meta.get("features") or {}),
        modules=modules,
        extra=info,
    )


# ------------------------------------------------------------------------------------------ generation
def generate(
    package: ModelPackage,
    visual: torch.Tensor | np.ndarray,
    *,
    seed: int = 0,
    reference_mel: torch.Tensor | np.ndarray | None = None,
    num_samples: int | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Sound from visual features with a package's `SoundModel` (`interface.sound_model`), reproducibly.

    visual (B, T, visual_dim) float32: B clips, each generated in one window as one video (`start_video`, then
    `generate_windows`) -> mel (B, n_mels, M * T) or, for a waveform model (pass `num_samples`), waveform
    (B, num_samples). reference_mel (B, n_mels, L): each clip's timbre reference, for a model that takes one.
    Random draws come from one generator seeded with `seed` (`ModelInputs.sampling_generator`, as in
    `v2s_models.generation`), clip after clip; torch's global RNG is untouched.
    """
    model = sound_model(package)
    inputs = model.model_inputs()
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(visual) if not isinstance(visual, torch.Tensor) else visual)
    x = x.to(device=device, dtype=torch.float32)
    if x.dim() != 3 or x.shape[-1] != inputs.visual_dim:
        raise ValueError(
            f"visual features must be (batch, frames, {inputs.visual_dim}), got shape {tuple(x.shape)}"
        )
    refs = None if reference_mel is None else torch.as_tensor(np.asarray(reference_mel, dtype=np.float32))
    if refs is not None and (refs.dim() != 3 or refs.shape[0] != x.shape[0]):
        raise ValueError(f"reference_mel must be (batch, n_mels, frames), got shape {tuple(refs.shape)}")
    check_reference(inputs, refs)
    generator = inputs.sampling_generator(seed, device)
    was_training = model.training
    model.eval()
    try:
        outs = []
        with torch.inference_mode():
            for i in range(x.shape[0]):
                context = model.start_video(
                    generator=generator,
                    reference_mel=None if refs is None else refs[i],
                    temperature=temperature,
                )
                outs.append(model.generate_windows(x[i : i + 1], context, num_samples=num_samples))
    finally:
        model.train(was_training)
    return torch.cat(outs)


@functools.cache
def _pyfunc_class() -> type:
    import mlflow.pyfunc

    class V2SGeneratorModel(mlflow.pyfunc.PythonModel):
        """pyfunc: visual features (B, T, D) float32 -> generated features (REGNET: mel (B, n_mels, 4T)).

        params: {"seed": int} (default 0) seeds the generator's noise.
        """

        def load_context(self, context: Any) -> None:
            self.package = load_package(context.artifacts[PACKAGE_ARTIFACT])

        # model_input has no annotation on purpose: MLflow turns predict's type hints into input validation and
        # accepts only list[...] hints; the logged signature describes the tensor instead.
        def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> Any:  # noqa: ANN001
            inputs = dict(model_input) if isinstance(model_input, Mapping) else {"visual": model_input}
            visual = inputs.pop("visual", None)
            if visual is None or hasattr(visual, "to_numpy"):  # pandas frames are not supported
                raise ValueError("pass visual features as a float32 array (batch, frames, dim)")
            options = dict(params or {})
            seed = int(options.pop("seed", 0))
            out = generate(self.package, np.asarray(visual, dtype=np.float32), seed=seed, **inputs, **options)
            return out.cpu().numpy()

    V2SGeneratorModel.__module__ = __name__
    V2SGeneratorModel.__qualname__ = "V2SGeneratorModel"
    return V2SGeneratorModel


def __getattr__(name: str) -> Any:
    # The pyfunc class subclasses mlflow's PythonModel; building it on first use keeps mlflow out of imports
    # of this module (resolving a package folder must stay cheap).
    if name == "V2SGeneratorModel":
        return _pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------- MLflow
@contextlib.contextmanager
def _mlflow_uri(tracking_uri: str | None) -> Iterator[Any]:
    """mlflow's fluent API with `tracking_uri` as tracking and registry store, restored exactly afterwards.

    mlflow.set_tracking_uri / set_registry_uri also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into the
    environment, so the previous URIs (or None: unset) and variables are put back afterwards through the same
    public calls (a test or a notebook that calls this keeps its own settings).
    """
    import mlflow

    if tracking_uri is None:
        yield mlflow
        return
    env_keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved_env = {k: os.environ.get(k) for k in env_keys}
    # set_tracking_uri / set_registry_uri write these variables, so without them nothing was set (None unsets);
    # with them, get_*_uri returns what was set.
    saved_tracking = mlflow.get_tracking_uri() if saved_env["MLFLOW_TRACKING_URI"] else None
    saved_registry = mlflow.get_registry_uri() if saved_env["MLFLOW_REGISTRY_URI"] else None
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(saved_tracking)
        mlflow.set_registry_uri(saved_registry)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("torch", "numpy", "PyYAML", "mlflow", "v2s"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            reqs.append(dist)
    return reqs


EXAMPLE_FRAMES = 8  # frames of the logged input example: its shape and type, not a real clip (kilobytes)


def _signature(package: ModelPackage) -> tuple[Any, Any]:
    """The pyfunc's signature and a small input example (zeros of the right shapes and type), from the
    generating module's `model_inputs()`; (None, None) for waveform models (they need a sample count) and for
    packages with no `SoundModel` (the correlation tower, a vocoder).

    Mel models: visual (B, T, visual_dim) -> mel (B, n_mels, M * T); with a reference (VarietySound):
    {"visual": (B, T, visual_dim), "reference_mel": (B, n_mels, L)} -> mel."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    if not any(is_sound_model(m) for m in package.modules.values()):
        return None, None  # a package that makes no sound from video: the correlation tower, a vocoder
    inputs = sound_model(package).model_inputs()
    if inputs.output != "mel":
        return None, None
    assert inputs.n_mels is not None and inputs.mel_frames_per_step is not None, f"{inputs=}"
    visual = TensorSpec(np.dtype(np.float32), (-1, -1, inputs.visual_dim), "visual")
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1, inputs.n_mels, -1), "mel")])
    params = ParamSchema([ParamSpec("seed", "long", 0)])
    example_visual = np.zeros((1, EXAMPLE_FRAMES, inputs.visual_dim), dtype=np.float32)
    if not inputs.takes_reference:
        return ModelSignature(inputs=Schema([visual]), outputs=outputs, params=params), example_visual
    reference = TensorSpec(np.dtype(np.float32), (-1, inputs.n_mels, -1), "reference_mel")
    example = {
        "visual": example_visual,
        "reference_mel": np.zeros(
            (1, inputs.n_mels, inputs.mel_frames_per_step * EXAMPLE_FRAMES), dtype=np.float32
        ),
    }
    return ModelSignature(inputs=Schema([visual, reference]), outputs=outputs, params=params), example


def log_model(
    package_dir: str | Path,
    *,
    tracking_uri: str,
    run_id: str,
    name: str = LOGGED_MODEL_NAME,
) -> str:
    """Logs a package folder as an MLflow pyfunc model of run `run_id`; returns `models:/m-<id>`."""
    package_dir = Path(package_dir)
    package = load_package(package_dir)
    with tempfile.TemporaryDirectory(prefix="v2s-pyfunc-") as tmp:
        code = Path(tmp) / "v2s_generator.py"
        code.write_text(_PYFUNC_CODE)
        signature, example = _signature(package)
        with _mlflow_uri(tracking_uri) as mlflow, mlflow.start_run(run_id=run_id), warnings.catch_warnings():
            # The signature describes the input; MLflow still suggests type hints (predict takes arrays).
            warnings.filterwarnings("ignore", message=".*(type hint|input_example|input example).*")
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(code),
                artifacts={PACKAGE_ARTIFACT: str(package_dir)},
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
                metadata={"v2s_paradigm": package.paradigm, "v2s_config_name": package.config.get("name")},
            )
    return f"models:/{info.model_id}"


def _find_package_dir(root: Path) -> Path:
    if (root / META_FILE).is_file():
        return root
    found = sorted(root.rglob(META_FILE))
    if not found:
        raise FileNotFoundError(f"{root}: downloaded model holds no {META_FILE}; is it a v2s model?")
    return found[0].parent


def _logged_model_of_run(run_id: str, *, tracking_uri: str | None, name: str | None = None) -> str:
    """`models:/m-<id>` of the (newest) model logged by run `run_id`."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    models = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    if name is not None:
        models = [m for m in models if m.name == name]
    if not models:
        raise ValueError(f"run {run_id} has no logged model" + (f" named {name!r}" if name else ""))
    newest = max(models, key=lambda m: m.creation_timestamp)
    return f"models:/{newest.model_id}"


def model_uri(ref: str, *, tracking_uri: str | None = None) -> str:
    """Normalises a model reference to an MLflow URI: a bare run id or `runs:/<id>[/<name>]` becomes the run's
    logged model `models:/m-<id>`; `m-<id>` becomes `models:/m-<id>`; `models:/...` is returned as is."""
    if _RUN_ID.match(ref):
        return _logged_model_of_run(ref, tracking_uri=tracking_uri)
    if ref.startswith("runs:/"):
        parts = ref.removeprefix("runs:/").strip("/").split("/", 1)
        return _logged_model_of_run(
            parts[0], tracking_uri=tracking_uri, name=parts[1] if len(parts) > 1 else None
        )
    if ref.startswith("m-"):
        return f"models:/{ref}"
    if ref.startswith("models:/"):
        return ref
    raise ValueError(
        f"{ref!r} is not a model reference (models:/<name>@<alias>, models:/<name>/<version>, models:/m-<id>, "
        "runs:/<run_id>/<name>, a run id, or a package / checkpoint folder)"
    )


def resolve_model(
    uri_or_path: str | Path,
    *,
    device: str | torch.device = "cpu",
    tracking_uri: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> ModelPackage:
    """Loads a `ModelPackage` (modules rebuilt, weights read, eval mode) from any model reference.

    Folders: a package folder, a checkpoint folder (with `v2s_checkpoint.yaml`, or pass `config`), a Ray run
    folder (its newest checkpoint). Otherwise an MLflow reference (see `model_uri`) read from `tracking_uri`
    (default: `MLFLOW_TRACKING_URI`, else the project store `./mlflow.db`, as `v2s promote` uses).
    """

    ref = str(uri_or_path)
    path = Path(ref)
    if "://" not in ref and path.exists():
        if (path / META_FILE).is_file():
            return load_package(path, device=device)
        with tempfile.TemporaryDirectory(prefix="v2s-package-") as tmp:
            package_from_checkpoint(path, tmp, config=config)
            return load_package(tmp, device=device)
    tracking_uri = tracking_uri or default_tracking_uri(Path.cwd())
    uri = model_uri(ref, tracking_uri=tracking_uri)
    with _mlflow_uri(tracking_uri) as mlflow, tempfile.TemporaryDirectory(prefix="v2s-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        return load_package(_find_package_dir(Path(local)), device=device, source=ref)


def promote(
    ref: str, *, name: str, alias: str | None = None, tracking_uri: str | None = None
) -> dict[str, Any]:
    """Registers model `ref` as a version of registered model `name` (once: an existing version of the same
    logged model is reused) and points `alias` (candidate | champion) at it.

    `ref`: a run id, `runs:/...`, `models:/m-<id>`, or a version already under `name`
    (`models:/<name>@<alias>`, `models:/<name>/<version>`), which only moves the alias.
    Returns {"name", "version", "alias", "model_uri", "source"}.
    """
    if alias is not None and alias not in ALIASES:
        raise ValueError(f"alias must be one of {', '.join(ALIASES)}, got {alias!r}")
    if not name or "/" in name or "@" in name:
        raise ValueError(f"invalid registered model name {name!r}")
    from mlflow import MlflowClient

    tracking_uri = tracking_uri or default_tracking_uri(Path.cwd())
    with _mlflow_uri(tracking_uri) as mlflow:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        version = _existing_version(client, ref, name)
        registered = None
        if version is None:
            uri = model_uri(ref, tracking_uri=tracking_uri)
            model_id = uri.removeprefix("models:/")
            if not model_id.startswith("m-"):
                raise ValueError(
                    f"{ref!r} names a version of another registered model; promote its run id or models:/m-<id>"
                )
            version = _version_of_model(client, name, model_id)
            if version is None:
                mv = mlflow.register_model(uri, name, tags={"v2s.promoted_from": ref})
                version = str(mv.version)
                registered = model_id
        if alias is not None:
            client.set_registered_model_alias(name, alias, version)
        model_card.annotate_version(client, name, version)  # what it was trained on, as its description
        if registered is not None:  # a fine-tuned model's new version names its source
            _record_lineage(client, name, version, registered)
        mv = client.get_model_version(name, version)
    return {
        "name": name,
        "version": str(version),
        "alias": alias,
        "model_uri": f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}",
        "source": mv.source,
    }


def _record_lineage(client: Any, name: str, version: str, model_id: str) -> None:
    """A fine-tuned model's new version says where it came from: the training run's `v2s.init_from*` tags become
    the version's tags, and `lineage.describe_lineage`'s sentence opens its description (before the card)."""
    run_id = client.get_logged_model(model_id).source_run_id
    tags = client.get_run(run_id).data.tags if run_id else {}
    lineage = describe_lineage(tags)
    if lineage is None:
        return
    for key, value in tags.items():
        if key.startswith(LINEAGE_TAG_PREFIX):
            client.set_model_version_tag(name, version, key, value)
    card = client.get_model_version(name, version).description or ""
    text = f"{lineage} Training run: {run_id}."
    client.update_model_version(name, version, description=f"{text}\n\n{card}" if card else text)


def _existing_version(client: Any, ref: str, name: str) -> str | None:
    prefix = f"models:/{name}"
    if ref.startswith(prefix + "@"):
        return str(client.get_model_version_by_alias(name, ref.removeprefix(prefix + "@")).version)
    if ref.startswith(prefix + "/"):
        version = ref.removeprefix(prefix + "/")
        client.get_model_version(name, version)  # raises when absent
        return version
    return None


def _version_of_model(client: Any, name: str, model_id: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    for mv in versions:
        if getattr(mv, "model_id", None) == model_id or mv.source == f"models:/{model_id}":
            return str(mv.version)
    return None
