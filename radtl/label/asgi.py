"""The ASGI app ``radtl-label`` serves: MONAI Label's FastAPI app behind :class:`radtl.label.guard.RequestGuard`,
with ``/infer/<model>?output=dicom_seg`` answered by :class:`radtl.label.seg_output.DicomSegOutput`.

uvicorn imports it as ``radtl.label.asgi:app`` in the process that serves (and in each worker with ``--workers``),
after ``monailabel start_server`` has set MONAI Label's settings; the guard reads its own from the environment.
"""

from monailabel.app import app as monailabel_app

from radtl.label.guard import RequestGuard, configured_token, max_upload_bytes
from radtl.label.seg_output import DicomSegOutput
from radtl.label.tasks import BundleFineTune

__all__ = ["app"]

app = RequestGuard(
    DicomSegOutput(monailabel_app), configured_token(), max_upload_bytes(), BundleFineTune.request_settings
)
