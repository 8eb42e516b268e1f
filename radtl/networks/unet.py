"""U-Nets for segmentation: the plain U-Net and the study's U-Net with a pretrained encoder.

The RadiologyNET study segmented LUNA nodules with U-Net-ResNet50, U-Net-EfficientNetB4 and
U-Net-VGG16: a classification backbone replaces U-Net's contracting path and its intermediate
outputs feed the decoder through skip connections (shared/science/radiologynet.md, "Downstream
tasks and wiring"). :class:`EncoderUNet` holds the backbone itself under ``encoder``, so the
encoder's tensors are a classification checkpoint's tensors under the ``encoder.`` prefix.
"""

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from monai.networks.nets import BasicUNet
from torch import nn

from radtl.networks.backbone import Backbone, require_2d
from radtl.networks.registry import create, register


def set_foreground_prior(head: nn.Module, prior: float | None) -> None:
    """Initialise a sigmoid head's bias so that every voxel starts at probability ``prior``.

    Lin et al. 2017 (RetinaNet, section 3.3): with a rare foreground, a zero bias starts every
    voxel at 0.5 and the first updates are spent on the background; worse, a Dice loss with
    the study's false-negative term can settle in predicting everything. ``b = log(pi / (1 - pi))``
    starts from "almost nothing is foreground" instead. None keeps PyTorch's initialisation.
    """
    if prior is None:
        return
    if not 0 < prior < 1:
        raise ValueError(f"foreground_prior must be in (0, 1), got {prior}")
    nn.init.constant_(head.bias, math.log(prior / (1 - prior)))


class ConvNormReLU(nn.Sequential):
    """3x3 convolution, batch norm, ReLU: the decoder's unit."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Module):
    """2x2 transposed convolution, concatenation with the skip, two :class:`ConvNormReLU`.

    Architectures with unpadded convolutions (InceptionV3) give skips whose size is not exactly
    twice the upsampled map's; the upsampled map is then resized to the skip's size.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.convs = nn.Sequential(
            ConvNormReLU(out_channels + skip_channels, out_channels), ConvNormReLU(out_channels, out_channels)
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


class EncoderUNet(nn.Module):
    """U-Net whose contracting path is a classification backbone (U-Net-ResNet50 and kin).

    Skips come from the input and the backbone's pyramid at strides 2, 4, 8 and 16 (for ResNet50:
    the stem before max-pooling, then layer1 to layer3); the stride-32 map passes a bridge of two
    :class:`ConvNormReLU`; five :class:`UpBlock` return to full resolution and a 1x1 convolution
    gives ``out_channels`` logits (apply a sigmoid or softmax in post-processing).

    Args:
        encoder: a registered backbone name or a :class:`~radtl.networks.backbone.Backbone`;
            its classifier is removed.
        in_channels: input channels (when ``encoder`` is a name).
        out_channels: output channels (1 for a binary mask).
        decoder_channels: widths of the five up-blocks, deepest first.
        bridge_channels: width of the bridge at stride 32.
        spatial_dims: 2.
        foreground_prior: initial foreground probability of the output (see :func:`set_foreground_prior`).
        encoder_kwargs: further arguments for the backbone (when ``encoder`` is a name).
    """

    def __init__(
        self,
        encoder: str | Backbone = "resnet50",
        in_channels: int = 3,
        out_channels: int = 1,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        bridge_channels: int = 512,
        spatial_dims: int = 2,
        foreground_prior: float | None = None,
        **encoder_kwargs,
    ):
        super().__init__()
        require_2d(type(self).__name__, spatial_dims)
        if isinstance(encoder, str):
            encoder = create(encoder, in_channels=in_channels, num_classes=0, **encoder_kwargs)
        else:
            encoder.reset_classifier(0)
            in_channels = encoder.get_parameter(encoder.stem_conv).shape[1]
        if len(decoder_channels) != 5:
            raise ValueError(f"decoder_channels needs five widths (strides 16 to 1), got {tuple(decoder_channels)}")
        self.encoder = encoder
        pyramid = encoder.feature_channels
        self.bridge = nn.Sequential(
            ConvNormReLU(pyramid[-1], bridge_channels), ConvNormReLU(bridge_channels, bridge_channels)
        )
        skip_channels = [pyramid[3], pyramid[2], pyramid[1], pyramid[0], in_channels]
        widths = [bridge_channels, *decoder_channels]
        self.up_blocks = nn.ModuleList(
            UpBlock(widths[i], skip_channels[i], widths[i + 1]) for i in range(len(decoder_channels))
        )
        self.head = nn.Conv2d(decoder_channels[-1], out_channels, kernel_size=1)
        set_foreground_prior(self.head, foreground_prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.encoder.feature_maps(x)
        skips = [maps[3], maps[2], maps[1], maps[0], x]
        y = self.bridge(maps[-1])
        for index, up in enumerate(self.up_blocks):
            y = up(y, skips[index])
        return self.head(y)


class UNet(BasicUNet):
    """The original U-Net (Ronneberger et al. 2015) widths, 64 to 1024, on MONAI's BasicUNet.

    The study pretrained it as an autoencoder (input = target) on RadiologyNET and ImageNet.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        spatial_dims: 2 for images, 3 for volumes.
        features: widths of the five levels and of the last up-block.
        foreground_prior: initial foreground probability of the output (see :func:`set_foreground_prior`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        spatial_dims: int = 2,
        features: Sequence[int] = (64, 128, 256, 512, 1024, 64),
        foreground_prior: float | None = None,
    ):
        super().__init__(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels, features=features
        )
        set_foreground_prior(self.final_conv, foreground_prior)


register("unet", UNet)
register("encoder_unet", EncoderUNet)
# The study's three (shared/science/radiologynet.md, LUNA).
for _encoder in ("resnet50", "efficientnet_b4", "vgg16"):
    register(f"unet_{_encoder}", partial(EncoderUNet, _encoder))
