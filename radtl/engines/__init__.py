"""Training and evaluation with MONAI's Ignite engines: batch preparation, the study's metrics, radtl handlers.

radtl configures MONAI's ``SupervisedTrainer`` and ``SupervisedEvaluator`` (bundles wire them in
JSON) rather than writing its own loop; what the study's protocol needs beyond MONAI lives here.
"""

from radtl.engines.handlers import MetricsWriter, PredictionWriter, TrainingHistory, write_json
from radtl.engines.metrics import Accuracy, MacroF1, class_indices, regression_values
from radtl.engines.prepare import PrepareBatch

__all__ = [
    "Accuracy",
    "MacroF1",
    "MetricsWriter",
    "PredictionWriter",
    "PrepareBatch",
    "TrainingHistory",
    "class_indices",
    "regression_values",
    "write_json",
]
