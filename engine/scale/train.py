"""``homepage train --workers N``: data-parallel training of the ranker with Ray Train's TorchTrainer.

Every worker runs :func:`engine.training.loop.train_ranker` as one replica: it loads the data directory
itself (the path travels, not the loaded tables), makes the same split, builds the model from the same
seed (then takes worker 0's weights, as DDP does), trains on its shard of each epoch's batches (batch
b of the epoch's shuffled list goes to worker b % N; every worker shuffles with the same seed, so the
shards are disjoint and cover the epoch) and averages gradients with the others before every
optimiser step. Worker 0 validates after each epoch and the others take its NDCG@10, so early
stopping and the refit on train + validation (which runs distributed the same way) happen at the
same step everywhere. Worker 0 sends each progress entry to the driver through a Ray queue (the
driver calls ``progress`` with it, live) and hands the trained state back in a Ray Train checkpoint;
the driver rebuilds the model with train_ranker's own constructors and loads it.

Gradient averaging: an explicit all-reduce (:class:`TorchCollective`), not DDP. The trainable
parameters are spread over two modules, the ranker and the text tower's fine-tuned encoder layers,
and the encoder's gradient only flows on steps that re-encode items; DDP would need one wrapper over
both (and ``find_unused_parameters``) around a forward pass ``_step`` assembles by hand. One
all-reduce of one flat buffer (a flag per parameter saying whether it got a gradient, then every
gradient) over the trainer's parameter list is what DDP's reducer does, with nothing left out.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from engine.core.constants import DEFAULT_TEST_DAYS
from engine.core.errors import DataError, ModelError
from engine.data.splits import Split, make_split
from engine.data.tables import Dataset, load_dataset
from engine.models.two_tower import Ranker, RankerConfig, TextTower
from engine.scale.cluster import ray_session
from engine.training.loop import (
    Collective,
    TrainResult,
    _blank_model,
    build_text_tower,
    train_ranker,
)

STATE_FILE = "trained.pt"  # in the checkpoint worker 0 reports at the end


class TorchCollective(Collective):
    """The processes of torch.distributed's default process group (gloo: CPU tensors), which Ray
    Train's TorchTrainer sets up before the training function runs."""

    def __init__(self):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def average_grads(self, params: list[torch.nn.Parameter]) -> None:
        # A parameter without a gradient in one process counts as a zero gradient there (as DDP
        # does), and keeps None only where no process gave it one.
        if not params:
            return
        present = torch.tensor([float(p.grad is not None) for p in params])
        grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params]
        flat = torch.cat([present, *grads])
        self.dist.all_reduce(flat, op=self.dist.ReduceOp.SUM)
        flat /= self.world
        offset = len(params)
        for p, got in zip(params, flat[: len(params)].tolist()):
            n = p.numel()
            if got > 0:
                mean = flat[offset : offset + n].view_as(p).to(p.dtype)
                if p.grad is None:
                    p.grad = mean.clone()
                else:
                    p.grad.copy_(mean)
            offset += n

    def any(self, flag: bool) -> bool:
        t = torch.tensor([float(bool(flag))])
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        self.dist.all_reduce(t, op=self.dist.ReduceOp.SUM)
        return t.tolist()

    def broadcast(self, value):
        box = [value]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    @torch.no_grad()
    def copy_from_first(self, tensors: list[torch.Tensor]) -> None:
        for t in tensors:
            self.dist.broadcast(t.data, src=0)

    @torch.no_grad()
    def drift(self, tensors: list[torch.Tensor]) -> float:
        """Largest absolute difference of any element of ``tensors`` from its mean over the
        processes: 0 while the replicas are in lockstep."""
        if not tensors:
            return 0.0
        flat = torch.cat([t.detach().reshape(-1).double() for t in tensors])
        mean = flat.clone()
        self.dist.all_reduce(mean, op=self.dist.ReduceOp.SUM)
        gap = torch.tensor([float((flat - mean / self.world).abs().max())], dtype=torch.float64)
        self.dist.all_reduce(gap, op=self.dist.ReduceOp.MAX)
        return float(gap.item())


def _fingerprint(data: Dataset) -> tuple[int, int, int]:
    return data.n_users, data.n_items, len(data.interactions)


