"""Several nodes on one machine (issue 16 items 1-3): Ray's multi-node harness (`ray.cluster_utils.Cluster`: a
head and a worker raylet, one CPU each, named by custom resources `node0` / `node1`), moto's S3 server on
loopback as the shared store (Ray Train's checkpoints and run state under `s3://`, MLflow's artifacts under an
`s3://` artifact root), and one MLflow tracking server for every process.

- Two workers of one CPU each fill the two nodes: the test reads the train workers' node ids from Ray's state API
  and checks they differ; checkpoints are in the bucket, the MLflow run is FINISHED and its model's files are in
  the artifact bucket.
- A job submitted to the head (JobSubmissionClient, what `ray job submit` uses) trains with its tracking server
  and `V2S_RAY_STORAGE` given only in its runtime environment.
- The REGNET bottleneck study's smoke sweep runs its trials on both nodes, every child run in the one server.
- A sweep (one trial at a time) loses the node its second trial runs on: Tune runs that trial again on the
  head (its Ray Train run resumes by name), the finished first trial is not re-run, no run is left RUNNING.
- A node dies mid-training (`cluster.remove_node`: its raylet and the worker on it are killed): the run restarts
  from the last checkpoint on the head (the remaining resources) and ends with exactly the metrics of an
  uninterrupted run of the same config (REGNET debug, 1 worker, 1 thread: deterministic on CPU, checked to 1e-6
  relative); the MLflow run has one value per epoch and ends FINISHED.

Endpoints and credentials reach every process only through the environment, as on a real cluster.
"""

from __future__ import annotations

import math
import sys
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
# epochs of the node-loss runs: the node goes after epoch 1; the remaining ones leave time to see that happen
EPOCHS = 6


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

    # a removed node's raylet no longer answers: take what the state API has instead of raising on it
    return list_actors(
        filters=[("class_name", "=", "RayTrainWorker")],
        detail=True,
        limit=1000,
        raise_on_missing_output=False,
    )


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
        _cfg(**{"epochs": 2, "scaling.num_workers": 2, "data.max_clips": 8}),
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
def test_a_job_submitted_to_the_head_trains_and_records_to_the_server(stack: dict[str, Any]) -> None:
    """`ray job submit`'s API (JobSubmissionClient, through the head's dashboard on 127.0.0.1): the job's driver
    gets the tracking server and Ray's storage only through its runtime environment, as `cluster.sh submit` does."""
    from mlflow import MlflowClient
    from ray.job_submission import JobStatus, JobSubmissionClient

    nodes, uri = stack["nodes"], stack["uri"]
    client = JobSubmissionClient(nodes.dashboard_url)
    deadline = time.monotonic() + 120
    while (
        True
    ):  # the head's dashboard agent registers a few seconds after the node: "try again later" until then
        try:
            job = client.submit_job(
                entrypoint=f"{sys.executable} -m ray_jobs.train {CONFIG} --root {stack['root']} --run-name job "
                "--experiment multinode --set epochs=1 --set data.max_clips=4",
                runtime_env={
                    "env_vars": {
                        "MLFLOW_TRACKING_URI": uri,
                        "V2S_RAY_STORAGE": f"s3://{RAY_BUCKET}/ray_results",
                    }
                },
            )
            break
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(2)
    deadline = time.monotonic() + 600
    while (status := client.get_job_status(job)) not in {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.STOPPED,
    }:
        assert time.monotonic() < deadline, f"job {job} still {status} after 600 s"
        time.sleep(2)
    logs = client.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-5000:]
    assert "attached to the Ray cluster" in logs, logs[-3000:]
    assert stack["s3"].keys(RAY_BUCKET, "ray_results/job/checkpoint_epoch_00001/")
    mlflow = MlflowClient(tracking_uri=uri)
    runs = mlflow.search_runs(
        [mlflow.get_experiment_by_name("multinode").experiment_id], "attributes.run_name = 'job'"
    )
    assert len(runs) == 1 and runs[0].info.status == "FINISHED", runs


