"""Small callables a bundle's JSON wires into MONAI's engines and handlers, so the JSON holds no logic.

- :func:`lower_is_better`, :func:`is_lower` and :func:`validation_metric`: early stopping, checkpoint selection
  and learning-rate scheduling on a validation metric that is better lower (the bone-age MAE), the counterparts of
  ``monai.handlers.stopping_fn_from_metric`` and the evaluators' default ``metric_cmp_fn``;
- :func:`handlers_for_rank`: a bundle's ``handlers`` and ``rank0_handlers`` as the engine of this process runs them,
  so ``multi_gpu_train.json`` needs no list kept by position;
- :func:`output_loss`: the batch loss of a trainer whose iteration returns a dict (``DINOTrainer``), for the
  handlers' ``loss_transform`` and ``output_transform``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["handlers_for_rank", "is_lower", "lower_is_better", "output_loss", "validation_metric"]


def lower_is_better(metric: str) -> Callable:
    """``EarlyStopHandler``'s ``score_function`` for ``metric`` when lower is better: minus the evaluator's value
    (ignite's early stopping keeps the highest score).

    Args:
        metric: the name of the evaluator's metric (``"mae"``).
    """

    def score(engine) -> float:
        return -engine.state.metrics[metric]

    return score


def is_lower(current: float, best: float) -> bool:
    """``metric_cmp_fn`` of a MONAI evaluator whose key metric is better lower: ``current`` beats ``best``."""
    return current < best


def validation_metric(evaluator, metric: str) -> Callable:
    """``LrScheduleHandler``'s ``step_transform`` for a ``ReduceLROnPlateau`` on ``metric``: the value
    ``evaluator`` computed last, whatever engine asks.

    Args:
        evaluator: the validation engine.
        metric: the name of its metric (``"mae"``).
    """

    def value(_engine) -> float:
        return evaluator.state.metrics[metric]

    return value


def handlers_for_rank(handlers: Sequence, rank0_handlers: Sequence = ()) -> list:
    """The handlers this process's engine runs: ``handlers`` in every process, then ``rank0_handlers`` (logs,
    checkpoints, exports, TensorBoard) in the first process only, or in a run without ``torch.distributed``.

    Args:
        handlers: a bundle's ``train#handlers`` (or ``validate#handlers``): run by every process.
        rank0_handlers: its ``train#rank0_handlers`` (or ``validate#rank0_handlers``): run by rank 0 only.
    """
    import torch.distributed as dist

    first = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
    return [*handlers, *(rank0_handlers if first else ())]


def output_loss(output: dict) -> object:
    """The batch loss in an iteration's output dict (``output["loss"]``), as ``DINOTrainer`` returns it.

    MONAI's ``from_engine(["loss"], first=True)`` reads a decollated list of dicts and returns a tuple for a
    dict; this is its counterpart for a trainer that returns one dict per iteration.

    Args:
        output: ``engine.state.output`` of the iteration.
    """
    return output["loss"]
