"""DenseNet-121 (Huang et al. 2017) on MONAI's DenseNet121, with the map to torchvision's names.

MONAI and torchvision compute the same network but name two kinds of module differently: a dense
layer's convolutions and norms sit under ``layers.`` in MONAI (``denselayer1.layers.norm1``) and
directly on the layer in torchvision (``denselayer1.norm1``), and the classifier is
``class_layers.out`` in MONAI and ``classifier`` in torchvision.
"""

import torch
from monai.networks.nets import DenseNet121 as MonaiDenseNet121

from radtl.networks.backbone import Backbone
from radtl.networks.registry import register


class DenseNet121(MonaiDenseNet121, Backbone):
    """MONAI's DenseNet-121 with radtl's backbone interface.

    Args:
        in_channels: input channels.
        num_classes: outputs of the ``class_layers.out`` classifier; 0 removes it.
        spatial_dims: 2 for images, 3 for volumes.
    """

    stem_conv = "features.conv0.weight"
    classifier_name = "class_layers.out"

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, spatial_dims: int = 2):
        super().__init__(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=max(num_classes, 1))
        self.num_features = 1024
        self.feature_channels = (64, 256, 512, 1024, 1024)
        if num_classes == 0:
            self.reset_classifier(0)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.features
        stem = f.relu0(f.norm0(f.conv0(x)))
        c2 = f.denseblock1(f.pool0(stem))
        c3 = f.denseblock2(f.transition1(c2))
        c4 = f.denseblock3(f.transition2(c3))
        c5 = self.class_layers.relu(f.norm5(f.denseblock4(f.transition3(c4))))
        return [stem, c2, c3, c4, c5]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.class_layers.pool(self.feature_maps(x)[-1]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_layers.out(self.forward_features(x))

    def torchvision_module_names(self) -> dict[str, str]:
        renames = {"class_layers.out": "classifier"}
        for name, _ in self.named_modules():
            if ".layers." in name:
                renames[name] = name.replace(".layers.", ".")
        return renames


register("densenet121", DenseNet121)
