"""Datasets for fine-tuning: the public datasets' layouts read into MONAI datalists with the study's splits."""

from radtl.data.adapters import (
    ADAPTERS,
    BTMR_CLASSES,
    IMAGE_SUFFIXES,
    btmr,
    class_folders,
    covid19_radiography,
    grazpedwri_dx,
    is_image_file,
    list_images,
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
from radtl.data.inputs import IMAGENET_MEAN, IMAGENET_STD, inference_datalist, input_mean, input_std

__all__ = [
    "ADAPTERS",
    "BTMR_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "SPLITS",
    "STUDY_SEED",
    "DatasetLayoutError",
    "age_strata",
    "btmr",
    "class_folders",
    "covid19_radiography",
    "grazpedwri_dx",
    "inference_datalist",
    "input_mean",
    "input_std",
    "is_image_file",
    "list_images",
    "prepare_datalist",
    "rsna_bone_age",
    "stratified_split",
    "take_fraction",
    "undersample",
    "write_datalist",
]
