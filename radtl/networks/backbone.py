"""The interface every radtl backbone shares: pooled features, a feature pyramid, a named stem and head.

A backbone is a classification network whose parts a transfer-learning toolkit needs to reach:

- :meth:`Backbone.forward_features`: the pooled, flattened features the classifier sees,
  ``(N, num_features)``; the bone-age regressor concatenates the patient's sex to them.
- :meth:`Backbone.feature_maps`: the feature pyramid, five maps at strides 2, 4, 8, 16 and 32,
  ``(N, feature_channels[i], H / 2**(i+1), W / 2**(i+1))`` (approximately for architectures with
  unpadded convolutions); U-Net decoders take their skips from it, and the last map is the one
  the classifier pools, which is where Grad-CAM looks.
- ``stem_conv``: the state-dict key of the first convolution's weight, adapted when a 3-channel
  checkpoint is loaded into a grey-scale (``in_channels=1``) model.
- ``classifier_name``: the module after pooling that maps features to logits, rebuilt by
  :meth:`Backbone.reset_classifier` for a new task or removed when the backbone becomes an encoder.
- ``torchvision_module_names``: where the backbone's module paths differ from torchvision's, the
  torchvision path of each module, so torchvision and RadiologyNET checkpoints map by name.
"""

import torch
from torch import nn

PYRAMID_STRIDES = (2, 4, 8, 16, 32)


class Backbone(nn.Module):
    """Mixin base of radtl's classification backbones; see the module docstring.

    Subclasses set ``stem_conv``, ``classifier_name``, ``feature_channels`` and ``num_features``
    and implement :meth:`feature_maps` and :meth:`forward_features`; those whose classifier is more
    than one linear layer override :meth:`make_classifier`.
    """

    stem_conv = ""
    classifier_name = ""
    #: Further modules that belong to the classification head (InceptionV3's ``AuxLogits``).
    extra_head_modules = ()
    feature_channels = ()
    num_features = 0

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def make_classifier(self, num_classes: int) -> nn.Module:
        """A fresh classifier from ``num_features`` to ``num_classes`` logits."""
        return nn.Linear(self.num_features, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh ``num_classes``-way one, or with nothing when 0.

        ``num_classes=1`` gives the single logit of a binary task (``BCEWithLogitsLoss``). With
        ``num_classes=0`` the model returns :meth:`forward_features`, which is how encoders and
        the bone-age regressor hold a backbone without carrying unused classifier weights.
        """
        classifier = self.make_classifier(num_classes) if num_classes else nn.Identity()
        parent, _, leaf = self.classifier_name.rpartition(".")
        setattr(self.get_submodule(parent), leaf, classifier)

    def head_prefixes(self) -> tuple[str, ...]:
        """State-dict key prefixes of the classification head, under radtl's and torchvision's names."""
        renames = self.torchvision_module_names()
        modules = (self.classifier_name, *self.extra_head_modules)
        return tuple(sorted({f"{name}." for module in modules for name in (module, renames.get(module, module))}))

    def torchvision_module_names(self) -> dict[str, str]:
        """Module paths that differ from torchvision's, mapped to torchvision's (empty: identical)."""
        return {}

    def torchvision_key_map(self) -> dict[str, str]:
        """Every state-dict key of this model mapped to its torchvision name."""
        renames = self.torchvision_module_names()
        mapping = {}
        for key in self.state_dict():
            module, _, tensor = key.rpartition(".")
            mapping[key] = f"{renames.get(module, module)}.{tensor}"
        return mapping


def require_2d(architecture: str, spatial_dims: int) -> None:
    """Refuse a 3-D build of an architecture that torchvision and the study define in 2-D only."""
    if spatial_dims != 2:
        raise ValueError(f"{architecture} is a 2-D architecture; spatial_dims={spatial_dims} is not available")


def pyramid_ends(strides: list[int]) -> list[int]:
    """Index of the last layer at each pyramid stride, given each layer's own stride in order.

    For a sequence of layers with strides ``[2, 1, 2, 1, 2, 2, 1, 2]`` the cumulative strides are
    2, 2, 4, 4, 8, 16, 16, 32 and the pyramid maps are the outputs of layers 1, 3, 4, 6 and 7.
    """
    ends: list[int] = []
    cumulative = 1
    for index, stride in enumerate(strides):
        cumulative *= stride
        if cumulative in PYRAMID_STRIDES:
            level = PYRAMID_STRIDES.index(cumulative)
            if level < len(ends):
                ends[level] = index
            else:
                ends.append(index)
    if len(ends) != len(PYRAMID_STRIDES):
        raise ValueError(f"layer strides {strides} do not reach every pyramid stride {PYRAMID_STRIDES}")
    return ends


class SequentialBackbone(Backbone):
    """A backbone laid out as ``features`` (one sequence), ``avgpool``, ``classifier``: torchvision's
    VGG and MobileNet pattern. Subclasses set ``pyramid_layers``, the indices in ``features`` whose
    outputs form the pyramid.
    """

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        features: list[torch.Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.pyramid_layers:
                features.append(x)
        return features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))
