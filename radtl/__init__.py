"""radtl: radiology transfer learning on MONAI.

Subpackages: :mod:`radtl.dicom` (DICOM reading, the grayscale pipeline, export),
:mod:`radtl.transforms` (MONAI transforms over it); ``radtl`` on the command line.
"""

__version__ = "0.1.0"
