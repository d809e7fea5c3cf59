"""Batch scoring on Ray Data, end to end on the cluster, for archives past one machine.

``read_datasource(ConversationSource)`` reads, validates and masks in Ray's read
tasks (one per input file), ``map_batches(RayScorer, compute=ActorPoolStrategy)``
scores in an actor pool (one engine per actor, the pipeline's ``score_stream``), and
``write_datasink(ScoreSink)`` writes part files from Ray's write tasks. This process
only plans and waits, so its memory does not grow with the archive. The output is a
directory (layout in ``kefuqa.service.ray_io``); ``--resume`` keeps the units an
interrupted run finished (``kefuqa.service.ray_output``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kefuqa.io.readers import InputError
from kefuqa.service.batch import BatchSummary, EngineSpec
from kefuqa.settings import Settings
from kefuqa.text.pii import PiiMasker

if TYPE_CHECKING:  # ray_output imports Ray, which is optional
    from kefuqa.service.ray_output import RunPlan

UNIT_ITEMS = 4096  # input items per unit: the grain of parts, markers and --resume


@dataclass(frozen=True)
class RaySummary(BatchSummary):
    """``scored`` and ``rejected`` count this run; after ``--resume`` the ``*_before``
    fields count the units kept from the interrupted run. ``actors``: the scoring
    pool's size (0 when a resumed run had nothing left to do)."""

    units_kept: int = 0
    actors: int = 0

    def line(self) -> str:
        kept = (f", resumed with {self.units_kept} finished units kept (already done: {self.scored_before} "
                f"scored, {self.rejected_before} rejected)") if self.units_kept else ""
        return super().line() + kept


def score_file_ray(
    input_path: Path,
    spec: EngineSpec,
    settings: Settings,
    output: Path | None,
    address: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    unit_items: int = UNIT_ITEMS,
) -> RaySummary:
    """Score an archive (or a directory of archives) into the directory ``output``."""
    try:
        import ray.data  # noqa: F401 - only to say clearly when it is missing
    except ImportError:
        raise InputError("Ray is not installed: pip install 'kefu-qa[dist]'") from None
    if output is None:
        raise InputError("with Ray the output is a directory of part files: give -o OUT (or -o OUT.parquet)")
    from kefuqa.service.ray_cluster import ray_session
    from kefuqa.service.ray_output import finish, input_files, plan_run

    plan = plan_run(input_files(input_path, output), output, unit_items, resume)
    t0 = time.perf_counter()
    pool = 0
    if not plan.finished:
        try:
            with ray_session(address, workers) as pool:
                _run_on_cluster(plan, spec, settings, pool)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (kefuqa.cli): the finished units are kept
            exc.add_note(f"{output} holds the units finished so far; run the same command with --resume to finish")
            raise
    scored, rejected = finish(plan)
    return RaySummary(scored - plan.scored_before, rejected - plan.rejected_before, time.perf_counter() - t0,
                      output, plan.rejects_dir if rejected else None, scored_before=plan.scored_before,
                      rejected_before=plan.rejected_before, units_kept=len(plan.done), actors=pool)


def _run_on_cluster(plan: RunPlan, spec: EngineSpec, settings: Settings, pool: int) -> None:
    """Ray Data's executor needs a process that is part of the cluster: through Ray
    Client (ray://) it runs in a task on the cluster, otherwise here."""
    import ray
    from ray.util.client import ray as client

    if not client.is_connected():
        _execute(plan, spec, settings, pool)
        return
    try:
        ray.get(ray.remote(num_cpus=0)(_execute).remote(plan, spec, settings, pool))
    except ray.exceptions.RayTaskError as exc:
        raise _input_error(exc) or exc from None


def _execute(plan: RunPlan, spec: EngineSpec, settings: Settings, pool: int) -> None:
    import ray.data

    from kefuqa.service.ray_cluster import quiet_ray_logging
    from kefuqa.service.ray_io import ConversationSource, RayScorer, ScoreSink

    quiet_ray_logging()  # here too: through Ray Client this runs in a task on the cluster
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    masker = PiiMasker.from_settings(settings.pii)
    source = ConversationSource([str(p) for p in plan.inputs], limits=settings.limits, masker=masker,
                                unit_items=plan.unit_items, done=plan.done)
    ds = ray.data.read_datasource(source).map_batches(
        RayScorer, fn_constructor_kwargs={"spec": spec, "masker": masker, "batch_size": settings.batch_size},
        batch_size=None, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=1)
    try:
        # Writing is mostly I/O; holding no CPU, it cannot wait behind a read task
        # that holds the spare one while Ray's backpressure pauses it.
        ds.write_datasink(ScoreSink(plan.out_dir, plan.fmt), ray_remote_args={"num_cpus": 0})
    except Exception as exc:
        error = _input_error(exc)
        if error is None:
            raise
        raise error from None


def _input_error(exc: BaseException) -> InputError | None:
    """A file unreadable on the cluster: the task's ``InputError`` as one line, without
    Ray's wrapping and the retry advice Ray Data appends on further lines."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, InputError):
        return InputError(str(cause).split("\n", 1)[0])
    return None
