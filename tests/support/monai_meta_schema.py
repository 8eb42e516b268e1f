"""The rules of MONAI's bundle metadata schema (``meta_schema_20240725.json``), restated for offline checks.

``python -m monai.bundle verify_metadata`` downloads the schema named in ``metadata.json``
(MONAI-extra-test-data release 0.8.1) and validates against it with ``jsonschema``. This machine
cannot reach GitHub, so the tests hand ``verify_metadata`` a local file holding the same rules:
the required top-level fields with their JSON types, and ``network_data_format`` whose inputs and
outputs are numbers, strings, booleans or tensors described by type, format, num_channels,
spatial_shape, dtype and value_range. With network access, run the command without ``--filepath``
to check against the published file itself.
"""

TENSOR = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "format": {"type": "string"},
        "num_channels": {"type": "integer"},
        "spatial_shape": {"type": "array", "items": {"type": ["string", "integer"]}},
        "dtype": {"type": "string"},
        "value_range": {"type": "array", "items": {"type": "number"}},
        "is_patch_data": {"type": "boolean"},
        "channel_def": {"type": "object"},
    },
    "required": ["type", "format", "num_channels", "spatial_shape", "dtype", "value_range"],
}
ARGUMENT = {"anyOf": [{"type": "number"}, {"type": "integer"}, {"type": "string"}, {"type": "boolean"}, TENSOR]}
NETWORK_IO = {
    "type": "object",
    "properties": {
        "inputs": {"type": "object", "patternProperties": {"^.+$": ARGUMENT}},
        "outputs": {"type": "object", "patternProperties": {"^.+$": ARGUMENT}},
        "post_processed_outputs": {"type": "object", "patternProperties": {"^.+$": ARGUMENT}},
    },
    "required": ["inputs", "outputs"],
}
STRINGS = ("schema", "version", "monai_version", "pytorch_version", "numpy_version", "task", "description",
           "authors", "copyright", "data_source", "data_type", "image_classes", "label_classes", "pred_classes",
           "intended_use")
OBJECTS = ("changelog", "required_packages_version", "eval_metrics", "supported_apps")

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "type": "object",
    "properties": {
        **{key: {"type": "string"} for key in STRINGS},
        **{key: {"type": "object"} for key in OBJECTS},
        "references": {"type": "array", "items": {"type": "string"}},
        "network_data_format": NETWORK_IO,
    },
    "patternProperties": {"^[_a-zA-Z0-9]+_data_format$": NETWORK_IO},
    "required": ["schema", "version", "monai_version", "pytorch_version", "numpy_version",
                 "required_packages_version", "task", "description", "authors", "copyright", "network_data_format"],
}
