"""Where the Ray work runs: a Ray started in this process, or a cluster.

Addresses, as ``--address`` takes them:

- ``HOST:PORT``: the cluster's GCS, as ``ray start --head`` prints it (port 6379 by
  default). This process joins the cluster as a driver, so it must reach every node.
- ``ray://HOST:PORT``: Ray Client (port 10001 by default), for a driver outside the
  cluster network; it needs ``ray[client]`` (the ``dist`` extra).
- ``auto``: the cluster ``ray start`` left running on this machine.

Before ``ray.init`` the address is probed (a TCP connection, then one gRPC call with
the token, a few seconds each), so a wrong address or token fails at once with one
line instead of after Ray's own retries. Token authentication (``RAY_AUTH_MODE=token``)
is Ray's: the token comes from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token``, as for every Ray command. A Ray started here (no address)
follows Ray's default for a local cluster: token auth on, with the token in
``~/.ray/auth_token``, made if missing, unless ``RAY_AUTH_MODE=disabled``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kefuqa.io.readers import InputError

PROBE_TIMEOUT_S = 5.0


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of an address, or None for ``auto``; a malformed one is refused."""
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--address {address!r}: expected HOST:PORT (the GCS, e.g. 10.0.0.5:6379), "
                         "ray://HOST:PORT (Ray Client, e.g. ray://10.0.0.5:10001) or auto")
    return host.strip("[]"), int(port)


# One cheap call per kind of address: any answer but "unauthenticated" means Ray is
# there and takes our token. The request is an empty message, valid for both.
_PROBE_METHOD = {"gcs": "/ray.rpc.NodeInfoGcsService/GetClusterId", "client": "/ray.rpc.RayletDriver/ClusterInfo"}


def auth_token() -> str | None:
    """The token Ray itself would send to an explicit address: with ``RAY_AUTH_MODE=token``
    only (with the mode unset Ray sends none there), from ``RAY_AUTH_TOKEN``, the file
    ``RAY_AUTH_TOKEN_PATH`` names, or ``~/.ray/auth_token``."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return None
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast, with one line, when nothing, something other than Ray, or a Ray that
    refuses our token answers at ``address``."""
    target = parse_address(address)
    if target is None:
        return
    host, port = target
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"no Ray at {address}: {reason} (is the cluster up? `ray start --head` "
                         "prints its address)") from None
    if importlib.util.find_spec("grpc") is None:
        return  # without grpcio there is no call to try; ray.init reports the rest
    _call(address, f"{host}:{port}", timeout)


def _call(address: str, target: str, timeout: float) -> None:
    import grpc

    token = auth_token()
    metadata = [("authorization", f"Bearer {token}")] if token else []
    method = _PROBE_METHOD["client" if address.startswith("ray://") else "gcs"]
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=bytes, response_deserializer=bytes)
        try:
            call(b"", metadata=metadata, timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise InputError(f"Ray at {address} refused the token: it runs with token auth (RAY_AUTH_MODE=token); "
                                 "give its token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token") from None
            if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED,
                        grpc.StatusCode.INTERNAL):
                raise InputError(f"{address} answers, but not as Ray ({code.name.lower()}): give the GCS "
                                 "port (6379 by default), or ray://HOST:10001 for Ray Client") from None


def _init_options(address: str | None, workers: int | None) -> dict[str, object]:
    # ray.init sets the level of the "ray" logger itself: INFO unless told. Through Ray
    # Client both also go to the server's ray.init, which then keeps the workers' log
    # lines to itself too.
    quiet: dict[str, object] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:  # a Ray of our own: a CPU per actor, and one for the read tasks
        return {"num_cpus": (workers or os.cpu_count() or 1) + 1, "include_dashboard": False, **quiet}
    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise InputError("ray:// addresses need Ray Client: pip install 'kefu-qa[dist]' (ray[client])")
    return quiet


# Ray Data loggers whose lines kefuqa says itself: a failed task's error (raised again
# here: one line for an unreadable input, the traceback otherwise) and the notice that
# its progress bars are off.
_SAID_HERE = {"ray.data._internal.execution.streaming_executor_state": logging.CRITICAL,
              "ray.data.exceptions": logging.CRITICAL, "ray.data._internal.progress": logging.ERROR}


def quiet_ray_logging() -> None:
    """Ray's INFO lines (cluster started, dataset plans, sinks finished) would bury the
    one summary line ``kefuqa score`` prints; its other warnings and errors still show."""
    for name, level in {"ray": logging.WARNING, "ray.data": logging.WARNING, **_SAID_HERE}.items():
        logging.getLogger(name).setLevel(level)


def pool_size(workers: int | None, cpus: float) -> int:
    """Actors hold a CPU each for the whole run; one CPU stays for the read tasks, or
    they would never be scheduled and the run would wait for ever."""
    room = max(int(cpus) - 1, 1)
    return min(workers, room) if workers else room


def _init(ray: Any, address: str | None, workers: int | None) -> None:
    # Ray Client's server can fail a session it is starting (its per-client server
    # seems gone before it is seen running; seen on the first session of a new
    # cluster): one more try connects.
    tries = 2 if address is not None and address.startswith("ray://") else 1
    for attempt in range(1, tries + 1):
        try:
            ray.init(address=address, **_init_options(address, workers))
            return
        except (ConnectionError, RuntimeError, ValueError, TimeoutError, ray.exceptions.RayError) as exc:
            ray.shutdown()  # whatever a failed start left running
            if attempt == tries:
                why = " ".join(str(exc).split())[:300] or type(exc).__name__
                raise InputError(f"cannot connect to Ray at {address or 'a new local Ray'}: {why}") from None


@contextmanager
def _our_sigterm_handler() -> Iterator[None]:
    """Ray's core installs a C-level handler for SIGTERM on ``ray.init`` that prints a stack
    dump and ends the process at once: no clean-up, no one-line message. Put back the
    handler this process had (``kefuqa``'s, which stops the command like Ctrl-C does)."""
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main else None
    try:
        yield
    finally:
        if on_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def ray_session(address: str | None, workers: int | None) -> Iterator[int]:
    """Connected (or started) for the block; yields the actor pool size (``pool_size``)."""
    import ray

    if ray.is_initialized():  # a caller's own Ray (a test, a notebook) is used as it is
        yield pool_size(workers, ray.cluster_resources().get("CPU", 1))
        return
    if address is not None:
        probe(address)
    quiet_ray_logging()
    with _our_sigterm_handler():
        _init(ray, address, workers)
    try:
        yield pool_size(workers, ray.cluster_resources().get("CPU", 1))
    finally:
        ray.shutdown()
