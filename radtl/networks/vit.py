"""Vision Transformers (Dosovitskiy et al. 2021) on MONAI's ViT, for the self-supervised work.

Radio DINO and OmniRad use ViT-S/16 and ViT-B/16 (shared/science/radio-dino-omnirad.md). A ViT
has one resolution, the patch grid at stride 16; its pyramid takes five evenly spaced blocks'
patch tokens and resizes them bilinearly to strides 2, 4, 8, 16 and 32, the parameter-free
"simple feature pyramid" of ViTDet (Li et al. 2022), so U-Net decoders and Grad-CAM treat it like
a CNN.

A ViT built for one input side runs at any side that is a multiple of its patch size: the learned
position embeddings are resized bicubically to the input's patch grid, as DINO does for its 96 px
local crops on a model built for 224 px (Caron et al. 2021, ``interpolate_pos_encoding``), and as
:func:`radtl.networks.load_pretrained` does for a checkpoint built for another side.
"""

import math
from functools import partial

import torch
import torch.nn.functional as F
from monai.networks.nets import ViT

from radtl.networks.backbone import PYRAMID_STRIDES, Backbone
from radtl.networks.registry import register

__all__ = ["VIT_SIZES", "VisionTransformer", "resize_position_embeddings"]

VIT_SIZES = {
    # hidden size, MLP size, blocks, heads
    "vit_tiny": (192, 768, 12, 3),
    "vit_small": (384, 1536, 12, 6),
    "vit_base": (768, 3072, 12, 12),
}


def resize_position_embeddings(
    embeddings: torch.Tensor, grid: tuple[int, int], old_grid: tuple[int, int] | None = None
) -> torch.Tensor:
    """Position embeddings of a patch grid, resized bicubically to another grid.

    DINO's ``interpolate_pos_encoding`` (Caron et al. 2021): the ``(h0, w0)`` grid of learned
    embeddings is treated as a ``d``-channel image and resized to ``(h, w)`` with bicubic
    interpolation (``align_corners=False``), so a model built for one input side runs on inputs of
    another. MONAI's embeddings hold the patches only, row-major (the class token is added
    separately and has no position embedding), so the whole tensor is the grid.

    Args:
        embeddings: ``(1, h0 * w0, d)`` position embeddings.
        grid: the patch grid ``(h, w)`` wanted.
        old_grid: the grid ``(h0, w0)`` of ``embeddings``; a square grid when not given.

    Returns:
        ``(1, h * w, d)`` embeddings; ``embeddings`` itself when the grid does not change.

    Raises:
        ValueError: ``embeddings`` is not ``(1, n, d)``, or ``n`` is not the size of the old grid
            (a square, when ``old_grid`` is not given).
    """
    if embeddings.dim() != 3 or embeddings.shape[0] != 1:
        raise ValueError(f"position embeddings must be (1, n, d), got {list(embeddings.shape)}")
    count = embeddings.shape[1]
    if old_grid is None:
        side = int(math.sqrt(count) + 0.5)
        if side * side != count:
            raise ValueError(f"{count} position embeddings are not a square grid; give their old_grid")
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != count:
        raise ValueError(f"{count} position embeddings do not form the grid {old_grid}")
    if grid[0] == old_grid[0] and grid[1] == old_grid[1]:
        return embeddings
    image = embeddings.reshape(1, old_grid[0], old_grid[1], -1).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=[grid[0], grid[1]], mode="bicubic", align_corners=False)
    return image.flatten(2).transpose(1, 2)


