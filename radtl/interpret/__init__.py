"""Interpreting radtl's classifiers: Grad-CAM heatmaps, their localisation Dice, and their blinded rating.

- :mod:`~radtl.interpret.gradcam`: :func:`class_activation_maps` (MONAI's Grad-CAM and Grad-CAM++
  on the layer :func:`target_layer` finds), :func:`overlay`, :func:`side_by_side` and
  :func:`save_heatmap` for display, and :func:`localisation_dice` (the map at 20% of its peak
  against the lesion mask, as Radio DINO and OmniRad score it);
- :mod:`~radtl.interpret.rating`: the RadiologyNET study's blinded rating of heatmaps by
  radiologists, 1 (irrelevant) to 5 (only relevant regions): :func:`write_rating_sheet`,
  :func:`read_ratings`, :func:`rating_summary`.

::

    from radtl.interpret import class_activation_maps, save_heatmap

    maps = class_activation_maps(model, images)  # (B, 1, H, W) in [0, 1]
    save_heatmap("heatmaps/case_001.png", images[0], maps[0, 0])
"""

from radtl.interpret.gradcam import (
    CAM_METHODS,
    class_activation_maps,
    localisation_dice,
    overlay,
    save_heatmap,
    side_by_side,
    target_layer,
)
from radtl.interpret.rating import (
    KEY_COLUMNS,
    RATING_SCALE,
    SHEET_COLUMNS,
    rating_summary,
    read_ratings,
    write_rating_sheet,
)

__all__ = [
    "CAM_METHODS",
    "KEY_COLUMNS",
    "RATING_SCALE",
    "SHEET_COLUMNS",
    "class_activation_maps",
    "localisation_dice",
    "overlay",
    "rating_summary",
    "read_ratings",
    "save_heatmap",
    "side_by_side",
    "target_layer",
    "write_rating_sheet",
]
