"""VGG-16 (Simonyan & Zisserman 2015, configuration D), laid out as torchvision lays it out.

MONAI has no VGG. ``features`` numbers convolutions, ReLUs and max-pools in one sequence (the
convolutions at 0, 2, 5, 7, ...), and ``classifier`` is Linear-ReLU-Dropout twice then the
output layer at ``classifier.6``, so torchvision and RadiologyNET checkpoints load unchanged.
"""

from torch import nn

from radtl.networks.backbone import SequentialBackbone, require_2d
from radtl.networks.registry import register

# Configuration D: output channels of each 3x3 convolution, "M" for a 2x2 max-pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(SequentialBackbone):
    """VGG-16 in torchvision's layout with radtl's backbone interface.

    The pyramid maps are the outputs of the five max-pools (strides 2 to 32).

    Args:
        in_channels: input channels.
        num_classes: outputs of the classifier; 0 removes the classifier.
        spatial_dims: 2; this architecture exists in 2-D only.
        dropout: dropout after each hidden linear layer.
    """

    stem_conv = "features.0.weight"
    classifier_name = "classifier"

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, spatial_dims: int = 2, dropout: float = 0.5):
        super().__init__()
        require_2d(type(self).__name__, spatial_dims)
        self.dropout = dropout
        layers: list[nn.Module] = []
        channels = in_channels
        for width in VGG16_LAYERS:
            if width == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.num_features = channels * 7 * 7
        self.classifier = self.make_classifier(num_classes) if num_classes else nn.Identity()
        self.pyramid_layers = [i for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
        self.feature_channels = (64, 128, 256, 512, 512)
        self._initialize()

    def make_classifier(self, num_classes: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(self.num_features, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(self.dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(self.dropout),
            nn.Linear(4096, num_classes),
        )

    def _initialize(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)


register("vgg16", VGG16)