def _worker(cfg: dict) -> None:
    """One Ray Train worker: a replica of train_ranker on its shard (see the module docstring)."""
    import ray.train

    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    # Workers on one machine share its cores: OpenMP threads beyond a worker's share only compete.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, ctx.get_local_world_size())))
    with warnings.catch_warnings():  # the driver has shown the data's warnings already
        warnings.simplefilter("ignore")
        data = load_dataset(cfg["data_root"], **cfg["load_options"])
    if _fingerprint(data) != tuple(cfg["fingerprint"]):
        raise DataError(f"{data.root}: a worker read other data than the driver ({_fingerprint(data)} users, items, "
                        f"interactions against {tuple(cfg['fingerprint'])}); was the directory changed, or is it another copy?")
    split = make_split(data, cfg["protocol"], cfg["test_days"])
    config = RankerConfig.from_dict(cfg["config"])
    queue = cfg["queue"]
    collective = TorchCollective()

    def progress(entry: dict) -> None:
        if rank == 0:
            queue.put(entry)
        ray.train.report({k: v for k, v in entry.items() if isinstance(v, (int, float))})  # every worker: a barrier

    model, tower, result = train_ranker(data, split, config, max_minutes=cfg["max_minutes"], progress=progress, collective=collective)
    encoder = tower.trainable() if tower is not None else []
    drift = collective.drift([*model.parameters(), *encoder])
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            valid = result.valid_model
            torch.save({
                "model": model.state_dict(),
                "valid_model": None if valid is model else valid.state_dict(),
                "encoder": [p.detach().clone() for p in encoder],
                "n_events": model.config.n_events,
                "result": {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "valid_model"},
                "replica_drift": drift,
                "world": collective.world,
            }, Path(folder) / STATE_FILE)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"done": 1, "replica_drift": drift}, checkpoint=checkpoint)


def _check_resources(ray, workers: int, use_gpu: bool) -> None:
    """A clear error instead of Ray waiting for ever for workers the cluster cannot place."""
    have = ray.cluster_resources()
    kind = "GPU" if use_gpu else "CPU"
    if have.get(kind, 0) < workers:
        where = f"the Ray cluster at {os.environ['RAY_ADDRESS']}" if os.environ.get("RAY_ADDRESS") else "this machine's local Ray"
        raise ModelError(f"--workers {workers}{' --use-gpu' if use_gpu else ''}: {where} has {have.get(kind, 0):g} {kind}s; "
                         f"each worker needs one")


