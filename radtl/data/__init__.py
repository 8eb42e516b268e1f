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
from radtl.data.inputs import IMAGENET_MEAN, IMAGENET_STD, inference_datalist, input_mean, input_std, series_datalist

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
    "ct_series",
    "grazpedwri_dx",
    "inference_datalist",
    "input_mean",
    "input_std",
    "is_image_file",
    "list_images",
    "luna16",
    "prepare_datalist",
    "rsna_bone_age",
    "series_datalist",
    "stratified_split",
    "take_fraction",
    "undersample",
    "write_datalist",
]
