"""Inception-v3 (Szegedy et al. 2016), laid out tensor for tensor as torchvision lays it out.

MONAI has no Inception. The modules carry torchvision's names (``Conv2d_1a_3x3``, ``Mixed_5b``
to ``Mixed_7c``, ``AuxLogits``, ``fc``; each convolution a ``conv`` + ``bn`` pair with batch-norm
eps 1e-3), so torchvision and RadiologyNET checkpoints load unchanged. The study fed it 299x299
images; the stem's unpadded convolutions make its pyramid maps slightly smaller than
``299 / stride`` (147, 71, 35, 17, 8).

``forward`` returns the main logits only, in training too, so the model scripts to one output
type; :meth:`InceptionV3.forward_with_aux` also returns the auxiliary classifier's logits
(section 4 of the paper) for a training loss that uses them.
"""


import torch
import torch.nn.functional as F
from torch import nn

from radtl.networks.backbone import Backbone, require_2d
from radtl.networks.registry import register

# torchvision's ImageNet weights expect input scaled to [-1, 1]; transform_input converts from
# the usual ImageNet mean/std normalisation (torchvision's Inception_V3_Weights sets it).
from radtl.networks.transfer import IMAGENET_MEAN, IMAGENET_STD


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionA(nn.Module):
    """35x35 module (paper Fig. 5): 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (paper Fig. 10): strided 3x3, strided double 3x3, max-pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([self.branch3x3(x), branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
    """17x17 module with factorised 7x7 convolutions (paper Fig. 6)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(branch7x7dbl))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: strided 3x3 after 1x1, strided 3x3 after factorised 7x7, max-pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        branch7x7x3 = self.branch7x7x3_4(self.branch7x7x3_3(branch7x7x3))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class InceptionE(nn.Module):
    """8x8 module with expanded filter banks (paper Fig. 7): 1x3 and 3x1 branches side by side."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17x17 grid (paper section 4)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InceptionV3(Backbone):
    """Inception-v3 in torchvision's layout with radtl's backbone interface.

    Args:
        in_channels: input channels.
        num_classes: outputs of ``fc`` (and of the auxiliary classifier); 0 removes both.
        aux_logits: build the auxiliary classifier (torchvision's checkpoints carry it).
        transform_input: convert ImageNet-normalised input to the [-1, 1] scaling torchvision's
            ImageNet weights were trained on (3-channel input only).
        spatial_dims: 2; this architecture exists in 2-D only.
        dropout: dropout before ``fc``.
    """

    stem_conv = "Conv2d_1a_3x3.conv.weight"
    classifier_name = "fc"
    extra_head_modules = ("AuxLogits",)

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        aux_logits: bool = True,
        transform_input: bool = False,
        spatial_dims: int = 2,
        dropout: float = 0.5,
    ):
        super().__init__()
        require_2d(type(self).__name__, spatial_dims)
        if transform_input and in_channels != 3:
            raise ValueError("transform_input converts ImageNet RGB normalisation and needs in_channels=3")
        self.transform_input = transform_input
        # x * std / 0.5 + (mean - 0.5) / 0.5 per channel; not in the state dict (torchvision has no such tensors)
        self.register_buffer("input_scale", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) / 0.5, persistent=False)
        self.register_buffer(
            "input_shift", (torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) - 0.5) / 0.5, persistent=False
        )
        self.Conv2d_1a_3x3 = BasicConv2d(in_channels, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits: InceptionAux | None = InceptionAux(768, num_classes) if aux_logits and num_classes else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.num_features = 2048
        self.fc = self.make_classifier(num_classes) if num_classes else nn.Identity()
        self.feature_channels = (64, 192, 288, 768, 2048)
        self._initialize()

    def reset_classifier(self, num_classes: int) -> None:
        """Also rebuilds the auxiliary classifier for the new classes, or removes it when 0."""
        super().reset_classifier(num_classes)
        if self.AuxLogits is not None:
            self.AuxLogits = InceptionAux(768, num_classes) if num_classes else None

    def _initialize(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, std=0.1, a=-2, b=2)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _normalise_input(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.input_scale + self.input_shift if self.transform_input else x

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self._normalise_input(x)
        c1 = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        c2 = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(c1)))
        c3 = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(self.maxpool2(c2))))
        c4 = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(c3)))))
        c5 = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(c4)))
        return [c1, c2, c3, c4, c5]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.feature_maps(x)[-1]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Main and auxiliary logits; the auxiliary ones are None when the model has no AuxLogits."""
        maps = self.feature_maps(x)
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(maps[-1]), 1)))
        aux = self.AuxLogits(maps[3]) if self.AuxLogits is not None else None
        return logits, aux


register("inception_v3", InceptionV3)
