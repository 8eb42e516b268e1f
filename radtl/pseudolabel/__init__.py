"""Unsupervised pseudo-labelling of an unlabelled archive, the RadiologyNET way (thesis 2.3-2.4).

One module per stage of the study's pipeline:

- :mod:`~radtl.pseudolabel.tag_features`: the DICOM-tag feature table (MissForest imputation,
  [0, 1] scaling, one-hot), fitted on a sample and re-applied to the archive in batches;
- :mod:`~radtl.pseudolabel.encoders`: the tag autoencoder / PCA and the image convolutional
  autoencoder (:class:`TagEncoder`, :class:`ImageEncoder`), trained with Ignite;
- :mod:`~radtl.pseudolabel.text`: report text as BoW, TF-IDF or Doc2Vec (:class:`TextEmbedder`)
  with a pluggable stemmer;
- :mod:`~radtl.pseudolabel.fusion`: ``embeddings``, ``clusterdists`` and ``clusterprobs``
  (:class:`SourceFusion`);
- :mod:`~radtl.pseudolabel.cluster`: k-means, mini-batch k-means and FasterPAM k-medoids
  (:class:`ClusterModel`), the Kneedle elbow and seed stability;
- :mod:`~radtl.pseudolabel.metrics`: HS, NMI, S, D_I, D_D, D_score and the rule that drops
  heterogeneous clusters;
- :mod:`~radtl.pseudolabel.report`: mosaics, composition charts, embedding maps, report.md/html;
- :mod:`~radtl.pseudolabel.pipeline`: ``radtl pseudolabel CONFIG``, all of it from an index,
  converted images and a reports CSV to labels and a pretraining datalist.
"""

from radtl.pseudolabel.cluster import STUDY_KS, ClusterModel, ElbowResult, StabilityResult, cluster_stability, elbow
from radtl.pseudolabel.encoders import ImageEncoder, TagEncoder, train_autoencoder
from radtl.pseudolabel.fusion import FUSION_METHODS, SourceFusion
from radtl.pseudolabel.metrics import (
    ClusterRule,
    cluster_composition,
    cluster_entropy,
    clustering_scores,
    distance_scores,
    intra_cluster_cosine_distances,
)
from radtl.pseudolabel.pipeline import PseudolabelConfig, PseudolabelResult, load_config, run_pseudolabel
from radtl.pseudolabel.tag_features import (
    FORMAT_VERSION,
    MissForestImputer,
    TagFeatureTable,
    parse_age_string,
    parse_age_strings,
    tag_features_from_index,
)
from radtl.pseudolabel.text import STEMMERS, TextEmbedder, get_stemmer, register_stemmer, tokenize

__all__ = [
    "FORMAT_VERSION",
    "FUSION_METHODS",
    "STEMMERS",
    "STUDY_KS",
    "ClusterModel",
    "ClusterRule",
    "ElbowResult",
    "ImageEncoder",
    "MissForestImputer",
    "PseudolabelConfig",
    "PseudolabelResult",
    "SourceFusion",
    "StabilityResult",
    "TagEncoder",
    "TagFeatureTable",
    "TextEmbedder",
    "cluster_composition",
    "cluster_entropy",
    "cluster_stability",
    "clustering_scores",
    "distance_scores",
    "elbow",
    "get_stemmer",
    "intra_cluster_cosine_distances",
    "load_config",
    "parse_age_string",
    "parse_age_strings",
    "register_stemmer",
    "run_pseudolabel",
    "tag_features_from_index",
    "tokenize",
    "train_autoencoder",
]
