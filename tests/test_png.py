"""radtl's PNG encoder writes standard, lossless files any reader decodes to the same pixels."""

import io

import numpy as np
import pytest
from PIL import Image

from radtl.png import encode_png


@pytest.mark.parametrize("shape", [(256, 256), (7, 13), (1, 1), (5, 9, 3)])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_round_trip_through_pil_is_lossless(shape, level):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(pixels, level))) as image:
        assert image.mode == ("L" if len(shape) == 2 else "RGB")
        assert np.array_equal(np.asarray(image), pixels)


def test_non_uint8_input_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), dtype=np.uint16))
