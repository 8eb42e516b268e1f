"""Running one function over chunks of work: in this process, on a local Dask cluster, or on a remote one.

``radtl convert`` and ``radtl index`` share this runner. Chunks come from an iterator and
at most a few per worker are in flight, so the driver never holds the whole archive's work
list or results: a caller streams chunks in and records each result as it arrives.

- ``workers == 1`` and no ``scheduler``: the chunks run here, one after the other (no
  cluster start-up; the same task function a cluster would run).
- ``workers > 1``: a local Dask cluster of that many single-threaded processes.
- ``scheduler="tcp://host:port"``: an existing Dask cluster whose workers have radtl
  installed and see the same paths (a shared filesystem).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

__all__ = ["INTERRUPTIONS", "chunked", "map_chunks"]

#: The ``BaseException``\ s that stop a run. Every other failure of a task is recorded and the run goes on;
#: a decoder written in Rust panics with a ``BaseException`` (``pyo3_runtime.PanicException``), not an ``Exception``.
INTERRUPTIONS = (KeyboardInterrupt, SystemExit, GeneratorExit)

Chunk = TypeVar("Chunk", bound=Sequence)


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter), without materialising ``items``."""
    iterator = iter(items)
    while part := list(islice(iterator, size)):
        yield part


def map_chunks(
    function: Callable[..., Any],
    chunks: Iterable[Chunk],
    *args: Any,
    on_result: Callable[[Chunk, Any], None],
    on_failure: Callable[[Chunk, BaseException], None],
    workers: int = 1,
    scheduler: str | None = None,
    in_flight_per_worker: int = 4,
) -> None:
    """Call ``function(chunk, *args)`` for every chunk and hand each result to ``on_result(chunk, result)``.

    ``function`` is expected to record bad input in its result rather than raise; when a
    cluster task fails anyway (a worker killed by a decoder crash or the OOM killer),
    ``on_failure(chunk, error)`` records it and the run goes on with the next chunk. In this
    process an exception from ``function`` is a bug and propagates.

    Args:
        function: a picklable, module-level function (it travels to Dask workers).
        chunks: the units of work, consumed lazily.
        args: further arguments, the same for every chunk.
        on_result: called in the driver, in completion order.
        on_failure: called in the driver for a chunk whose cluster task failed.
        workers: 1 runs here; N > 1 starts a local Dask cluster of N processes.
        scheduler: address of a running Dask scheduler (``tcp://host:port``); overrides ``workers``.
        in_flight_per_worker: how many chunks are queued per worker at once.
    """
    if scheduler is None and workers <= 1:
        for chunk in chunks:
            on_result(chunk, function(chunk, *args))
        return
    _map_on_dask(function, iter(chunks), args, on_result, on_failure, workers, scheduler, in_flight_per_worker)


def _map_on_dask(function, chunks, args, on_result, on_failure, workers, scheduler, in_flight_per_worker) -> None:
    import dask
    from distributed import Client, LocalCluster, as_completed

    if scheduler:
        cluster, client = None, Client(scheduler)
    else:
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which turns off glibc's adaptive mmap
        # threshold: every multi-MB frame buffer is then page-faulted afresh (measured: 7.8 ->
        # 13 ms per file; docs/performance.md). Local workers run with the glibc default.
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        slots = max(1, len(client.scheduler_info().get("workers", {})) or workers)
        futures = {}
        for chunk in islice(chunks, slots * in_flight_per_worker):
            futures[client.submit(function, chunk, *args, pure=False)] = chunk
        flow = as_completed(list(futures))
        for future in flow:
            chunk = futures.pop(future)
            try:
                result = future.result()
            except INTERRUPTIONS:
                raise
            except BaseException as error:  # noqa: BLE001 - a lost worker or a panic fails its chunk, recorded
                on_failure(chunk, error)
            else:
                on_result(chunk, result)
            following = next(chunks, None)
            if following is not None:
                new = client.submit(function, following, *args, pure=False)
                futures[new] = following
                flow.add(new)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
