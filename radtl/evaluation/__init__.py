"""Evaluation of pretrained networks beyond fine-tuning: frozen-backbone regimes and robustness to the ROI.

- :mod:`radtl.evaluation.frozen`: Radio DINO's and OmniRad's adaptation regimes short of full
  fine-tuning (shared/science/radio-dino-omnirad.md): kNN and logistic probes, the logistic
  probe across input scales, head-only training on frozen features and LoRA through ``peft``::

      from radtl.engines import PrepareBatch
      from radtl.evaluation import frozen_evaluation, lora_finetune
      from radtl.networks import create

      scores = frozen_evaluation(create("vit_small", num_classes=0), train_loader, test_loader, PrepareBatch())
      lora = lora_finetune(create("vit_small", num_classes=2), train_loader, test_loader, PrepareBatch(), rank=8)

- :mod:`radtl.evaluation.probes`: features of a split through a frozen network, and the kNN and logistic probes
  on them.
- :mod:`radtl.evaluation.robustness`: the bone-tumour study's bounding-box perturbation
  (shared/science/bone-tumour.md): predictions under shifted and scaled ROI boxes, their
  stability, and a paired test between two models.
"""

from radtl.evaluation.frozen import (
    frozen_evaluation,
    head_only,
    lora_finetune,
    lora_model,
    lora_target_modules,
    multiscale_probe,
)
from radtl.evaluation.probes import extract_features, probe
from radtl.evaluation.robustness import (
    REFERENCE,
    BoxPerturbation,
    box_perturbations,
    compare_stability,
    crop_roi,
    perturb_box,
    roi_robustness,
    stability_summary,
)

__all__ = [
    "REFERENCE",
    "BoxPerturbation",
    "box_perturbations",
    "compare_stability",
    "crop_roi",
    "extract_features",
    "frozen_evaluation",
    "head_only",
    "lora_finetune",
    "lora_model",
    "lora_target_modules",
    "multiscale_probe",
    "perturb_box",
    "probe",
    "roi_robustness",
    "stability_summary",
]
