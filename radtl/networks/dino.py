"""DINO's projection head and multi-crop wrapper, for self-distillation pretraining of ViTs.

Radio DINO pretrains with DINO (Caron et al. 2021) and OmniRad with DINOv2's DINO + iBOT losses
(Oquab et al. 2024; Zhou et al. 2022); shared/science/radio-dino-omnirad.md gives their
hyperparameters (head of 3 layers, hidden 2048, bottleneck 256; 65,536 or 131,072 prototypes).
The student and the teacher are each a :class:`DINOModel`: a :class:`~radtl.networks.VisionTransformer`
backbone, a :class:`DINOHead` on its class token and, for iBOT, a head on its patch tokens. The
backbone stays a plain ViT, so ``teacher.backbone.state_dict()`` loads into
``radtl.networks.create("vit_small", ...)`` for fine-tuning.
"""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

import torch
import torch.nn.functional as F
from monai.networks.layers import trunc_normal_
from torch import nn

from radtl.networks.vit import VisionTransformer

__all__ = ["DINOHead", "DINOModel", "DINOOutput", "WeightNormLinear"]


class WeightNormLinear(nn.Module):
    """A linear map without bias whose weight is ``g * v / ||v||`` row by row (Salimans & Kingma 2016).

    Each output row ``i`` of the weight is the direction ``v_i / ||v_i||_2`` scaled by ``g_i``.
    With ``g`` frozen to 1 every row has unit norm, so on an L2-normalised input the outputs are
    cosine similarities to ``out_features`` prototypes: DINO's ``norm_last_layer``, which the
    authors found to stabilise training (Caron et al. 2021, Sec. 3.1 and Appendix). The
    parameters are named as ``torch.nn.utils.weight_norm`` names them (``weight_g``
    ``(out, 1)``, ``weight_v`` ``(out, in)``), as in the official DINO checkpoints.

    Args:
        in_features: input features.
        out_features: output features (DINO's prototypes).
        norm_fixed: freeze ``g`` at 1 (``requires_grad=False``).
    """

    def __init__(self, in_features: int, out_features: int, norm_fixed: bool = True) -> None:
        super().__init__()
        direction = nn.Linear(in_features, out_features, bias=False).weight.detach()  # PyTorch's default init
        self.weight_v = nn.Parameter(direction.clone())
        self.weight_g = nn.Parameter(torch.ones(out_features, 1), requires_grad=not norm_fixed)

    @property
    def weight(self) -> torch.Tensor:
        """The effective ``(out_features, in_features)`` weight ``g * v / ||v||``."""
        return self.weight_g * F.normalize(self.weight_v, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in_features)`` to ``(..., out_features)``."""
        return F.linear(x, self.weight)


class DINOHead(nn.Module):
    """DINO's projection head: an MLP, an L2-normalised bottleneck, weight-normalised prototypes.

    ``x -> MLP -> z / ||z||_2 -> W z`` (Caron et al. 2021, Sec. 3.1): ``layers`` linear layers
    with GELU between them map the backbone's features to a ``bottleneck_dim`` vector, which is
    L2-normalised and scored against ``out_dim`` prototypes by a weight-normalised linear layer
    without bias (:class:`WeightNormLinear`). The MLP is initialised as in DINO (truncated normal,
    std 0.02, zero biases).

    Args:
        in_dim: backbone features (the ViT's hidden size).
        out_dim: prototypes ``K`` (65,536 in DINO; 131,072 in OmniRad).
        hidden_dim: hidden width of the MLP (2048).
        bottleneck_dim: width of the normalised bottleneck (256).
        layers: linear layers of the MLP (3); 1 maps ``in_dim`` straight to the bottleneck.
        norm_last_layer: freeze the prototypes' norms at 1 (DINO's default; Sec. 3.1).

    Raises:
        ValueError: ``layers`` below 1.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        layers: int = 3,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"a DINO head needs at least 1 layer, got layers={layers}")
        widths = [in_dim] + [hidden_dim] * (layers - 1) + [bottleneck_dim]
        modules: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(pairwise(widths)):
            if index:
                modules.append(nn.GELU())
            modules.append(nn.Linear(width_in, width_out))
        self.mlp = nn.Sequential(*modules)
        for module in self.mlp.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim, norm_fixed=norm_last_layer)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in_dim)`` features to ``(..., out_dim)`` logits."""
        bottleneck = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(bottleneck)


class DINOOutput(NamedTuple):
    """What :class:`DINOModel` returns.

    Attributes:
        logits: ``(sum N_i, K)`` class-token logits of every crop, in crop order.
        patch_logits: ``(sum N_j, L, K)`` patch logits of the crops given a mask, in crop order;
            None when no mask was given.
    """

    logits: torch.Tensor
    patch_logits: torch.Tensor | None = None


class DINOModel(nn.Module):
    """A ViT with DINO heads run over a list of crops: DINO's ``MultiCropWrapper``, with iBOT's masks.

    Consecutive crops of the same resolution (DINO's global crops, then its local crops) are
    concatenated and run through the backbone in one call (Caron et al. 2021, Sec. 3.1,
    multi-crop). The class tokens go through ``head``; with masks, the masked crops' patch tokens
    go through ``patch_head`` (iBOT, Zhou et al. 2022, Eq. 2). The patch head may be ``head``
    itself (shared, as in iBOT and DINOv2's default) or a separate :class:`DINOHead`.

    A patch head comes with the learnable ``mask_token`` ``(1, 1, D)`` (zeros at the start, as in
    iBOT and DINOv2), held here and not by the backbone, so the backbone's state dict stays a
    plain ViT's.

    Args:
        backbone: the ViT (built with ``num_classes=0``; its classifier is not used).
        head: the class-token head.
        patch_head: the patch-token head for iBOT, ``head`` to share it, or None for DINO alone.
    """

    def __init__(self, backbone: VisionTransformer, head: DINOHead, patch_head: DINOHead | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.shares_head = patch_head is head
        # A shared head is registered once, so the state dict names its tensors once.
        self.patch_head = None if self.shares_head else patch_head
        self.mask_token = nn.Parameter(torch.zeros(1, 1, backbone.num_features)) if patch_head is not None else None

    @property
    def has_patch_head(self) -> bool:
        """Whether the model gives patch logits (iBOT), hence takes masks."""
        return self.mask_token is not None

    def forward(self, crops: list[torch.Tensor], masks: list[torch.Tensor | None] | None = None) -> DINOOutput:
        """Logits of every crop's class token and, with masks, of the masked crops' patch tokens.

        Args:
            crops: ``(N_i, C, H_i, W_i)`` crops; the same images in the same order in each.
            masks: one per crop: ``(N_i, L_i)`` bool, True for the patches to replace by the mask
                token (all False for a teacher's unmasked view), or None for a crop without patch
                logits (DINO's local crops). ``L_i = (H_i / p) * (W_i / p)``, patch size ``p``.

        Returns:
            :class:`DINOOutput`: ``logits`` ``(sum N_i, K)`` in crop order; ``patch_logits``
            ``(sum N_j, L, K)`` over the crops ``j`` with a mask, in crop order.

        Raises:
            ValueError: no crops; masks without a patch head, or not one per crop; masked crops
                with different patch counts.
        """
        if not crops:
            raise ValueError("DINOModel needs at least one crop")
        if masks is not None:
            if not self.has_patch_head:
                raise ValueError("masks need a patch head: build the DINOModel with patch_head (or patch_head=head)")
            if len(masks) != len(crops):
                raise ValueError(f"give one mask (or None) per crop: {len(crops)} crops, {len(masks)} masks")
        class_tokens: list[torch.Tensor] = []
        patch_tokens: list[torch.Tensor] = []
        for start, stop in _resolution_runs(crops):
            images = torch.cat(crops[start:stop])
            group_masks = None if masks is None else masks[start:stop]
            if group_masks is None or all(mask is None for mask in group_masks):
                class_tokens.append(self.backbone.forward_tokens(images)[:, 0])
                continue
            patches = _patch_count(images, self.backbone.patch_size)
            filled = [
                torch.zeros(len(crop), patches, dtype=torch.bool, device=crop.device) if mask is None else mask
                for crop, mask in zip(crops[start:stop], group_masks)
            ]
            tokens = self.backbone.forward_tokens(images, torch.cat(filled), self.mask_token)
            class_tokens.append(tokens[:, 0])
            offset = 0
            for crop, mask in zip(crops[start:stop], group_masks):
                if mask is not None:
                    patch_tokens.append(tokens[offset : offset + len(crop), 1:])
                offset += len(crop)
        logits = self.head(torch.cat(class_tokens))
        if not patch_tokens:
            return DINOOutput(logits)
        if len({tokens.shape[1] for tokens in patch_tokens}) > 1:
            counts = [tokens.shape[1] for tokens in patch_tokens]
            raise ValueError(f"masked crops must have the same number of patches to stack their logits, got {counts}")
        patch_head = self.head if self.shares_head else self.patch_head
        return DINOOutput(logits, patch_head(torch.cat(patch_tokens)))


def _resolution_runs(crops: list[torch.Tensor]) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of consecutive crops with the same spatial size."""
    runs: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(crops) + 1):
        if index == len(crops) or crops[index].shape[2:] != crops[start].shape[2:]:
            runs.append((start, index))
            start = index
    return runs


def _patch_count(images: torch.Tensor, patch_size: int) -> int:
    count = 1
    for side in images.shape[2:]:
        count *= side // patch_size
    return count
