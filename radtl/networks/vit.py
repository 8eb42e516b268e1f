"""Vision Transformers (Dosovitskiy et al. 2021) on MONAI's ViT, for the self-supervised work.

Radio DINO and OmniRad use ViT-S/16 and ViT-B/16 (shared/science/radio-dino-omnirad.md). A ViT
has one resolution, the patch grid at stride 16; its pyramid takes five evenly spaced blocks'
patch tokens and resizes them bilinearly to strides 2, 4, 8, 16 and 32, the parameter-free
"simple feature pyramid" of ViTDet (Li et al. 2022), so U-Net decoders and Grad-CAM treat it like
a CNN.
"""

from functools import partial

import torch
import torch.nn.functional as F
from monai.networks.nets import ViT

from radtl.networks.backbone import PYRAMID_STRIDES, Backbone
from radtl.networks.registry import register

VIT_SIZES = {
    # hidden size, MLP size, blocks, heads
    "vit_tiny": (192, 768, 12, 3),
    "vit_small": (384, 1536, 12, 6),
    "vit_base": (768, 3072, 12, 12),
}


class VisionTransformer(ViT, Backbone):
    """MONAI's ViT with a linear classifier on the class token and radtl's backbone interface.

    Args:
        size: ``"vit_tiny"``, ``"vit_small"`` or ``"vit_base"``.
        in_channels: input channels.
        num_classes: outputs of the ``classification_head``; 0 removes it.
        img_size: input side the position embeddings are built for.
        patch_size: patch side (16 in Radio DINO's ViT-S/16 and ViT-B/16).
        spatial_dims: 2 for images.
        dropout: dropout in attention and MLP.
    """

    stem_conv = "patch_embedding.patch_embeddings.weight"
    classifier_name = "classification_head"

    def __init__(
        self,
        size: str = "vit_base",
        in_channels: int = 3,
        num_classes: int = 1000,
        img_size: int = 224,
        patch_size: int = 16,
        spatial_dims: int = 2,
        dropout: float = 0.0,
    ):
        hidden, mlp, depth, heads = VIT_SIZES[size]
        super().__init__(
            in_channels=in_channels,
            img_size=img_size,
            patch_size=patch_size,
            hidden_size=hidden,
            mlp_dim=mlp,
            num_layers=depth,
            num_heads=heads,
            classification=True,
            num_classes=max(num_classes, 1),
            dropout_rate=dropout,
            spatial_dims=spatial_dims,
            post_activation=None,
            qkv_bias=True,
        )
        self.patch_size = patch_size
        self.num_features = hidden
        self.feature_channels = (hidden,) * len(PYRAMID_STRIDES)
        self.pyramid_blocks = [round(depth * (i + 1) / len(PYRAMID_STRIDES)) - 1 for i in range(5)]
        if num_classes == 0:
            self.reset_classifier(0)

    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Class token and patch tokens after the final norm, and each pyramid block's patch tokens."""
        tokens = self.patch_embedding(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        taken: list[torch.Tensor] = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in self.pyramid_blocks:
                taken.append(tokens[:, 1:])
        return self.norm(tokens), taken

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        height, width = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        _, taken = self._tokens(x)
        maps: list[torch.Tensor] = []
        for level, tokens in enumerate(taken):
            grid = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], height, width)
            stride = PYRAMID_STRIDES[level]
            size = [x.shape[-2] // stride, x.shape[-1] // stride]
            maps.append(F.interpolate(grid, size=size, mode="bilinear", align_corners=False))
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._tokens(x)[0][:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classification_head(self.forward_features(x))


for _size in VIT_SIZES:
    register(_size, partial(VisionTransformer, _size))
