"""A batch's pairs as Ray tasks, for a job one machine cannot finish in time.

``pip install "neuralstyle[ray]"``, then ``stylize_many(..., runner=on_ray(transfer))`` or
``neuralstyle batch ... --engine ray``. Each pair is one Ray task. Tasks, not actors, because
Ray already does what this needs with them: it schedules each on a worker with the resources it
asks for (a GPU, a fraction of one, or CPUs), and when a worker process dies mid-pair it runs
the task again elsewhere (``max_retries``); a pair's own failure (a bad file, a divergence) is
not retried, it comes back as the pair's reason. A worker builds the network once, on its first
pair, and keeps it for every later pair of the same recipe.

Workers need no shared filesystem: the driver sends each pair's two files (bytes and names) and
gets the picture back as a tensor, then writes it and the manifest line on its own machine, as
:func:`~neuralstyle.many.stylize_many` does for pairs run in-process.
"""

from __future__ import annotations

import copy
import itertools
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuralstyle.callbacks import Callback
from neuralstyle.config import TransferConfig
from neuralstyle.errors import ConfigError
from neuralstyle.features import FeatureExtractor
from neuralstyle.layers import LayerMap
from neuralstyle.many import Made, Pair, Runner, make, recipe, recipe_hash
from neuralstyle.transfer import StyleTransfer

__all__ = ["INSTALL_HINT", "on_ray"]

INSTALL_HINT = 'pip install "neuralstyle[ray]"'
"""How to get Ray, named in the error when it is missing."""

# Retries of a pair whose worker process died (not of a pair that failed on its own).
_RETRIES = 3

# The fewest pairs kept submitted, whatever the cluster says it has now.
_MIN_WINDOW = 4


@dataclass(frozen=True)
class _Recipe:
    """What a worker needs to build the transfer: shipped once through Ray's object store."""

    digest: str
    layer_map: LayerMap
    config: TransferConfig
    extractor: FeatureExtractor
    callbacks: tuple[Callback, ...]


@dataclass(frozen=True)
class _File:
    name: str
    data: bytes


def on_ray(
    transfer: StyleTransfer,
    *,
    address: str | None = None,
    gpus: float = 0.0,
    cpus: float = 1.0,
    callbacks: Sequence[Callback] = (),
) -> Runner:
    """A runner for :func:`~neuralstyle.many.stylize_many` that runs each pair as a Ray task.

    Args:
        transfer: The recipe and network (the network travels to each worker once).
        address: The cluster (``"ray://head:10001"``, ``"auto"``); None uses ``RAY_ADDRESS``
            and otherwise starts a local Ray for the job (stopped at its end). A Ray already
            initialized in this process is used as it is.
        gpus: GPUs per pair (a fraction lets pairs share one).
        cpus: CPUs per pair.
        callbacks: Given to every pair's run on its worker.

    Raises:
        ConfigError: Ray is not installed (the message says how to install it), or ``gpus``
            or ``cpus`` is negative.
    """
    try:
        import ray
    except ImportError as error:
        raise ConfigError(f"the ray engine needs Ray: {INSTALL_HINT}") from error
    if gpus < 0 or cpus < 0:
        raise ConfigError(f"gpus and cpus per pair must be >= 0, got gpus={gpus}, cpus={cpus}")
    extractor = transfer.extractor
    if transfer.device.type != "cpu":  # workers load it onto their own device
        extractor = copy.deepcopy(extractor).cpu()
    shipped = _Recipe(
        recipe_hash(recipe(transfer)),
        transfer.layer_map,
        transfer.config,
        extractor,
        tuple(callbacks),
    )

    def run(pairs: Sequence[Pair]) -> Iterator[tuple[Pair, Made]]:
        if not pairs:
            return
        started = not ray.is_initialized()
        if started:
            ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False)
        try:
            remote = ray.remote(max_retries=_RETRIES, retry_exceptions=False)(_run_pair)
            remote = remote.options(num_gpus=gpus, num_cpus=cpus)
            handle = ray.put(shipped)
            waiting = iter(pairs)
            pending: dict[Any, Pair] = {}
            while True:
                # A window of tasks, not the whole job: every submitted pair's files sit in
                # the object store until its task ends. Asked again each time, so the window
                # grows with an autoscaling cluster.
                resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
                room = _window(resources, gpus=gpus, cpus=cpus) - len(pending)
                for pair in itertools.islice(waiting, max(room, 0)):
                    pending[remote.remote(handle, _read(pair.content), _read(pair.style))] = pair
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1)
                pair = pending.pop(ready[0])
                yield pair, _result(ray, ready[0])
        finally:
            if started:
                ray.shutdown()

    return run


def _window(resources: dict[str, float], *, gpus: float, cpus: float) -> int:
    """How many pairs to keep submitted: two per pair the cluster can run at once (one
    running, one queued behind it), and at least :data:`_MIN_WINDOW`. Pairs that ask for no
    resources are counted as one per CPU."""
    asked = [(resources.get("GPU", 0.0), gpus), (resources.get("CPU", 0.0), cpus)]
    fits = [int(total // each) for total, each in asked if each > 0]
    at_once = min(fits) if fits else int(resources.get("CPU", 0.0))  # unlimited: a CPU each
    return max(_MIN_WINDOW, 2 * at_once)


def _read(path: Path) -> _File | str:
    """A pair's file for the worker, or why it cannot be read (the pair then fails there)."""
    try:
        return _File(path.name, path.read_bytes())
    except OSError as error:
        return f"cannot read {str(path)!r}: {error.strerror}"


def _result(ray: Any, ref: Any) -> Made:
    """The task's Made, or the reason Ray gives when it could not run it to the end."""
    try:
        made: Made = ray.get(ref)
    except ray.exceptions.RayError as error:  # the worker died more often than the retries
        text = " ".join(str(error).split())[:300]
        return Made(None, 0.0, reason=f"{type(error).__name__}: {text}")
    return made


# -- on the worker -------------------------------------------------------------------------------

_TRANSFERS: dict[str, StyleTransfer] = {}


def _run_pair(shipped: _Recipe, content: _File | str, style: _File | str) -> Made:
    """One pair on a Ray worker: the files written to a private folder under their own names,
    then the same run as in-process."""
    if isinstance(content, str) or isinstance(style, str):  # the driver could not read one
        unread = content if isinstance(content, str) else style
        return Made(None, 0.0, reason=f"ImageError: {unread}")
    transfer = _TRANSFERS.get(shipped.digest)
    if transfer is None:
        transfer = StyleTransfer(
            shipped.layer_map, config=shipped.config, extractor=shipped.extractor
        )
        _TRANSFERS[shipped.digest] = transfer
    with tempfile.TemporaryDirectory(prefix="neuralstyle-") as folder:
        paths = []
        for role, file in (("content", content), ("style", style)):
            path = Path(folder) / role / file.name
            path.parent.mkdir()
            path.write_bytes(file.data)
            paths.append(path)
        made = make(transfer, Pair(paths[0], paths[1]), shipped.callbacks)
    if made.reason is not None:  # name the files as the user knows them, not the copies
        made = Made(None, made.seconds, reason=made.reason.replace(folder + os.sep, ""))
    return made
