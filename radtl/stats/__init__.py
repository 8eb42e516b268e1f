"""Statistics for comparing pretrained models, as the RadiologyNET and bone-tumour studies report them.

- :mod:`~radtl.stats.compare`: the RadiologyNET procedure (thesis 3.3) for a metric across
  initialisations: Levene, then Kruskal-Wallis and Bonferroni-corrected Mann-Whitney U, or one-way
  ANOVA and Tukey HSD, or the t-test for two groups (:func:`compare_groups`, :func:`compare_table`),
  with every exclusion and untestable case explained instead of turned into a p-value;
- :mod:`~radtl.stats.roc`: ROC AUC with DeLong confidence intervals and DeLong's paired test of two
  AUCs on the same cases (DeLong et al. 1988, via Sun & Xu 2014), as in the bone-tumour study
  (:func:`auc_ci`, :func:`delong_test`);
- :mod:`~radtl.stats.bootstrap`: seeded bootstrap confidence intervals of any statistic, e.g. the F1
  score (:func:`bootstrap_ci`);
- :mod:`~radtl.stats.selection`: the study's model selection over a sweep's runs (:func:`select_best`).
"""

from radtl.stats.bootstrap import BOOTSTRAP_METHODS, BootstrapCI, BootstrapError, bootstrap_ci
from radtl.stats.compare import (
    EXACT_MWU_MAX_PAIRS,
    GroupComparison,
    PairwiseTest,
    compare_groups,
    compare_table,
    mann_whitney_bonferroni,
)
from radtl.stats.roc import AUCResult, DeLongResult, auc_ci, delong_components, delong_test
from radtl.stats.selection import select_best

__all__ = [
    "BOOTSTRAP_METHODS",
    "EXACT_MWU_MAX_PAIRS",
    "AUCResult",
    "BootstrapCI",
    "BootstrapError",
    "DeLongResult",
    "GroupComparison",
    "PairwiseTest",
    "auc_ci",
    "bootstrap_ci",
    "compare_groups",
    "compare_table",
    "delong_components",
    "delong_test",
    "mann_whitney_bonferroni",
    "select_best",
]
