"""Training and evaluation with MONAI's Ignite engines: batch preparation, the study's metrics, radtl handlers.

radtl configures MONAI's ``SupervisedTrainer`` and ``SupervisedEvaluator`` (bundles wire them in
JSON) rather than writing its own loop; what the study's protocol needs beyond MONAI lives here.
Self-supervised pretraining, whose step differs (a teacher, crops, an EMA update), has its own
trainer on MONAI's ``Trainer``: :class:`DINOTrainer`.
"""

from radtl.engines.dino import (
    DINOTrainer,
    build_teacher,
    cosine_schedule,
    describe_pretraining,
    param_groups_for_weight_decay,
    update_teacher,
)
from radtl.engines.export import BackboneExport, backbone_state_dict
from radtl.engines.handlers import (
    EpochLog,
    MetricsWriter,
    PredictionWriter,
    TerminalProgressBar,
    TrainingHistory,
    write_json,
)
from radtl.engines.metrics import (
    Accuracy,
    MacroF1,
    class_indices,
    classification_scores,
    confusion_matrix,
    per_class_scores,
    regression_values,
)
from radtl.engines.prepare import PrepareBatch
from radtl.engines.probes import KNNAccuracy, knn_predict
from radtl.engines.reports import ClassificationReport, RegressionReport, ReportError
from radtl.engines.resume import EvaluatorBest, ResumableCheckpoint
from radtl.engines.wiring import handlers_for_rank, is_lower, lower_is_better, output_loss, validation_metric
from radtl.lazy import moved_names

__all__ = [
    "Accuracy",
    "BackboneExport",
    "ClassificationReport",
    "DINOTrainer",
    "EpochLog",
    "EvaluatorBest",
    "KNNAccuracy",
    "MacroF1",
    "MetricsWriter",
    "PredictionWriter",
    "PrepareBatch",
    "RegressionReport",
    "ReportError",
    "ResumableCheckpoint",
    "TerminalProgressBar",
    "TrainingHistory",
    "backbone_state_dict",
    "build_teacher",
    "class_indices",
    "classification_scores",
    "confusion_matrix",
    "cosine_schedule",
    "describe_pretraining",
    "handlers_for_rank",
    "is_lower",
    "knn_predict",
    "lower_is_better",
    "output_loss",
    "param_groups_for_weight_decay",
    "per_class_scores",
    "regression_values",
    "update_teacher",
    "validation_metric",
    "write_json",
]


__getattr__ = moved_names(__name__, dict.fromkeys(("extract_features", "probe"), "radtl.evaluation.probes"))