class VisionTransformer(ViT, Backbone):
    """MONAI's ViT with a linear classifier on the class token and radtl's backbone interface.

    The model runs at any input whose sides are multiples of ``patch_size``: its position
    embeddings, learned for ``img_size``, are resized to the input's patch grid
    (:func:`resize_position_embeddings`). :meth:`forward_tokens` returns every token and can
    replace patch embeddings by a mask token (iBOT, Zhou et al. 2022), which the caller holds, so
    that the state dict stays a plain ViT's.

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
    #: The state-dict key of the learned position embeddings, ``(1, patches, hidden)``, resized
    #: when a checkpoint built for another input side is loaded.
    position_embedding_key = "patch_embedding.position_embeddings"
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
        #: The patch grid the position embeddings were learned for.
        self.patch_grid = [img_size // patch_size] * spatial_dims
        self.num_features = hidden
        self.feature_channels = (hidden,) * len(PYRAMID_STRIDES)
        self.pyramid_blocks = [round(depth * (i + 1) / len(PYRAMID_STRIDES)) - 1 for i in range(5)]
        if num_classes == 0:
            self.reset_classifier(0)

    def embed_patches(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, mask_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Patch embeddings plus position embeddings resized to the input's grid, after dropout.

        MONAI's ``PatchEmbeddingBlock`` (convolution, flatten, add the position embeddings,
        dropout), taken apart so that inputs of any size fit and masked patches can be replaced
        before the positions are added (iBOT, Zhou et al. 2022, Sec. 3.2).

        Args:
            x: ``(N, C, H, W)`` images, ``H`` and ``W`` multiples of ``patch_size``.
            mask: ``(N, L)`` bool, True where a patch embedding is replaced by ``mask_token``;
                ``L = (H / patch_size) * (W / patch_size)``, patches row-major.
            mask_token: ``(1, 1, D)`` embedding of a masked patch, required with ``mask``.

        Returns:
            ``(N, L, D)`` patch tokens.

        Raises:
            ValueError: an input side that is not a multiple of the patch size; a mask without a
                mask token or of the wrong shape.
        """
        sides = [int(side) for side in x.shape[2:]]
        for side in sides:
            if side % self.patch_size != 0:
                raise ValueError(
                    f"input sides {sides} must be multiples of the patch size {self.patch_size}; "
                    f"crop or resize the images to a multiple of {self.patch_size}"
                )
        block = self.patch_embedding
        tokens = block.patch_embeddings(x)
        grid = [int(side) for side in tokens.shape[2:]]
        tokens = tokens.flatten(2).transpose(1, 2)
        if mask is not None:
            if mask_token is None:
                raise ValueError("a patch mask needs a mask_token to put in place of the masked patches")
            if mask.shape[0] != tokens.shape[0] or mask.shape[1] != tokens.shape[1]:
                raise ValueError(
                    f"the mask must be (N, L) = {[tokens.shape[0], tokens.shape[1]]} for this input, "
                    f"got {list(mask.shape)}"
                )
            tokens = torch.where(mask.to(torch.bool).unsqueeze(-1), mask_token.to(tokens.dtype), tokens)
        positions = block.position_embeddings
        if grid != self.patch_grid:
            if len(grid) != 2:
                raise ValueError(
                    f"position embeddings are resized for 2-D inputs only; this model is built for {self.patch_grid}"
                )
            positions = resize_position_embeddings(
                positions, (grid[0], grid[1]), (self.patch_grid[0], self.patch_grid[1])
            )
        return block.dropout(tokens + positions)

    def _tokens(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, mask_token: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Class token and patch tokens after the final norm, and each pyramid block's patch tokens."""
        tokens = self.embed_patches(x, mask, mask_token)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        taken: list[torch.Tensor] = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in self.pyramid_blocks:
                taken.append(tokens[:, 1:])
        return self.norm(tokens), taken

    def forward_tokens(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, mask_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Every token after the final norm: the class token, then the patches row-major.

        Args:
            x: ``(N, C, H, W)`` images, ``H`` and ``W`` multiples of ``patch_size``.
            mask: ``(N, L)`` bool, True for the patches whose embedding ``mask_token`` replaces
                before the position embeddings are added (iBOT's masked image modelling).
            mask_token: ``(1, 1, D)``, held by the caller so the state dict stays a plain ViT's.

        Returns:
            ``(N, 1 + L, D)`` tokens, ``L = (H / patch_size) * (W / patch_size)``.
        """
        return self._tokens(x, mask, mask_token)[0]

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
