"""Datasets for fine-tuning: the public datasets' layouts (classification, regression, LUNA16 segmentation)
read into MONAI datalists with the study's splits."""

from radtl.data.adapters import (
    ADAPTERS,
    BTMR_CLASSES,
    IMAGE_SUFFIXES,
    btmr,
    class_folders,
    covid19_radiography,
    ct_series,
    grazpedwri_dx,
    is_image_file,
    list_images,
    luna16,
    prepare_datalist,
    rsna_bone_age,
)
from radtl.data.datalist import (
    SPLITS,
    STUDY_SEED,
    DatasetLayoutError,
    age_strata,
    stratified_split,
    take_fraction,
    undersample,
    write_datalist,
)
from radtl.data.images import read_display_frame, read_radiograph
from radtl.data.inputs import inference_datalist, series_datalist
from radtl.data.pack import (
    NotInPackError,
    PackedDataset,
    PackedImages,
    PackError,
    PackResult,
    ensure_pack,
    modality_filter,
    write_pack,
)
from radtl.data.samplers import PretrainingSampler, class_balanced_weights
from radtl.lazy import moved_names

__all__ = [
    "ADAPTERS",
    "BTMR_CLASSES",
    "IMAGE_SUFFIXES",
    "SPLITS",
    "STUDY_SEED",
    "DatasetLayoutError",
    "NotInPackError",
    "PackError",
    "PackResult",
    "PackedDataset",
    "PackedImages",
    "PretrainingSampler",
    "age_strata",
    "btmr",
    "class_balanced_weights",
    "class_folders",
    "covid19_radiography",
    "ct_series",
    "ensure_pack",
    "grazpedwri_dx",
    "inference_datalist",
    "is_image_file",
    "list_images",
    "luna16",
    "modality_filter",
    "prepare_datalist",
    "read_display_frame",
    "read_radiograph",
    "rsna_bone_age",
    "series_datalist",
    "stratified_split",
    "take_fraction",
    "undersample",
    "write_datalist",
    "write_pack",
]


#: The per-initialisation normalisation moved to :mod:`radtl.networks.transfer`; importable from here for one release.
_MOVED = ("IMAGENET_MEAN", "IMAGENET_STD", "INITS", "input_mean", "input_std")
__getattr__ = moved_names(__name__, dict.fromkeys(_MOVED, "radtl.networks.transfer"))
