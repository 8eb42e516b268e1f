"""Task models built on a backbone: the RSNA bone-age regressor with the patient's sex."""


import torch
from torch import nn

from radtl.networks.backbone import Backbone
from radtl.networks.registry import create, register


class BoneAgeRegressor(nn.Module):
    """Bone age in months from a hand radiograph and the patient's sex (RSNA Pediatric Bone Age).

    The challenge winner's design as the study reimplemented it (shared/science/radiologynet.md,
    "Downstream tasks and wiring"): the sex passes ``Linear(1, 128)``, is concatenated with the
    backbone's pooled features, and ``Linear(., 1000)-ReLU-Linear(1000, 1000)-ReLU-Linear(1000, 1)``
    gives months (not normalised; trained with MSE).

    Args:
        backbone: a registered backbone name (the study used ``"inception_v3"`` at 299 and
            ``"efficientnet_b3"`` at 300) or a :class:`~radtl.networks.backbone.Backbone`;
            its classifier is removed.
        in_channels: input channels (when ``backbone`` is a name).
        sex_features: width of the sex embedding.
        hidden_features: width of the two hidden layers.
        backbone_kwargs: further arguments for the backbone (when ``backbone`` is a name).

    ``forward(image, sex)``: ``image`` is ``(N, C, H, W)``; ``sex`` is ``(N,)`` or ``(N, 1)``
    with 1.0 for male and 0.0 for female (the RSNA ``male`` column). Returns ``(N, 1)`` months.
    """

    def __init__(
        self,
        backbone: str | Backbone = "inception_v3",
        in_channels: int = 3,
        sex_features: int = 128,
        hidden_features: int = 1000,
        **backbone_kwargs,
    ):
        super().__init__()
        if isinstance(backbone, str):
            backbone = create(backbone, in_channels=in_channels, num_classes=0, **backbone_kwargs)
        else:
            backbone.reset_classifier(0)
        self.backbone = backbone
        self.sex_embedding = nn.Linear(1, sex_features)
        self.regressor = nn.Sequential(
            nn.Linear(backbone.num_features + sex_features, hidden_features),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_features, hidden_features),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_features, 1),
        )

    def forward(self, image: torch.Tensor, sex: torch.Tensor) -> torch.Tensor:
        sex = sex.reshape(-1, 1).to(image.dtype)
        features = torch.cat([self.backbone.forward_features(image), self.sex_embedding(sex)], dim=1)
        return self.regressor(features)


register("bone_age_regressor", BoneAgeRegressor)
