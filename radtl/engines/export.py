"""Export a pretrained backbone in the layout the fine-tuning bundles load.

A pretraining run ends with the weights a fine-tuning bundle's ``--pretrained`` takes:
``backbone.pt``, a radtl state dict without the pretraining head (the 36-class pseudo-label
classifier, DINO's projection head, a reconstruction U-Net's output convolution), under
``"state_dict"`` beside a description of how it was made::

    {"state_dict": {...}, "architecture": "resnet50", "pretraining": "pseudo-label classification",
     "head": ["fc."], "metric": {"f1": 0.71}, "epoch": 12}

:func:`radtl.networks.load_pretrained` reads it like any checkpoint (``"state_dict"`` is one of
its container keys), and every backbone tensor finds its place in the fine-tuning network; the
fine-tuning head is the only part left to train.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from torch import nn

from radtl.atomic import write_atomic
from radtl.engines.dino import unwrap
from radtl.networks.backbone import Backbone

__all__ = ["BackboneExport", "backbone_state_dict"]

logger = logging.getLogger("radtl.engines")


def backbone_state_dict(network: nn.Module, head: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """``network``'s state dict on the CPU without its head.

    Args:
        network: a radtl backbone (its head is :meth:`Backbone.head_prefixes`), or any module
            with ``head`` naming the key prefixes to leave out (``("final_conv.",)`` for a U-Net).
        head: key prefixes of the head; by default the backbone's own.
    """
    network = unwrap(network)
    if head is None:
        if not isinstance(network, Backbone):
            raise ValueError(f"{type(network).__name__} is not a radtl backbone: name its head's key prefixes")
        head = network.head_prefixes()
    prefixes = tuple(head)
    return {key: value.detach().cpu().clone() for key, value in network.state_dict().items()
            if not key.startswith(prefixes)}


class BackboneExport:
    """Write ``backbone.pt`` whenever the key validation metric improves (or at every event).

    Attach it to the evaluator (with ``key_metric``) to keep the best backbone, or to the trainer
    (``key_metric=None``, ``event="EPOCH_COMPLETED"``) to keep the latest, as for DINO's teacher.

    Args:
        network: the network whose backbone is exported (DDP-wrapped is fine); or a callable
            returning it.
        path: the ``.pt`` file.
        architecture: the registered name that rebuilds it (``radtl.networks.create``).
        pretraining: how it was pretrained, recorded in the file.
        head: key prefixes left out (default: the backbone's classification head).
        key_metric: the evaluator metric that must improve for a new export; None exports always.
        higher_is_better: False for errors and losses.
        event: the Ignite event name the export runs on.
        extra: further values recorded in the file (image size, labels).
    """

    def __init__(
        self,
        network: nn.Module | Callable[[], nn.Module],
        path: str | os.PathLike,
        architecture: str,
        pretraining: str,
        head: Sequence[str] | None = None,
        key_metric: str | None = None,
        higher_is_better: bool = True,
        event: str = "COMPLETED",
        extra: Mapping | None = None,
    ) -> None:
        self.network = network
        self.path = Path(path)
        self.architecture = architecture
        self.pretraining = pretraining
        self.head = head
        self.key_metric = key_metric
        self.higher_is_better = higher_is_better
        self.event = Events[event]
        self.extra = dict(extra or {})
        self.best: float | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(self.event, self)

    def _improved(self, engine: Engine) -> bool:
        if self.key_metric is None:
            return True
        value = engine.state.metrics.get(self.key_metric)
        if value is None:
            raise KeyError(f"BackboneExport: the evaluator has no metric {self.key_metric!r} "
                           f"(it has {sorted(engine.state.metrics)})")
        value = float(value)
        better = self.best is None or (value > self.best if self.higher_is_better else value < self.best)
        if better:
            self.best = value
        return better

    def __call__(self, engine: Engine) -> None:
        if not self._improved(engine) or idist.get_rank() > 0:
            return
        self.export(metrics=dict(engine.state.metrics), epoch=engine.state.epoch)

    def export(self, metrics: Mapping | None = None, epoch: int | None = None) -> Path:
        """Write the file now and return its path."""
        network = self.network if isinstance(self.network, nn.Module) else self.network()
        content = {
            "state_dict": backbone_state_dict(network, self.head),
            "architecture": self.architecture,
            "pretraining": self.pretraining,
            "head": list(self.head if self.head is not None else unwrap(network).head_prefixes()),
            "metric": {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))},
            "epoch": epoch,
            **self.extra,
        }
        write_atomic(self.path, lambda tmp: torch.save(content, tmp))
        logger.info("backbone exported to %s%s", self.path,
                    f" ({self.key_metric} {self.best:.4f})" if self.key_metric and self.best is not None else "")
        return self.path
