"""``POST /infer/<model>?output=dicom_seg`` answered with radtl's DICOM-SEG instead of MONAI Label's conversion.

MONAI Label 0.8.5 answers ``output=dicom_seg`` in its endpoint (``monailabel.endpoints.infer.run_inference``) by
converting the label with pydicom-seg, which radtl does not install (:mod:`radtl.label.compat`), and only for its own
DICOMweb datastore class: a 500 either way. :class:`DicomSegOutput` is ASGI middleware that takes those requests
before MONAI Label's router does and answers them with :meth:`radtl.label.app.RadtlApp.infer_dicom_seg`: the
segmentation written by :func:`radtl.dicom.seg.write_segmentation` (PS3.3 A.51), ``application/dicom``. Every other
request passes through untouched. It sits inside :class:`radtl.label.guard.RequestGuard`, so the token and the
body limit hold for it too.

The request's query gives the image id (``image``) as for every inference; the body (MONAI Label's ``params`` form
field, ``label_info``) is not read: the SEG's segment comes from the bundle, and no request text reaches MONAI's
config parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import HTTPException

from .guard import ASGIApp, Receive, Scope, Send, _answer

__all__ = ["DicomSegOutput"]

_INFER_PATH = re.compile(r"/infer/([^/]+)/?")


def _served_app_seg(model: str, image: str) -> Path:
    """The SEG from the app this process serves (MONAI Label's ``app_instance``)."""
    from monailabel.interfaces.utils.app import app_instance

    return app_instance().infer_dicom_seg(model, image)


class DicomSegOutput:
    """ASGI middleware: ``POST /infer/<model>?output=dicom_seg`` answered with radtl's SEG (see the module docstring).

    Args:
        app: MONAI Label's app, for every other request.
        make_seg: ``(model, image id) -> SEG file`` (removed once sent); raises ``HTTPException`` for a request it
            cannot serve. Default: the served app's :meth:`~radtl.label.app.RadtlApp.infer_dicom_seg`.
    """

    def __init__(self, app: ASGIApp, make_seg: Callable[[str, str], Path] = _served_app_seg) -> None:
        self.app = app
        self.make_seg = make_seg

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = _INFER_PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")) if matched else {}
        if not matched or scope["method"] != "POST" or query.get("output", [""])[-1] != "dicom_seg":
            await self.app(scope, receive, send)
            return
        model, image = matched.group(1), query.get("image", [""])[-1]
        if not image:
            await _answer(send, 422, "output=dicom_seg needs the image id of a DICOM series in the query (?image=...)")
            return
        try:
            path = Path(await anyio.to_thread.run_sync(self.make_seg, model, image))
        except HTTPException as error:
            await _answer(send, error.status_code, str(error.detail))
            return
        try:
            body = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
        headers = {
            "content-type": "application/dicom",
            "content-length": str(len(body)),
            "content-disposition": f'attachment; filename="{model}.seg.dcm"',
        }
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(key.encode(), value.encode()) for key, value in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})
