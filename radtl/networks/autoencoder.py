"""The RadiologyNET feature-extraction autoencoders (thesis 2.4.1): dense for DICOM tags, convolutional for images.

The study reduced each data source to an embedding before clustering it into pseudo-labels
(shared/science/radiologynet.md, "Feature extraction and clustering"). Both networks are trained
to reconstruct their input (MSE, Adam; :func:`radtl.pseudolabel.encoders.train_autoencoder`) and
``encode`` returns the bottleneck, the embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from monai.networks.layers import Conv, Pool
from torch import nn

__all__ = ["ConvAutoencoder", "DenseAutoencoder"]


class DenseAutoencoder(nn.Module):
    """The DICOM-tag autoencoder: dense layers with ReLU down to a linear bottleneck, mirrored back.

    Thesis 2.4.1: "All AE encoders comprised three fully connected (dense) layers with
    progressively decreasing dimensionality, each followed by a rectified linear unit (ReLU)
    activation. The encoder output was passed through a central bottleneck layer [...]. The
    decoder mirrored the encoder layout." The best configuration (Table 2.3 grid) was
    512-200-125 with a 32-d bottleneck.

    The bottleneck (the embedding) is a Linear layer without activation, so the embedding is
    not clipped at zero; the decoder ends with a Linear layer to ``in_features``, also without
    activation (MSE on the [0, 1] tag features).

    Args:
        in_features: width of the tag feature matrix.
        hidden: widths of the encoder's dense layers, widest first; the decoder uses them reversed.
        bottleneck: width of the latent representation.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (512, 200, 125), bottleneck: int = 32):
        super().__init__()
        widths = [int(in_features), *(int(h) for h in hidden), int(bottleneck)]
        if any(w < 1 for w in widths):
            raise ValueError(f"in_features, hidden and bottleneck must be positive, got {widths}")
        self.in_features = widths[0]
        self.bottleneck = widths[-1]
        self.encoder = _dense_stack(widths)
        self.decoder = _dense_stack(widths[::-1])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_features)`` -> ``(N, bottleneck)`` latent."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_features)`` -> ``(N, in_features)`` reconstruction."""
        return self.decoder(self.encoder(x))


def _dense_stack(widths: Sequence[int]) -> nn.Sequential:
    """Linear + ReLU between consecutive ``widths``; the last Linear without activation."""
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(pairwise(widths)):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(widths) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ConvAutoencoder(nn.Module):
    """The image convolutional autoencoder (CAE) of RadiologyNET, laid out like U-Net's encoder.

    Thesis 2.4.1: "the CAE encoder consisted of four convolutional layers with 3x3 kernels, each
    followed by a ReLU activation and 2x2 max pooling. These layers comprised 64, 128, 256, and
    512 filters, respectively. A final convolutional layer with 1,024 filters formed the
    bottleneck representation, which was then passed to a decoder mirroring the encoder's
    structure." The latent map is flattened into the image embedding.

    - encoder: per width in ``channels``, a 3x3 convolution (padding 1) + ReLU + 2x2 max pooling;
      then a 3x3 convolution + ReLU with ``bottleneck`` filters: the latent map,
      ``(N, bottleneck, H / 2**L, W / 2**L)`` for ``L = len(channels)``;
    - decoder: per level, widest first, a 2x2 transposed convolution with stride 2 and a 3x3
      convolution + ReLU; then a 1x1 convolution to ``in_channels`` and a sigmoid, since the
      inputs (converted 8-bit images / 255) lie in [0, 1].

    Args:
        spatial_dims: 2 for images, 3 for volumes.
        in_channels: input (and output) channels.
        channels: filters of the encoder's convolutions, one level each.
        bottleneck: filters of the bottleneck convolution.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512),
        bottleneck: int = 1024,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or any(c < 1 for c in (*channels, in_channels, bottleneck)):
            raise ValueError(
                f"channels needs at least one level, and all widths must be positive; got in_channels={in_channels}, "
                f"channels={channels}, bottleneck={bottleneck}"
            )
        conv = Conv[Conv.CONV, spatial_dims]
        up_conv = Conv[Conv.CONVTRANS, spatial_dims]
        max_pool = Pool[Pool.MAX, spatial_dims]
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.channels = channels
        self.bottleneck = bottleneck

        encoder: list[nn.Module] = []
        width = in_channels
        for out in channels:
            encoder += [conv(width, out, kernel_size=3, padding=1), nn.ReLU(inplace=True), max_pool(kernel_size=2)]
            width = out
        encoder += [conv(width, bottleneck, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = []
        width = bottleneck
        for out in reversed(channels):
            decoder += [
                up_conv(width, out, kernel_size=2, stride=2),
                conv(out, out, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
            ]
            width = out
        decoder += [conv(width, in_channels, kernel_size=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*decoder)

    @property
    def downsampling(self) -> int:
        """The factor ``2**len(channels)`` every spatial size must be divisible by."""
        return 2 ** len(self.channels)

    def latent_shape(self, spatial_size: Sequence[int]) -> tuple[int, ...]:
        """The latent map's shape (without the batch axis) for inputs of ``spatial_size``."""
        self._check_size(tuple(spatial_size))
        return (self.bottleneck, *(s // self.downsampling for s in spatial_size))

    def _check_size(self, spatial_size: tuple[int, ...]) -> None:
        if len(spatial_size) != self.spatial_dims or any(s % self.downsampling for s in spatial_size):
            raise ValueError(
                f"ConvAutoencoder with {len(self.channels)} pooling levels needs {self.spatial_dims} spatial sizes "
                f"divisible by 2**{len(self.channels)} = {self.downsampling}, got {tuple(spatial_size)}"
            )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, *spatial)`` -> the latent map ``(N, bottleneck, *spatial / 2**L)``."""
        self._check_size(tuple(x.shape[2:]))
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, *spatial)`` -> the reconstruction, same shape, values in (0, 1)."""
        return self.decoder(self.encode(x))
