"""MobileNetV3 Small and Large (Howard et al. 2019), laid out tensor for tensor as torchvision lays them out.

MONAI has no MobileNetV3. This module builds it from the paper's Tables 1 and 2 with torchvision's
module names (``features.{i}.block.{j}``, ``fc1``/``fc2`` in squeeze-excitation, ``classifier.0``
and ``classifier.3``), so torchvision and RadiologyNET checkpoints load without renaming.
"""

from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from radtl.networks.backbone import SequentialBackbone, pyramid_ends, require_2d
from radtl.networks.registry import register

# MobileNetV3 uses batch norm with eps 1e-3 and momentum 0.01 (TensorFlow's 0.99 decay).
BATCH_NORM = {"eps": 0.001, "momentum": 0.01}


class Bottleneck(NamedTuple):
    """One row of the paper's architecture table (Tables 1 and 2)."""

    kernel: int
    expanded: int
    out: int
    squeeze_excite: bool
    hard_swish: bool
    stride: int


def bneck(kernel, expanded, out, se, nl, stride) -> Bottleneck:
    return Bottleneck(kernel, expanded, out, se, nl == "HS", stride)


# Rows: kernel, expansion size, output channels, squeeze-excite, non-linearity, stride.
MOBILENET_V3_CONFIGS = {
    "mobilenet_v3_large": (
        [
            bneck(3, 16, 16, False, "RE", 1),
            bneck(3, 64, 24, False, "RE", 2),
            bneck(3, 72, 24, False, "RE", 1),
            bneck(5, 72, 40, True, "RE", 2),
            bneck(5, 120, 40, True, "RE", 1),
            bneck(5, 120, 40, True, "RE", 1),
            bneck(3, 240, 80, False, "HS", 2),
            bneck(3, 200, 80, False, "HS", 1),
            bneck(3, 184, 80, False, "HS", 1),
            bneck(3, 184, 80, False, "HS", 1),
            bneck(3, 480, 112, True, "HS", 1),
            bneck(3, 672, 112, True, "HS", 1),
            bneck(5, 672, 160, True, "HS", 2),
            bneck(5, 960, 160, True, "HS", 1),
            bneck(5, 960, 160, True, "HS", 1),
        ],
        1280,
    ),
    "mobilenet_v3_small": (
        [
            bneck(3, 16, 16, True, "RE", 2),
            bneck(3, 72, 24, False, "RE", 2),
            bneck(3, 88, 24, False, "RE", 1),
            bneck(5, 96, 40, True, "HS", 2),
            bneck(5, 240, 40, True, "HS", 1),
            bneck(5, 240, 40, True, "HS", 1),
            bneck(5, 120, 48, True, "HS", 1),
            bneck(5, 144, 48, True, "HS", 1),
            bneck(5, 288, 96, True, "HS", 2),
            bneck(5, 576, 96, True, "HS", 1),
            bneck(5, 576, 96, True, "HS", 1),
        ],
        1024,
    ),
}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never below 90% of ``value`` (MobileNetV2 rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvNormActivation(nn.Sequential):
    """Convolution (same padding, no bias), batch norm, optional activation: ``0``, ``1``, ``2``."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, activation=nn.ReLU):
        layers = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels, **BATCH_NORM),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018) with MobileNetV3's hard-sigmoid gate (paper section 5.3)."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(self.avgpool(x)))))


class InvertedResidual(nn.Module):
    """Expansion 1x1, depthwise kxk, optional squeeze-excitation, linear projection 1x1 (paper Fig. 4)."""

    def __init__(self, in_channels: int, row: Bottleneck):
        super().__init__()
        activation = nn.Hardswish if row.hard_swish else nn.ReLU
        layers: list[nn.Module] = []
        if row.expanded != in_channels:
            layers.append(ConvNormActivation(in_channels, row.expanded, 1, activation=activation))
        layers.append(ConvNormActivation(row.expanded, row.expanded, row.kernel, row.stride, row.expanded, activation))
        if row.squeeze_excite:
            layers.append(SqueezeExcitation(row.expanded, make_divisible(row.expanded // 4)))
        layers.append(ConvNormActivation(row.expanded, row.out, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = row.stride == 1 and in_channels == row.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV3(SequentialBackbone):
    """MobileNetV3 in torchvision's layout with radtl's backbone interface.

    Args:
        variant: ``"mobilenet_v3_small"`` or ``"mobilenet_v3_large"``.
        in_channels: input channels.
        num_classes: outputs of the classifier; 0 removes the classifier.
        spatial_dims: 2; this architecture exists in 2-D only.
        dropout: dropout before the last linear layer.
    """

    stem_conv = "features.0.0.weight"
    classifier_name = "classifier"

    def __init__(
        self, variant: str, in_channels: int = 3, num_classes: int = 1000, spatial_dims: int = 2, dropout: float = 0.2
    ):
        super().__init__()
        require_2d(type(self).__name__, spatial_dims)
        rows, self.hidden_features = MOBILENET_V3_CONFIGS[variant]
        self.dropout = dropout
        layers: list[nn.Module] = [ConvNormActivation(in_channels, 16, 3, 2, activation=nn.Hardswish)]
        channels = 16
        for row in rows:
            layers.append(InvertedResidual(channels, row))
            channels = row.out
        self.num_features = 6 * channels
        layers.append(ConvNormActivation(channels, self.num_features, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = self.make_classifier(num_classes) if num_classes else nn.Identity()

        self.pyramid_layers = pyramid_ends([2] + [row.stride for row in rows] + [1])
        widths = [16] + [row.out for row in rows] + [self.num_features]
        self.feature_channels = tuple(widths[i] for i in self.pyramid_layers)
        self._initialize()

    def make_classifier(self, num_classes: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(self.num_features, self.hidden_features),
            nn.Hardswish(inplace=True),
            nn.Dropout(self.dropout, inplace=True),
            nn.Linear(self.hidden_features, num_classes),
        )

    def _initialize(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)


for _variant in MOBILENET_V3_CONFIGS:
    register(_variant, partial(MobileNetV3, _variant))
