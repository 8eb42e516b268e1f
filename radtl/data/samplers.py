"""The pretraining sampler: class oversampling, one shard subset per process, resumable within an epoch.

The RadiologyNET study oversampled its small pseudo-label classes (shared/science/radiologynet.md,
"Pretraining"); under ``torchrun`` each process should read its own part of the packed shards
(:mod:`radtl.data.pack`), so the pages it touches stay in its page cache; and a run killed in
the middle of a week-long epoch must continue where it stopped, not re-read the epoch from its
start. :class:`PretrainingSampler` does the three, and is a ``DistributedSampler`` so MONAI's
engines call :meth:`set_epoch` at every epoch start.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import ignite.distributed as idist
import numpy as np
import torch
from torch.utils.data import DistributedSampler

__all__ = ["PretrainingSampler", "class_balanced_weights"]


def class_balanced_weights(labels: Sequence[Hashable]) -> np.ndarray:
    """Sampling weights ``1 / n_c`` per item of class ``c``, normalised to sum to 1.

    Drawing with these weights gives every class the same expected share of an epoch, which is
    what oversampling the small pseudo-label classes amounts to.
    """
    _, inverse, counts = np.unique(np.asarray([str(label) for label in labels]), return_inverse=True,
                                   return_counts=True)
    weights = 1.0 / counts[inverse]
    return weights / weights.sum()


class PretrainingSampler(DistributedSampler):
    """Indices of one process for one epoch: shuffled or class-balanced, by shard, resumable.

    Every epoch's order is a function of ``(seed, epoch)`` only, so the processes agree without
    communicating and a resumed run sees the same order as the one that was killed.

    - ``balance=False``: a permutation of this process's items (every item once per epoch).
    - ``balance=True``: ``num_samples`` draws with replacement and weights ``1 / class size``
      (:func:`class_balanced_weights`), so small classes are seen as often as large ones.
    - ``shards`` (lists of dataset indices, e.g. ``PackedDataset.shard_indices()``): process
      ``r`` of ``R`` draws only from shards ``r, r + R, ...``; without shards (or with fewer shards
      than processes) the epoch's order is dealt out item by item as in PyTorch's sampler.

    Every process yields the same number of indices, ``ceil(len(dataset) / R)`` unless
    ``num_samples`` is given, so distributed data parallel steps stay in lockstep.

    Args:
        dataset: anything with ``len``.
        labels: one class label per item (needed with ``balance``).
        balance: oversample small classes.
        shards: groups of dataset indices that one process reads together.
        num_replicas: processes; from ``ignite.distributed`` by default (1 without torchrun).
        rank: this process; from ``ignite.distributed`` by default.
        seed: the seed every epoch's order is drawn from.
        num_samples: indices per process and epoch.
    """

    def __init__(
        self,
        dataset: Sequence,
        labels: Sequence[Hashable] | None = None,
        balance: bool = False,
        shards: Sequence[Sequence[int]] | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
        num_samples: int | None = None,
    ) -> None:
        num_replicas = idist.get_world_size() if num_replicas is None else num_replicas
        rank = idist.get_rank() if rank is None else rank
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        if balance and (labels is None or len(labels) != len(dataset)):
            raise ValueError(f"balance needs one label per item: {len(dataset)} items, "
                             f"{'no' if labels is None else len(labels)} labels")
        self.balance = balance
        self.weights = class_balanced_weights(labels) if balance else None
        self.num_samples = num_samples or math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shards = None
        if shards is not None and len(shards) >= num_replicas:
            self.shards = [np.asarray(shard, dtype=np.int64) for shard in shards]
        self.epoch = 1  # Ignite numbers epochs from 1; set_epoch(1) at the first epoch changes nothing
        self.start = 0

    def skip(self, count: int) -> None:
        """Leave out the first ``count`` indices of the next epoch's order (a resumed epoch)."""
        if not 0 <= count <= self.num_samples:
            raise ValueError(f"cannot skip {count} of an epoch of {self.num_samples} indices")
        self.start = count

    def state_dict(self) -> dict:
        """``{"seed", "epoch", "start"}``: with the dataset, all that fixes the indices still to come."""
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"the checkpoint's sampler was seeded {state['seed']}, this run's is seeded {self.seed}")
        self.epoch, self.start = int(state["epoch"]), int(state["start"])

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This process's ``num_samples`` indices for ``epoch``, before any :meth:`skip`."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.shards is not None:
            pool = np.concatenate(self.shards[self.rank :: self.num_replicas])
            return self._draw(pool, self.num_samples, rng)
        order = self._draw(np.arange(len(self.dataset)), self.total_size, rng)
        return order[self.rank : self.total_size : self.num_replicas]

    def _draw(self, pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
        if self.weights is not None:
            weights = self.weights[pool]
            return rng.choice(pool, size=count, replace=True, p=weights / weights.sum())
        repeats = math.ceil(count / len(pool))
        return np.concatenate([rng.permutation(pool) for _ in range(repeats)])[:count]

    def __iter__(self):
        start, self.start = self.start, 0
        return iter(torch.from_numpy(self.epoch_indices(self.epoch)[start:]).tolist())

    def __len__(self) -> int:
        return self.num_samples
