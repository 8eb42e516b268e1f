"""The chunk runner convert and index share: every chunk's result or failure reaches the caller."""

from __future__ import annotations

import os

import dask

from radtl.parallel import chunked, map_chunks


def square(chunk: list[int]) -> list[int]:
    return [value * value for value in chunk]


def square_or_die(chunk: list[int]) -> list[int]:
    if 3 in chunk:
        os._exit(1)  # a worker killed mid-task, as a decoder crash or the OOM killer would
    return square(chunk)


def test_chunked_streams_fixed_size_lists():
    assert list(chunked(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_in_process_every_chunk_reaches_on_result_in_order():
    seen = []
    map_chunks(square, chunked(range(5), 2), on_result=lambda chunk, result: seen.append((chunk, result)),
               on_failure=lambda chunk, error: None)
    assert seen == [([0, 1], [0, 1]), ([2, 3], [4, 9]), ([4], [16])]


def test_on_a_cluster_every_chunk_is_reported_once_even_when_a_worker_dies():
    results, failures = {}, []
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # no retries: fail at the first death
        map_chunks(square_or_die, [[1], [2], [3], [4], [5]],
                   on_result=lambda chunk, result: results.update({chunk[0]: result}),
                   on_failure=lambda chunk, error: failures.append(chunk[0]), workers=2)
    # chunks queued on the dying worker fail with it; each chunk is reported exactly once either way
    assert 3 in failures and sorted([*results, *failures]) == [1, 2, 3, 4, 5]
    assert all(result == [key * key] for key, result in results.items())
