"""Starting or joining Ray: a cluster when ``RAY_ADDRESS`` names one, otherwise a local Ray bound to
127.0.0.1 with no dashboard and no usage reporting."""

from __future__ import annotations

import os
from contextlib import contextmanager

from engine.core.errors import ModelError


def import_ray():
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ModelError("this command needs Ray: pip install -e '.[scale]'") from exc
    return ray


@contextmanager
def ray_session(num_cpus: int | None = None):
    """Ray for the duration of a ``with`` block.

    With ``RAY_ADDRESS`` set, it joins that cluster (``ray.init(address=...)``). Otherwise it starts a
    local Ray with ``num_cpus`` CPUs (None: all of this machine's), every process bound to
    127.0.0.1, no dashboard and no usage statistics, and shuts it down afterwards. A Ray the caller
    already started is used as it is and left running.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    if not os.environ.get("RAY_ADDRESS"):
        # Ray replaces a 127.0.0.1 node address by the machine's outward one unless it is told this
        # node is no cluster member (read when ray is first imported; workers inherit it).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                 configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
