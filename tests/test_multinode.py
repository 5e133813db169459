"""Several nodes on one machine (issue 16 items 1-3): Ray's multi-node harness (`ray.cluster_utils.Cluster`: a
head and a worker raylet, one CPU each, named by custom resources `node0` / `node1`), moto's S3 server on
loopback as the shared store (Ray Train's checkpoints and run state under `s3://`, MLflow's artifacts under an
`s3://` artifact root), and one MLflow tracking server for every process.

- Two workers of one CPU each fill the two nodes: the test reads the train workers' node ids from Ray's state API
  and checks they differ; checkpoints are in the bucket, the MLflow run is FINISHED and its model's files are in
  the artifact bucket.
- A node dies mid-training (`cluster.remove_node`: its raylet and the worker on it are killed): the run restarts
  from the last checkpoint on the head (the remaining resources) and ends with exactly the metrics of an
  uninterrupted run of the same config (REGNET debug, 1 worker, 1 thread: deterministic on CPU, checked to 1e-6
  relative); the MLflow run has one value per epoch and ends FINISHED.

Endpoints and credentials reach every process only through the environment, as on a real cluster.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ray_jobs.mlflow_server import MlflowServer
from tests.services import REPO, MotoS3, RayNodes
from tests.test_ray_train import write_fake_prepared_data

RAY_BUCKET, MLFLOW_BUCKET = "v2s-ray", "v2s-mlflow"
CONFIG = REPO / "experiments/configs/regnet/debug.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto S3 + an MLflow server with an s3:// artifact root + a 2-node Ray cluster; fake REGNET-sized data."""
    tmp = tmp_path_factory.mktemp("multinode")
    root = tmp / "project"
    write_fake_prepared_data(root, train=24, val=2, frames=215, visual_dim=2560, n_mels=80)
    with MotoS3(log_file=tmp / "moto.log") as s3:
        s3.create_bucket(RAY_BUCKET)
        s3.create_bucket(MLFLOW_BUCKET)
        server = MlflowServer(
            store_uri=f"sqlite:///{tmp / 'mlflow.db'}",
            artifact_root=f"s3://{MLFLOW_BUCKET}/artifacts",
            log_file=tmp / "mlflow.log",
            env=s3.env(),
        )
        with server as uri, RayNodes(workers=1, env=s3.env()) as nodes:
            yield {"s3": s3, "uri": uri, "nodes": nodes, "root": root}


def _train_workers() -> list[Any]:
    from ray.util.state import list_actors

    return list_actors(filters=[("class_name", "=", "RayTrainWorker")], detail=True, limit=1000)


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, key))


def _cfg(**changes: Any) -> dict[str, Any]:
    from v2s_models.config import load_config

    # every training clip, not the debug config's 4: epochs long enough to lose a node in the middle of one
    return load_config(CONFIG, {"data.max_clips": None, **changes})


@pytest.mark.slow
def test_training_spans_two_nodes_with_object_storage(stack: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    from ray_jobs.train import run_training

    nodes, s3, uri = stack["nodes"], stack["s3"], stack["uri"]
    before = {a.actor_id for a in _train_workers()}
    out = run_training(
        _cfg(**{"epochs": 2, "scaling.num_workers": 2}),
        root=stack["root"],
        run_name="two_nodes",
        storage=f"s3://{RAY_BUCKET}/ray_results",
        tracking_uri=uri,
        experiment="multinode",
    )
    workers = [a for a in _train_workers() if a.actor_id not in before]
    assert len(workers) == 2, workers
    assert {w.node_id for w in workers} == {nodes.node_id("node0"), nodes.node_id("node1")}

    keys = s3.keys(RAY_BUCKET, "ray_results/two_nodes/")
    assert any(k.startswith("ray_results/two_nodes/checkpoint_epoch_00002/") for k in keys), keys
    assert (out.package / "v2s_model.yaml").is_file() and out.metrics["epoch"] == 2
    run = MlflowClient(tracking_uri=uri).get_run(out.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["v2s.ray_run_dir"] == f"s3://{RAY_BUCKET}/ray_results/two_nodes"
    assert any(k.endswith("v2s_model.yaml") for k in s3.keys(MLFLOW_BUCKET)), "the model is not in the bucket"
    assert [s for s, _ in _history(uri, out.mlflow_run_id, "train/g_total")] == [1, 2]


@pytest.mark.slow
def test_losing_a_node_mid_training_resumes_from_the_checkpoint(stack: dict[str, Any]) -> None:
    import ray
    from mlflow import MlflowClient

    from ray_jobs.train import run_training

    nodes, uri = stack["nodes"], stack["uri"]
    common = {"root": stack["root"], "storage": f"s3://{RAY_BUCKET}/ray_results", "tracking_uri": uri}
    cfg = _cfg(epochs=4)
    reference = run_training(cfg, run_name="reference", experiment="multinode", **common)

    # The head's CPU is taken (as by other work), so the one train worker lands on node1, the node we remove.
    @ray.remote(num_cpus=1, resources={"node0": 0.01})
    class Busy:
        def ready(self) -> bool:
            return True

    busy = Busy.remote()
    ray.get(busy.ready.remote())
    removed: dict[str, Any] = {}

    def lose_node1_after_epoch_1() -> None:
        client = MlflowClient(tracking_uri=uri)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runs = client.search_runs(
                [client.get_experiment_by_name("multinode").experiment_id],
                "attributes.run_name = 'node_loss'",
            )
            if runs and client.get_metric_history(runs[0].info.run_id, "train/g_total"):
                removed["at_epoch"] = len(client.get_metric_history(runs[0].info.run_id, "train/g_total"))
                nodes.remove("node1")  # the worker on it dies with it
                ray.kill(busy)  # the head's CPU is free for the restarted worker
                return
            time.sleep(0.2)

    before = {a.actor_id for a in _train_workers()}
    watcher = threading.Thread(target=lose_node1_after_epoch_1, daemon=True)
    watcher.start()
    out = run_training(cfg, run_name="node_loss", experiment="multinode", max_failures=2, **common)
    watcher.join(timeout=5)
    assert removed, "node1 was never removed: the run ended before its first epoch was logged"
    assert removed["at_epoch"] < 4, f"node1 was removed after the last epoch ({removed})"

    workers = [a for a in _train_workers() if a.actor_id not in before]
    by_node = {w.node_id: w.state for w in workers}
    assert by_node.get(nodes.node_id("node0")) is not None, "no worker ran on the head after the loss"
    assert any(w.state == "DEAD" and w.node_id != nodes.node_id("node0") for w in workers), workers

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(out.mlflow_run_id)
    assert run.info.status == "FINISHED"
    for key in ("train/g_total", "train/g_gan", "train/d_real_prob"):
        if key not in run.data.metrics:
            continue
        # one value per epoch: the committed epochs were neither retrained nor logged twice
        assert [s for s, _ in _history(uri, out.mlflow_run_id, key)] == [1, 2, 3, 4], key
    compared = sorted(k for k in reference.metrics if k.startswith(("train/", "val/")))
    assert compared, reference.metrics
    for key in compared:
        assert math.isclose(out.metrics[key], reference.metrics[key], rel_tol=1e-6, abs_tol=1e-9), (
            key, out.metrics[key], reference.metrics[key],
        )  # fmt: skip
    exp = client.get_experiment_by_name("multinode")
    assert not client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"), (
        "a run was left RUNNING"
    )
