"""Unsupervised pseudo-labelling of an unlabelled archive.

:mod:`radtl.pseudolabel.tag_features`: the DICOM-tag feature table of RadiologyNET (thesis 2.3.2):
MissForest imputation, then [0, 1] scaling of continuous tags and one-hot encoding of categorical
tags, fitted once on a sample and re-applied to the archive in batches
(:func:`~radtl.pseudolabel.tag_features.tag_features_from_index` over a metadata index).
"""

from radtl.pseudolabel.tag_features import (
    FORMAT_VERSION,
    MissForestImputer,
    TagFeatureTable,
    parse_age_string,
    parse_age_strings,
    tag_features_from_index,
)

__all__ = ["FORMAT_VERSION", "MissForestImputer", "TagFeatureTable", "parse_age_string", "parse_age_strings",
           "tag_features_from_index"]
