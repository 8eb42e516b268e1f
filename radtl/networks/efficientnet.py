"""EfficientNet-B3/B4 (Tan & Le 2019) on MONAI's EfficientNetBN, computing what torchvision computes.

MONAI's EfficientNet follows the TensorFlow release: "same" padding, which pads stride-2
convolutions asymmetrically (one pixel at the bottom and right only), and batch norm with
``eps=1e-3``. torchvision pads every convolution symmetrically and keeps batch norm's default
``eps=1e-5``. The ImageNet and RadiologyNET checkpoints the study used were trained in
torchvision, so by default radtl builds the torchvision convention: the same tensors then give the
same outputs. ``convention="tensorflow"`` keeps MONAI's, for weights trained in MONAI.

The module names differ entirely; :meth:`EfficientNet.torchvision_module_names` maps them stage by
stage (``_blocks.1.2._depthwise_conv`` is torchvision's ``features.2.1.block.1.0``).
"""

from functools import partial

import torch
from monai.networks.nets import EfficientNetBN
from torch import nn

from radtl.networks.backbone import Backbone, pyramid_ends
from radtl.networks.registry import register

NORM_CONVENTIONS = {
    "torchvision": ("batch", {"eps": 1e-5, "momentum": 0.1}),
    "tensorflow": ("batch", {"eps": 1e-3, "momentum": 0.01}),
}


class EfficientNet(EfficientNetBN, Backbone):
    """An EfficientNet with radtl's backbone interface.

    Args:
        variant: ``"efficientnet_b0"`` to ``"efficientnet_b7"``; the study used B3 and B4.
        in_channels: input channels.
        num_classes: outputs of the ``_fc`` classifier; 0 removes it.
        spatial_dims: 2 for images, 3 for volumes.
        convention: ``"torchvision"`` (symmetric padding, batch-norm eps 1e-5; matches torchvision
            and RadiologyNET checkpoints) or ``"tensorflow"`` (MONAI's "same" padding, eps 1e-3).
    """

    stem_conv = "_conv_stem.weight"
    classifier_name = "_fc"

    def __init__(
        self,
        variant: str,
        in_channels: int = 3,
        num_classes: int = 1000,
        spatial_dims: int = 2,
        convention: str = "torchvision",
    ):
        if convention not in NORM_CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(NORM_CONVENTIONS)}, got {convention!r}")
        super().__init__(
            model_name=variant.replace("_", "-"),
            pretrained=False,
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=max(num_classes, 1),
            norm=NORM_CONVENTIONS[convention],
        )
        if convention == "torchvision":
            self._pad_symmetrically()
        self._use_silu()
        stacks = list(self._blocks)
        self.num_features = self._fc.in_features
        # Pyramid candidates, in order: the stem, each stack of blocks, the head convolution.
        layer_strides = [2] + [args.stride for args in self._blocks_args] + [1]
        layer_channels = [self._bn0.num_features] + [stack[-1].out_channels for stack in stacks]
        layer_channels.append(self.num_features)
        self.pyramid_layers = pyramid_ends(layer_strides)
        self.feature_channels = tuple(layer_channels[i] for i in self.pyramid_layers)
        if num_classes == 0:
            self.reset_classifier(0)

    def _pad_symmetrically(self) -> None:
        """Replace every "same" padder with the convolution's own symmetric zero padding."""
        for module in self.modules():
            for name, padder in list(module.named_children()):
                conv = getattr(module, name.removesuffix("_padding"), None)
                if name.endswith("_padding") and isinstance(conv, nn.modules.conv._ConvNd):
                    conv.padding = tuple((k - 1) // 2 * d for k, d in zip(conv.kernel_size, conv.dilation))
                    setattr(module, name, nn.Identity())

    def _use_silu(self) -> None:
        """torch's fused SiLU for MONAI's memory-efficient swish, which TorchScript cannot compile."""
        for module in self.modules():
            if hasattr(module, "_swish"):
                module._swish = nn.SiLU()

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self._swish(self._bn0(self._conv_stem(self._conv_stem_padding(x))))
        features: list[torch.Tensor] = []
        if 0 in self.pyramid_layers:
            features.append(x)
        for index, stack in enumerate(self._blocks):
            x = stack(x)
            if index + 1 in self.pyramid_layers:
                features.append(x)
        features.append(self._swish(self._bn1(self._conv_head(self._conv_head_padding(x)))))
        return features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self._avg_pooling(self.feature_maps(x)[-1]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(x)))

    def torchvision_module_names(self) -> dict[str, str]:
        stacks = list(self._blocks)
        head = f"features.{len(stacks) + 1}"
        renames = {
            "_conv_stem": "features.0.0",
            "_bn0": "features.0.1",
            "_conv_head": f"{head}.0",
            "_bn1": f"{head}.1",
            "_fc": "classifier.1",
        }
        for stack_index, stack in enumerate(stacks):
            for position, (block_name, block) in enumerate(stack.named_children()):
                ours = f"_blocks.{stack_index}.{block_name}"
                theirs = f"features.{stack_index + 1}.{position}.block"
                # torchvision numbers the sub-blocks it builds; the expansion exists only when expand_ratio > 1.
                parts = ["expand"] * (block.expand_ratio != 1) + ["depthwise", "se", "project"]
                number = {part: index for index, part in enumerate(parts)}
                if "expand" in number:
                    renames[f"{ours}._expand_conv"] = f"{theirs}.{number['expand']}.0"
                    renames[f"{ours}._bn0"] = f"{theirs}.{number['expand']}.1"
                renames[f"{ours}._depthwise_conv"] = f"{theirs}.{number['depthwise']}.0"
                renames[f"{ours}._bn1"] = f"{theirs}.{number['depthwise']}.1"
                renames[f"{ours}._se_reduce"] = f"{theirs}.{number['se']}.fc1"
                renames[f"{ours}._se_expand"] = f"{theirs}.{number['se']}.fc2"
                renames[f"{ours}._project_conv"] = f"{theirs}.{number['project']}.0"
                renames[f"{ours}._bn2"] = f"{theirs}.{number['project']}.1"
        return renames


for _variant in range(8):
    register(f"efficientnet_b{_variant}", partial(EfficientNet, f"efficientnet_b{_variant}"))
