"""The network registry: every architecture radtl builds, by the name the study and torchvision use.

``create`` is what bundle configs call::

    "network_def": {"_target_": "radtl.networks.create", "name": "resnet50", "num_classes": 4}

Each module of :mod:`radtl.networks` registers its architectures when the package is imported;
:func:`register` adds a user's own.
"""

from collections.abc import Callable

from torch import nn

NETWORKS: dict[str, Callable[..., nn.Module]] = {}

#: The ten architectures the RadiologyNET study pretrained and fine-tuned (Table 3.1).
STUDY_BACKBONES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "densenet121",
    "efficientnet_b3",
    "efficientnet_b4",
    "inception_v3",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "vgg16",
)


def register(name: str, factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``factory`` (a class or function returning a module) under ``name``."""
    if name in NETWORKS:
        raise ValueError(f"a network named {name!r} is already registered")
    NETWORKS[name] = factory
    return factory


def available() -> tuple[str, ...]:
    """Registered names, sorted."""
    return tuple(sorted(NETWORKS))


def create(name: str, **kwargs) -> nn.Module:
    """Build the network registered as ``name``.

    Backbones take ``in_channels`` (default 3), ``num_classes`` (default 1000; 1 for a binary
    task's single logit; 0 for no classifier) and ``spatial_dims`` (default 2); segmentation
    networks take ``out_channels``; see each architecture for the rest.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; radtl builds: {', '.join(available())}")
    return NETWORKS[name](**kwargs)
