"""Fine-tuning from the registry (v2s_models/finetune.py, ray_jobs/finetune.py, `v2s finetune`).

Unit tests: strict weight loading, freezing by prefix and by part name (frozen weights never move, the others
do), the init_from entry, the lineage sentence. The end-to-end test (slow): a debug REGNET trained briefly on the
tiny data and promoted to `regnet@champion` in a temporary MLflow store stands in for the demo model; `v2s
finetune models:/regnet@champion --data FOLDER` on four real clips of one category (hammer and hitting sounds)
freezes the visual encoder, trains on Ray, and its validation loss on that folder ends below the source model's;
the run carries the lineage tags and `v2s promote` registers a version whose description names the source.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import torch

from v2s_models.config import load_config
from v2s_models.finetune import InitFrom, frozen_names, initialise, load_weights
from v2s_models.lineage import describe_lineage
from v2s_models.training import loop

REPO = Path(__file__).resolve().parents[1]
DEBUG = REPO / "experiments/configs/regnet/debug.yaml"
CLIPS = ("hammer_anvil", "hitting_metal", "hitting_bag", "chopping")  # one category: things struck


def _solver(**overrides: Any) -> Any:
    cfg = load_config(DEBUG, overrides)
    return loop.build_solver(cfg)


def _snapshot(solver: Any) -> dict[str, torch.Tensor]:
    return {
        f"{m}.{n}": p.detach().clone()
        for m in solver.modules
        for n, p in solver.unwrapped(m).named_parameters()
    }


def _step_every_optimizer(solver: Any) -> None:
    """One optimiser step with a gradient of ones on every parameter that takes gradients."""
    for name, opt in solver.optimizers.items():
        opt.zero_grad()
        for p in solver.unwrapped(name).parameters():
            if p.requires_grad:
                p.grad = torch.ones_like(p)
        opt.step()


def test_load_weights_copies_exactly_and_refuses_mismatches():
    source, target = _solver(seed=1), _solver(seed=2)
    state = {"generator": source.unwrapped("generator").state_dict()}
    assert load_weights({k: target.unwrapped(k) for k in target.modules}, state) == ["generator"]
    for k, v in target.unwrapped("generator").state_dict().items():
        assert torch.equal(v, state["generator"][k]), k
    modules = {k: target.unwrapped(k) for k in target.modules}
    bad_shape = {"generator": {**state["generator"]}}
    key = next(iter(bad_shape["generator"]))
    bad_shape["generator"][key] = torch.zeros(3, 3, 3)
    with pytest.raises(ValueError, match=f"generator.{key}: shape"):
        load_weights(modules, bad_shape)
    missing = {"generator": {k: v for k, v in state["generator"].items() if k != key}}
    with pytest.raises(ValueError, match="missing in the source"):
        load_weights(modules, missing)
    with pytest.raises(ValueError, match="'vocoder'.*does not build"):
        load_weights(modules, {"vocoder": {}})


def test_frozen_visual_encoder_never_moves_and_the_rest_trains():
    source = _solver(seed=1)
    solver = _solver(seed=2)
    out = initialise(solver, {"generator": source.unwrapped("generator").state_dict()}, ["visual_encoder"])
    assert out["loaded"] == ["generator"] and out["fresh"] == ["discriminator"]
    assert out["frozen"] and all(n.startswith("generator.encoder.") for n in out["frozen"])
    before = _snapshot(solver)
    _step_every_optimizer(solver)
    after = _snapshot(solver)
    frozen = set(out["frozen"])
    for name in before:
        moved = not torch.equal(before[name], after[name])
        assert moved != (name in frozen), f"{name}: moved={moved}, frozen={name in frozen}"


def test_frozen_discriminators_keep_their_weights_with_gradients_flowing():
    solver = _solver()
    out = initialise(solver, {}, ["discriminators"])
    assert out["frozen"] and all(n.startswith("discriminator.") for n in out["frozen"])
    d = solver.unwrapped("discriminator")
    assert all(p.requires_grad for p in d.parameters()), "a wholly frozen module still passes gradients"
    before = _snapshot(solver)
    _step_every_optimizer(solver)
    after = _snapshot(solver)
    assert all(torch.equal(before[n], after[n]) for n in out["frozen"])
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("generator."))


def test_freeze_prefixes_must_match_a_parameter():
    solver = _solver()
    modules = {k: solver.unwrapped(k) for k in solver.modules}
    assert frozen_names(modules, ["generator.postnet"]) and all(
        n.startswith("generator.postnet.") for n in frozen_names(modules, ["generator.postnet"])
    )
    with pytest.raises(
        ValueError, match="'generator.encodr' matches no parameter; prefixes.*generator.encoder"
    ):
        frozen_names(modules, ["generator.encodr"])


def test_freeze_prefixes_end_at_a_dot():
    solver = _solver()
    modules = {k: solver.unwrapped(k) for k in solver.modules}
    with pytest.raises(ValueError, match="matches no parameter"):
        frozen_names(modules, ["generator.enc"])


def test_init_from_entry_is_checked():
    assert InitFrom.parse(None) is None
    spec = InitFrom.parse({"model": "models:/regnet@champion", "freeze": ["visual_encoder"]})
    assert spec == InitFrom("models:/regnet@champion", ("visual_encoder",))
    with pytest.raises(ValueError, match="init_from.model"):
        InitFrom.parse({"freeze": []})
    with pytest.raises(ValueError, match="init_from.freez: unknown key"):
        InitFrom.parse({"model": "x", "freez": []})
    with pytest.raises(ValueError, match="init_from.freeze"):
        InitFrom.parse({"model": "x", "freeze": "visual_encoder"})


def test_lineage_sentence_names_the_source():
    tags = {
        "v2s.init_from": "models:/regnet@champion",
        "v2s.init_from.model_name": "regnet",
        "v2s.init_from.model_version": "3",
        "v2s.init_from.run_id": "abc",
        "v2s.init_from.data": "/clips/hits",
        "v2s.init_from.freeze": "visual_encoder",
    }
    text = describe_lineage(tags)
    assert text == (
        "Fine-tuned from regnet version 3 (models:/regnet@champion); source training run abc; "
        "on the videos in /clips/hits; frozen: visual_encoder."
    )
    assert describe_lineage({"other": "x"}) is None


# ------------------------------------------------------------------------------------------ end to end
def _env(**extra: str) -> dict[str, str]:
    from tests.test_sweeps import base_env

    return base_env(**extra)


def _run(args: list[str], *, cwd: Path, log: Path, env: dict[str, str], timeout: int = 900) -> str:
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(args)}\n")
        f.flush()
        proc = subprocess.run(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=f, text=True, timeout=timeout
        )
        f.write(proc.stdout)
    assert proc.returncode == 0, (
        f"{args[:4]} failed (rc {proc.returncode}); log {log}:\n{log.read_text()[-5000:]}"
    )
    return proc.stdout


def run_finetune_smoke(basetemp: Path, tiny: Path, real_media: Path) -> dict[str, Any]:
    """Trains and promotes the stand-in source, fine-tunes it on the real clips and promotes the result, once
    per test session (later calls read `result.json`): {"root", "uri", "source", "finetune", "promoted"}."""
    from tests.test_sweeps import make_project

    out = basetemp / "v2s-finetune"
    done = out / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    root = make_project(out / "project", tiny)
    clips = out / "my_clips" / "struck"
    clips.mkdir(parents=True)
    for name in CLIPS:
        found = sorted(real_media.glob(f"{name}.*"))
        assert found, f"{name} not in {real_media}"
        (clips / found[0].name).symlink_to(found[0])
    ray_tmp = Path(f"/tmp/v2s-f-{uuid.uuid4().hex[:6]}")  # short: Ray's socket paths must stay < 108 chars
    env = _env(RAY_TMPDIR=str(ray_tmp))
    log = out / "finetune.log"
    py, v2s = sys.executable, [sys.executable, "-m", "experiments.cli"]
    try:
        # the stand-in for the demo model: REGNET debug, 2 epochs on the tiny data
        last = _run(
            [py, "-m", "ray_jobs.train", str(DEBUG), "--root", str(root), "--num-cpus", "2"],
            cwd=REPO,
            log=log,
            env=env,
        )
        source_run = json.loads(last.strip().splitlines()[-1])["mlflow_run_id"]
        _run(
            [*v2s, "promote", source_run, "--name", "regnet", "--alias", "champion", "--root", str(root)],
            cwd=REPO,
            log=log,
            env=env,
        )
        last = _run(
            [*v2s, "finetune", "models:/regnet@champion", "--data", str(out / "my_clips"), "--root", str(root),
             "--freeze", "visual_encoder", "--epochs", "6", "--lr-scale", "1.0", "--val-fraction", "0.25",
             "--num-cpus", "2"],
            cwd=REPO, log=log, env=env,
        )  # fmt: skip
        finetuned = json.loads(last.strip().splitlines()[-1])
        last = _run(
            [*v2s, "promote", finetuned["mlflow_run_id"], "--name", "regnet-struck", "--alias", "candidate", "--root", str(root)],
            cwd=REPO, log=log, env=env,
        )  # fmt: skip
        promoted = json.loads(last.strip().splitlines()[-1])
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    result = {
        "root": str(root),
        "uri": f"sqlite:///{root / 'mlflow.db'}",
        "source_run_id": source_run,
        "finetune": finetuned,
        "promoted": promoted,
        "data": str(out / "my_clips"),
        "log": str(log),
    }
    done.write_text(json.dumps(result))
    return result


@pytest.mark.slow
def test_finetune_from_the_registry_beats_the_source_on_the_folder(
    tmp_path_factory, tiny_data_root, real_media
):
    from mlflow import MlflowClient

    r = run_finetune_smoke(tmp_path_factory.getbasetemp(), tiny_data_root, real_media)
    ft = r["finetune"]
    source_loss, loss = ft["source_val"]["val/mel_mse"], ft["val"]["val/mel_mse"]
    print(f"validation mel MSE on the folder: source {source_loss:.4f}, fine-tuned {loss:.4f}")
    assert loss < source_loss, f"fine-tuning did not lower the validation loss ({source_loss} -> {loss})"

    client = MlflowClient(tracking_uri=r["uri"], registry_uri=r["uri"])
    run = client.get_run(ft["mlflow_run_id"])
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["v2s.init_from"] == "models:/regnet@champion"
    assert tags["v2s.init_from.model_name"] == "regnet" and tags["v2s.init_from.model_version"] == "1"
    assert tags["v2s.init_from.run_id"] == r["source_run_id"]
    assert tags["v2s.init_from.freeze"] == "visual_encoder"
    assert tags["mlflow.note.content"].startswith("Fine-tuned from regnet version 1")
    assert "source/val/mel_mse" in run.data.metrics
    cfg = json.loads(json.dumps(client.get_run(ft["mlflow_run_id"]).data.params))
    assert cfg.get("init_from.model") == "models:/regnet@champion", sorted(cfg)[:20]

    mv = client.get_model_version("regnet-struck", r["promoted"]["version"])
    assert mv.description.startswith("Fine-tuned from regnet version 1 (models:/regnet@champion)"), (
        mv.description
    )
    assert "frozen: visual_encoder" in mv.description and r["data"] in mv.description
    assert mv.tags["v2s.init_from.model_version"] == "1"


@pytest.mark.slow
def test_a_sweep_with_init_from_starts_every_trial_from_the_registered_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grid whose SET has `init_from:` (a debug REGNET trained briefly and registered as `src@champion`, the
    visual encoder frozen): every trial loads the source's weights (its frozen visual encoder ends bit-identical
    to the source's, which a freshly initialised one would not be, while the rest trained) and its MLflow run
    names the source version (the lineage tags)."""
    from mlflow import MlflowClient

    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import run_sweep
    from ray_jobs.train import run_training
    from tests.services import RayNodes
    from tests.test_ray_train import write_fake_prepared_data
    from v2s_models import registry
    from v2s_models.finetune import source_weights

    root = tmp_path / "project"
    write_fake_prepared_data(root, train=8, val=2, frames=215, visual_dim=2560, n_mels=80)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("V2S_RAY_STORAGE", raising=False)
    ref = "models:/src@champion"
    declaration = tmp_path / "init_grid.py"
    declaration.write_text(
        '"""Does the mel loss weight matter when starting from a registered model? (a test grid)"""\n\n'
        f"BASE = {str(DEBUG)!r}\n"
        'GRID = {"mel_1e4": {"losses.mel": 10000.0}, "mel_1e3": {"losses.mel": 1000.0}}\n'
        'SET = {"epochs": 1, "scaling.cpus_per_worker": 0.9,\n'
        f'       "init_from": {{"model": {ref!r}, "freeze": ["visual_encoder"]}}}}\n'
        'OBJECTIVE = {"metric": "val/mel_l1", "mode": "min"}\n'
        "METRICS = []\n"
        'SMOKE = {"max_steps_per_epoch": 2}\n'
    )
    with RayNodes(workers=1):
        source = run_training(
            load_config(DEBUG, {"epochs": 1, "scaling.cpus_per_worker": 0.9}), root=root, tracking_uri=uri,
            experiment="source", max_steps_per_epoch=2,
        )  # fmt: skip
        registry.promote(source.mlflow_run_id, name="src", alias="champion", tracking_uri=uri)
        out = run_sweep(load_sweep(declaration, smoke=True), root=root, name="init-grid", register=False)
    assert out.errors == 0 and sorted(r.variant for r in out.rows) == ["mel_1e3", "mel_1e4"], out.rows

    src = source_weights(ref, tracking_uri=uri).state
    client = MlflowClient(tracking_uri=uri)
    for row in out.rows:
        run = client.get_run(row.run_id)
        assert run.info.status == "FINISHED", (row.variant, run.info.status)
        assert run.data.tags["v2s.init_from"] == ref and run.data.tags["v2s.init_from.model_version"] == "1"
        assert run.data.tags["v2s.init_from.run_id"] == source.mlflow_run_id
        assert run.data.tags["v2s.init_from.freeze"] == "visual_encoder"
        trained = source_weights(str(out.sweep_dir / "train" / row.variant / "package")).state
        # the part `visual_encoder` is REGNET's generator.encoder (v2s_models.finetune.PARTS); freezing stops its
        # parameters, while its batch-norm running statistics (buffers) still follow the new data
        stats = ("running_mean", "running_var", "num_batches_tracked")
        frozen = [k for k in src["generator"] if k.startswith("encoder.") and not k.endswith(stats)]
        assert frozen, sorted(src["generator"])[:10]
        for k in frozen:
            assert torch.equal(trained["generator"][k], src["generator"][k]), (row.variant, k)
        moved = [
            k
            for k in src["generator"]
            if not k.startswith("encoder.") and src["generator"][k].is_floating_point()
        ]
        assert any(not torch.equal(trained["generator"][k], src["generator"][k]) for k in moved), row.variant
