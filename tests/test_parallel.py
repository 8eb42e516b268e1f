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


def test_on_a_cluster_a_chunk_whose_worker_dies_is_reported_and_the_others_complete():
    results, failures = {}, []
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        map_chunks(square_or_die, [[1], [2], [3], [4], [5]],
                   on_result=lambda chunk, result: results.update({chunk[0]: result}),
                   on_failure=lambda chunk, error: failures.append(chunk), workers=2)
    assert results == {1: [1], 2: [4], 4: [16], 5: [25]} and failures == [[3]]
