"""Segmentation results for the clinic: DICOM Segmentation objects (PS3.3 A.51) and PACS transfer."""