def train_ranker_distributed(
    data: Dataset,
    split: Split,
    config: RankerConfig,
    *,
    workers: int,
    use_gpu: bool = False,
    max_minutes: float | None = None,
    progress: Callable[[dict], None] | None = None,
    storage_path: str | Path | None = None,
    load_options: dict | None = None,
) -> tuple[Ranker, TextTower | None, TrainResult]:
    """:func:`engine.training.loop.train_ranker`, data-parallel over ``workers`` Ray Train workers.

    Args:
        data: the loaded data directory; workers load ``data.root`` themselves.
        split: the split to train on; workers make it again from its protocol and test days.
        config: the ranker config.
        workers: Ray Train workers (processes), at least 1.
        use_gpu: ask Ray for a GPU per worker. The ranker's code builds its tensors on the CPU, so
            training itself still runs there (gradients go through gloo); this only places workers.
        max_minutes: training budget of each worker, counted from when it starts training (Ray's
            start-up and the workers' data loading are not counted).
        progress: called in this thread with every progress entry of worker 0, as train_ranker does.
        storage_path: where Ray Train writes the run and its checkpoint (default: a temporary folder,
            removed afterwards). On a multi-machine cluster, a path every node can reach.
        load_options: keyword arguments of :func:`engine.data.tables.load_dataset` that ``data``
            was loaded with (``drop_unknown``, ``encoding``): workers load it the same way.

    Returns:
        Like train_ranker: (the best model, its text tower or None, the summary), with the model
        built in this process from worker 0's trained state.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    start = time.perf_counter()
    if config.use_text and config.mode != "full":
        # The encoder's lower layers run once, here, into DIR/.cache, where the workers read them;
        # the tower is not held while they train (the one below is rebuilt from the file).
        build_text_tower(data, config)
    own_storage = storage_path is None
    storage = Path(tempfile.mkdtemp(prefix="homepage-train-") if own_storage else storage_path)
    try:
        # Local Ray: a logical CPU per worker even where the machine has fewer cores (they share them;
        # each worker sets its torch threads to its share).
        with ray_session(num_cpus=max(workers, os.cpu_count() or 1)) as ray:
            _check_resources(ray, workers, use_gpu)
            payload = _fit(ray, data, split, config, workers, use_gpu, max_minutes, progress, storage, load_options or {})
    finally:
        if own_storage:
            shutil.rmtree(storage, ignore_errors=True)
    if payload["replica_drift"] > 1e-4:
        warnings.warn(f"data-parallel replicas ended {payload['replica_drift']:.3g} apart in some weight; worker 0's model is kept",
                      stacklevel=2)

    # The model, rebuilt as train_ranker builds it, with worker 0's trained state.
    config = dataclasses.replace(config, n_events=payload["n_events"])
    tower = build_text_tower(data, config) if config.use_text else None
    model = _load(data, config, tower, payload["model"])
    valid_model = model if payload["valid_model"] is None else _load(data, config, tower, payload["valid_model"])
    for p, saved in zip(tower.trainable() if tower is not None else [], payload["encoder"]):
        p.data.copy_(saved)
    result = TrainResult(**payload["result"])
    result.valid_model = valid_model
    result.seconds = round(time.perf_counter() - start, 1)  # the whole run, Ray's start-up included
    return model, tower, result


def _load(data: Dataset, config: RankerConfig, tower: TextTower | None, state: dict) -> Ranker:
    model = _blank_model(data, config, tower)
    model.load_state_dict(state)
    model.eval()
    return model


def _fit(ray, data: Dataset, split: Split, config: RankerConfig, workers: int, use_gpu: bool,
         max_minutes: float | None, progress: Callable[[dict], None] | None, storage: Path, load_options: dict) -> dict:
    """Run the TorchTrainer, relay worker 0's progress entries, return its final state."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Empty, Queue

    queue = Queue(actor_options={"num_cpus": 0})  # no CPU of its own: the workers have them all
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "data_root": str(data.root), "load_options": load_options, "fingerprint": _fingerprint(data),
            "protocol": split.protocol, "test_days": split.test_days or DEFAULT_TEST_DAYS,
            "config": dataclasses.asdict(config), "max_minutes": max_minutes, "queue": queue,
        },
        # gloo also with GPUs: the tensors all-reduced live on the CPU (see use_gpu).
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=RunConfig(storage_path=str(storage), name=f"train-{data.name}-{uuid.uuid4().hex[:8]}"),
    )
    outcome: dict = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
            outcome["error"] = exc

    # fit() blocks until training ends: it runs in a thread while this one relays progress, so
    # ``progress`` is called in the caller's thread, as train_ranker calls it.
    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            try:
                entry = queue.get(timeout=0.5)
            except Empty:
                continue
            if progress:
                progress(entry)
        thread.join()
        for entry in queue.get_nowait_batch(queue.qsize()):
            if progress:
                progress(entry)
    finally:
        queue.shutdown()
    if "error" in outcome:
        _raise_failure(outcome["error"])
    checkpoint = outcome["result"].checkpoint
    if checkpoint is None:
        raise ModelError("distributed training ended without worker 0's checkpoint")
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / STATE_FILE, weights_only=True)


def _raise_failure(error: BaseException) -> None:
    """Raise a failed run's error: a worker's DataError or ModelError as it is (bad data reads the
    same with workers as without), anything else as a ModelError naming the first failed worker."""
    failures = sorted(getattr(error, "worker_failures", {}).items())  # Ray Train's WorkerGroupError: rank -> exception
    for _, exc in failures:
        if isinstance(exc, (DataError, ModelError)):
            raise exc from error
    if failures:
        rank, exc = failures[0]
        raise ModelError(f"distributed training failed in worker {rank}: {type(exc).__name__}: {exc}") from error
    lines = str(error).strip().splitlines()
    raise ModelError(f"distributed training failed: {type(error).__name__}: {lines[-1] if lines else ''}") from error

