"""ResNet-18/34/50 (He et al. 2016) on MONAI's ResNet, in torchvision's state-dict layout.

MONAI's ResNet names its modules as torchvision does (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``); with a 7x7 stride-2 stem and bias-free downsampling
convolutions it is torchvision's ResNet v1.5 tensor for tensor, so checkpoints need no renaming.
"""

from functools import partial

import torch
from monai.networks.nets import ResNet as MonaiResNet

from radtl.networks.backbone import Backbone
from radtl.networks.registry import register

RESNET_DEPTHS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
}


class ResNet(MonaiResNet, Backbone):
    """A torchvision-compatible ResNet with radtl's backbone interface.

    Args:
        depth: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        in_channels: input channels, 3 for ImageNet-style input, 1 for grey-scale.
        num_classes: outputs of the ``fc`` classifier; 0 removes it.
        spatial_dims: 2 for images, 3 for volumes.
    """

    stem_conv = "conv1.weight"
    classifier_name = "fc"

    def __init__(self, depth: str, in_channels: int = 3, num_classes: int = 1000, spatial_dims: int = 2):
        block, layers = RESNET_DEPTHS[depth]
        super().__init__(
            block=block,
            layers=layers,
            block_inplanes=[64, 128, 256, 512],
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            conv1_t_size=7,
            conv1_t_stride=2,
            num_classes=max(num_classes, 1),
            bias_downsample=False,
        )
        expansion = 4 if block == "bottleneck" else 1
        self.num_features = 512 * expansion
        self.feature_channels = (64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion)
        if num_classes == 0:
            self.reset_classifier(0)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.act(self.bn1(self.conv1(x)))
        c2 = self.layer1(self.maxpool(stem))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [stem, c2, c3, c4, c5]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.feature_maps(x)[-1]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


for _depth in RESNET_DEPTHS:
    register(_depth, partial(ResNet, _depth))
