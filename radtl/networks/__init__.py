"""Networks of the RadiologyNET study and radtl's self-supervised work, and weight transfer.

Every architecture is built without torchvision and loads torchvision, RadiologyNET and radtl
checkpoints (:func:`load_pretrained`)::

    from radtl.networks import create, load_pretrained

    model = create("resnet50", in_channels=1, num_classes=4)
    report = load_pretrained(model, "ResNet50.tar.gz", source="radiologynet")
"""

from radtl.networks.autoencoder import ConvAutoencoder, DenseAutoencoder
from radtl.networks.backbone import PYRAMID_STRIDES, Backbone, SequentialBackbone
from radtl.networks.densenet import DenseNet121
from radtl.networks.dino import DINOHead, DINOModel, DINOOutput
from radtl.networks.efficientnet import EfficientNet
from radtl.networks.heads import BoneAgeRegressor
from radtl.networks.inception import InceptionV3
from radtl.networks.mobilenet import MobileNetV3
from radtl.networks.placement import place
from radtl.networks.registry import NETWORKS, STUDY_BACKBONES, available, create, register
from radtl.networks.resnet import ResNet
from radtl.networks.transfer import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INITS,
    CheckpointError,
    CheckpointSource,
    TransferReport,
    adapt_input_channels,
    input_mean,
    input_std,
    load_pretrained,
    read_checkpoint,
    to_torchvision_layout,
)
from radtl.networks.unet import EncoderUNet, UNet
from radtl.networks.vgg import VGG16
from radtl.networks.vit import VisionTransformer, resize_position_embeddings

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INITS",
    "NETWORKS",
    "PYRAMID_STRIDES",
    "STUDY_BACKBONES",
    "VGG16",
    "Backbone",
    "BoneAgeRegressor",
    "CheckpointError",
    "CheckpointSource",
    "ConvAutoencoder",
    "DINOHead",
    "DINOModel",
    "DINOOutput",
    "DenseAutoencoder",
    "DenseNet121",
    "EfficientNet",
    "EncoderUNet",
    "InceptionV3",
    "MobileNetV3",
    "ResNet",
    "SequentialBackbone",
    "TransferReport",
    "UNet",
    "VisionTransformer",
    "adapt_input_channels",
    "available",
    "create",
    "input_mean",
    "input_std",
    "load_pretrained",
    "place",
    "read_checkpoint",
    "register",
    "resize_position_embeddings",
    "to_torchvision_layout",
]