def _check_trial_statuses(client: Any, out: Any, children: list[Any]) -> None:
    """MLflow shows Tune's decision for every trial: a trial ASHA stopped is KILLED with the tag
    `v2s.sweep.stopped_early`, a finished one FINISHED, none FAILED or RUNNING. Read again after a pause: a
    stopped trial's actor is torn down after the sweep's driver has labelled it, and before the fix its
    run_training could still end the run FAILED then (once in 2 clean-clone runs on two nodes)."""
    time.sleep(5)
    stopped = {r.run_id for r in out.rows if r.status.startswith("stopped")}
    finished = {r.run_id for r in out.rows if r.status == "finished"}
    assert out.errors == 0 and finished and stopped | finished == {c.info.run_id for c in children}, out.rows
    for c in children:
        run = client.get_run(c.info.run_id)
        if run.info.run_id in stopped:
            assert run.info.status == "KILLED", (run.info.run_name, run.info.status)
            assert run.data.tags.get("v2s.sweep.stopped_early") == "true", run.info.run_name
        else:
            assert run.info.status == "FINISHED", (run.info.run_name, run.info.status)


@pytest.mark.slow
def test_a_sweep_spreads_its_trials_across_the_nodes(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The REGNET bottleneck study's smoke variant (4 trials, 0.1 CPU a trial's driver + 0.9 its worker: one
    trial a node at a time) on the two nodes, every child run in the one MLflow server."""
    from mlflow import MlflowClient

    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import run_sweep

    nodes, uri = stack["nodes"], stack["uri"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = {a.actor_id for a in _train_workers()}
    out = run_sweep(load_sweep("experiments/sweeps/regnet_bottleneck.py", smoke=True), root=stack["root"])
    workers = [a for a in _train_workers() if a.actor_id not in before]
    assert {w.node_id for w in workers} == {nodes.node_id("node0"), nodes.node_id("node1")}, workers

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(out.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{out.parent_run_id}'"
    )
    assert parent.info.status == "FINISHED" and len(children) == 4, [c.info.run_name for c in children]
    _check_trial_statuses(client, out, children)


@pytest.mark.slow
def test_losing_a_node_mid_training_resumes_from_the_checkpoint(stack: dict[str, Any]) -> None:
    import ray
    from mlflow import MlflowClient

    from ray_jobs.train import run_training

    nodes, uri = stack["nodes"], stack["uri"]
    common = {"root": stack["root"], "storage": f"s3://{RAY_BUCKET}/ray_results", "tracking_uri": uri}
    cfg = _cfg(epochs=EPOCHS)
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
        experiment = client.get_experiment_by_name("multinode").experiment_id
        deadline, run_id = time.monotonic() + 900, None
        while time.monotonic() < deadline:
            if run_id is None:
                runs = client.search_runs([experiment], "attributes.run_name = 'node_loss'")
                run_id = runs[0].info.run_id if runs else None
            logged = client.get_metric_history(run_id, "train/g_total") if run_id else []
            if logged:  # epoch 1 is committed (rank 0 logs an epoch only then)
                removed["at_epoch"] = len(logged)
                nodes.remove("node1")  # the worker on it dies with it
                ray.kill(busy)  # the head's CPU is free for the restarted worker
                return
            time.sleep(0.05)

    before = {a.actor_id for a in _train_workers()}
    watcher = threading.Thread(target=lose_node1_after_epoch_1, daemon=True)
    watcher.start()
    out = run_training(cfg, run_name="node_loss", experiment="multinode", max_failures=2, **common)
    watcher.join(timeout=30)
    assert removed, "node1 was never removed: the run ended before its first epoch was logged"
    assert removed["at_epoch"] < EPOCHS, f"node1 was removed after the last epoch ({removed})"

    head = nodes.node_id("node0")

    def placement() -> tuple[bool, bool, list[Any]]:
        workers = [a for a in _train_workers() if a.actor_id not in before]
        on_head = any(w.node_id == head for w in workers)
        lost = any(w.state == "DEAD" and w.node_id != head for w in workers)
        return on_head, lost, workers

    deadline = time.monotonic() + 60  # the state API catches up with a removed node within seconds
    on_head, lost, workers = placement()
    while not (on_head and lost) and time.monotonic() < deadline:
        time.sleep(1)
        on_head, lost, workers = placement()
    assert on_head, f"no worker ran on the head after the loss: {workers}"
    assert lost, f"no worker died off the head: {workers}"

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(out.mlflow_run_id)
    assert run.info.status == "FINISHED"
    for key in ("train/g_total", "train/g_gan", "train/d_real_prob"):
        if key not in run.data.metrics:
            continue
        # one value per epoch: the committed epochs were neither retrained nor logged twice
        assert [s for s, _ in _history(uri, out.mlflow_run_id, key)] == list(range(1, EPOCHS + 1)), key
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


@pytest.mark.slow
def test_a_sweep_that_loses_a_node_finishes_every_trial_once(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The smoke study, one trial at a time, on a fresh worker node `node2` (the head's CPU is taken, so trials
    land there). Once the first trial has finished and the second one's driver runs on node2, node2 is removed:
    Tune runs that trial again on the head (its Ray Train run resumes by name), the finished trial is not run
    again, every trial ends, and no MLflow run is left RUNNING."""
    import ray
    from mlflow import MlflowClient
    from ray.util.state import list_actors

    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import run_sweep

    nodes, uri = stack["nodes"], stack["uri"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    if "node1" in nodes.nodes:  # run alone (the node-loss test above removes it): only node0 and node2 here
        nodes.remove("node1")
    nodes.add("node2")
    node2 = nodes.node_id("node2")

    @ray.remote(num_cpus=0.95, resources={"node0": 0.01})
    class Busy:
        def ready(self) -> bool:
            return True

    busy = Busy.remote()
    ray.get(busy.ready.remote())
    name, removed = "sweep_node_loss", {}

    def alive_on_node2() -> set[str]:
        actors = list_actors(filters=[("node_id", "=", node2), ("state", "=", "ALIVE")], limit=1000)
        return {a.actor_id for a in actors}

    def lose_node2_during_the_second_trial() -> None:
        client = MlflowClient(tracking_uri=uri)
        deadline, seen = time.monotonic() + 1200, None
        while time.monotonic() < deadline:
            exp = client.get_experiment_by_name(name)
            done = (
                client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
                if exp is not None
                else []
            )
            children = [r for r in done if "v2s.sweep.variant" in r.data.tags]
            if children and seen is None:
                seen = alive_on_node2()  # what runs there once the first trial is over
            elif seen is not None and (new := alive_on_node2() - seen):
                removed.update(time_ms=int(time.time() * 1000), actors=new, first=children[0].info.run_id)
                nodes.remove("node2")
                ray.kill(busy)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=lose_node2_during_the_second_trial, daemon=True)
    watcher.start()
    sweep = load_sweep("experiments/sweeps/regnet_bottleneck.py", smoke=True)
    out = run_sweep(sweep, root=stack["root"], name=name, max_concurrent=1)
    watcher.join(timeout=30)
    assert removed, "node2 was never removed while the second trial ran"
    assert out.errors == 0, out.errors

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(out.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{out.parent_run_id}'"
    )
    assert parent.info.status == "FINISHED" and len(children) == 4, [c.info.run_name for c in children]
    _check_trial_statuses(client, out, children)
    for c in children:  # no epoch logged twice: a restarted trial resumed, it did not start over
        steps = [s for s, _ in _history(uri, c.info.run_id, "train/g_total")]
        assert steps and steps == sorted(set(steps)), (c.info.run_name, steps)
    first = client.get_run(removed["first"])
    assert first.info.end_time < removed["time_ms"]
    history = client.get_metric_history(removed["first"], "train/g_total")
    assert all(m.timestamp < removed["time_ms"] for m in history), "the finished trial ran again"
