"""Segmentation results for the clinic: DICOM Segmentation objects (PS3.3 A.51), their PNG previews, and PACS transfer."""
