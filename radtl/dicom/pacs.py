"""Moving DICOM files to and from a PACS: DIMSE (PS3.4) and DICOMweb (PS3.18).

``radtl segment`` fetches the input CT series from the archive and sends the DICOM-SEG back to it; ``radtl pull``
finds and retrieves a cohort (the section at the end). A PACS is named by a URL (:func:`parse_pacs_url`):
``dicom://AET@host:port[?calling=MYAET]`` speaks DIMSE through pynetdicom, ``dicoms://`` the same over TLS,
``http(s)://host:port/dicom-web`` speaks DICOMweb: STOW-RS and WADO-RS of a series through dicomweb-client, QIDO-RS
searches and WADO-RS of single instances through radtl's own bounded readers (a PACS's answer is read up to a limit
before it is decoded). Credentials and certificates come from the environment (:mod:`radtl.dicom.connections`).

Network trouble (connection refused, an aborted association, a timeout, HTTP 5xx or 429) is retried with
exponential backoff; a refusal by the PACS (a failure status, HTTP 4xx, a certificate radtl does not trust) is
final at once, and refused credentials (HTTP 401/403) are one :class:`PacsAuthenticationError`. Either way the
transfer ends in :class:`PacsError`, never in a success that did not happen. Files sent are only read.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import mmap
import os
import shutil
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import sleep
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import config as pydicom_config
from pydicom import uid
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, build_role, evt
from pynetdicom import sop_class as sop

from radtl.atomic import atomic_path, write_bytes_atomic
from radtl.dicom import connections
from radtl.dicom.errors import ELEMENT_VALUE_ERRORS, NotDicomError
from radtl.dicom.io import is_uid
from radtl.errors import RadtlError

__all__ = [
    "InstanceRecord",
    "PacsAddress",
    "PacsAuthenticationError",
    "PacsError",
    "fetch_series",
    "find_instances",
    "parse_pacs_url",
    "send",
]

logger = logging.getLogger(__name__)

DEFAULT_CALLING_AET = "RADTL"
_MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1-255
_WARNING_STATUSES = {
    0xB000: "coercion of data elements",
    0xB006: "elements discarded",
    0xB007: "data set does not match SOP class",
}
# C-GET delivers on our association: we take the SCP role for these storage classes (PS3.4 C.4.3.1)
_RETRIEVED_SOP_CLASSES = (
    sop.CTImageStorage,
    sop.EnhancedCTImageStorage,
    sop.LegacyConvertedEnhancedCTImageStorage,
    sop.MRImageStorage,
    sop.EnhancedMRImageStorage,
    sop.PositronEmissionTomographyImageStorage,
    sop.SecondaryCaptureImageStorage,
    sop.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    sop.SegmentationStorage,
)
# one context per compressed syntax, so the archive can send what it holds without transcoding
_RETRIEVED_SYNTAXES = [[uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]] + [
    [syntax]
    for syntax in (uid.JPEGBaseline8Bit, uid.JPEGLosslessSV1, uid.JPEG2000Lossless, uid.JPEG2000, uid.RLELossless)
]
_T = TypeVar("_T")


class PacsError(RadtlError):
    """A transfer that did not happen: names the PACS, the operation, the attempts made and the last cause."""

    def __init__(self, url: str, operation: str, attempts: int, cause: str):
        self.url, self.operation, self.attempts, self.cause = url, operation, attempts, cause
        super().__init__(f"{operation} {url} failed after {attempts} attempt{'s' * (attempts != 1)}: {cause}")


class PacsAuthenticationError(PacsError):
    """The PACS refused radtl's credentials, or asked for some (HTTP 401/403): final, never retried.

    The message names the user (never the password or token) and the variable or file the credentials came from.
    """

    def __init__(
        self, url: str, operation: str, status: int, reason: str, credentials: connections.PacsCredentials | None
    ):
        self.url, self.operation, self.attempts, self.status = url, operation, 1, status
        if credentials is None:
            self.cause = f"the PACS asks for credentials (HTTP {status} {reason}) and none are set"
            hint = (f"set {connections.USER_VARIABLE} and {connections.PASSWORD_VARIABLE}, "
                    f"{connections.TOKEN_VARIABLE}, or {connections.NETRC_VARIABLE} (see docs/pacs.md)")
        else:
            self.cause = f"the PACS refused the credentials of {credentials.description} (HTTP {status} {reason})"
            hint = f"check {credentials.where}" + (" or the user's rights in the PACS" if status == 403 else "")
        RadtlError.__init__(self, f"{operation} {url}: {self.cause}", hint=hint)


class _Transient(Exception):
    """Worth another attempt: the network, a timeout, a busy PACS."""


class _Refused(Exception):
    """Final: the PACS said no, or the request cannot succeed as it is."""


class _CredentialsRefused(_Refused):
    """Final: HTTP 401 or 403; :func:`_with_retries` makes it a :class:`PacsAuthenticationError`."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"HTTP {status} {reason}")
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class PacsAddress:
    """A parsed PACS URL; ``called_aet`` and ``calling_aet`` are set for DIMSE only."""

    url: str
    scheme: str  # "dicom", "dicoms" (DIMSE over TLS), "http" or "https"
    host: str
    port: int | None
    called_aet: str | None = None
    calling_aet: str | None = None

    @property
    def is_dimse(self) -> bool:
        return self.scheme in ("dicom", "dicoms")

    @property
    def is_tls(self) -> bool:
        return self.scheme in ("dicoms", "https")


@dataclass(frozen=True)
class InstanceRecord:
    """One instance in the archive, as C-FIND or QIDO-RS reports it."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    modality: str


def _check_aet(aet: str, what: str, url: str) -> str:
    """An AE title is 1-16 characters of the default repertoire, no backslash, not all spaces (PS3.5 6.2)."""
    if not 0 < len(aet) <= 16 or not aet.strip() or "\\" in aet or not all(" " <= c <= "~" for c in aet):
        raise ValueError(f"{url!r}: {what} AE title {aet!r} must be 1-16 printable ASCII characters, not all spaces")
    return aet


def parse_pacs_url(url: str) -> PacsAddress:
    """Parse a PACS URL.

    - ``dicom://AET@host:port[?calling=MYAET]``: DIMSE (PS3.8) with called AE title ``AET``; the calling AE title
      is ``RADTL`` unless ``calling=`` says otherwise.
    - ``dicoms://AET@host:port[?calling=MYAET]``: the same over TLS (PS3.15 B.1): the PACS's certificate is checked
      against ``RADTL_PACS_CA_BUNDLE`` (or the system's authorities) and its host name; radtl shows
      ``RADTL_PACS_CLIENT_CERT``/``RADTL_PACS_CLIENT_KEY`` when they are set.
    - ``http://host[:port]/root`` or ``https://...``: a DICOMweb root (PS3.18), without query or fragment.

    Credentials are never part of the URL (a URL with ``user:password@`` is refused without repeating it): they
    come from the environment, see :mod:`radtl.dicom.connections` and docs/pacs.md.

    Raises:
        ValueError: a malformed URL, an unknown scheme, or an AE title PS3.5 does not allow.
    """
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.username is not None:  # it would be in every PacsError and log
        raise ValueError(f"{parts.scheme}://{parts.hostname}/...: credentials in the URL are not supported")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{url!r}: invalid port ({error})") from None
    if parts.scheme in ("http", "https"):
        if not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{url!r}: a DICOMweb URL is http(s)://host[:port]/root, without query or fragment")
        return PacsAddress(url.rstrip("/"), parts.scheme, parts.hostname, port)
    if parts.scheme not in ("dicom", "dicoms"):
        raise ValueError(
            f"{url!r}: unknown scheme {parts.scheme!r}; use dicom(s)://AET@host:port or http(s)://.../dicom-web"
        )
    if parts.password is not None:  # AET:secret@ would be in every PacsError and log
        raise ValueError(f"{parts.scheme}://{parts.hostname}: a DIMSE URL carries no password")
    if not parts.username or not parts.hostname or port is None:
        raise ValueError(f"{url!r}: a DIMSE URL is dicom://AET@host:port (called AE title, host and port required)")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError(f"{url!r}: a DIMSE URL has no path or fragment")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    if set(query) - {"calling"} or len(query.get("calling", [])) > 1:
        raise ValueError(f"{url!r}: the only query parameter is calling=AET (once)")
    called = _check_aet(unquote(parts.username), "called", url)
    calling = _check_aet(query.get("calling", [DEFAULT_CALLING_AET])[0], "calling", url)
    return PacsAddress(url, parts.scheme, parts.hostname, port, called, calling)


def _with_retries(
    address: PacsAddress, operation: str, attempts: int, backoff_s: float, attempt: Callable[[], _T]
) -> _T:
    """Run ``attempt`` until it succeeds, retrying :class:`_Transient` failures after backoff_s, 2*backoff_s, ..."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except _CredentialsRefused as error:
            credentials = connections.connection_settings(address.host).credentials
            raise PacsAuthenticationError(address.url, operation, error.status, error.reason, credentials) from None
        except _Refused as error:
            raise PacsError(address.url, operation, number, str(error)) from error
        except _Transient as error:
            if number == attempts:
                raise PacsError(address.url, operation, number, str(error)) from error
            delay = backoff_s * 2 ** (number - 1)
            logger.warning(
                "%s %s: attempt %d of %d failed (%s); retrying in %.2f s",
                operation,
                address.url,
                number,
                attempts,
                error,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")


def _write_instance(out_dir: Path, sop_instance_uid: str, encoded: bytes) -> Path:
    """Write ``<SOPInstanceUID>.dcm`` through a temporary name, so a reader never sees half a file."""
    if not is_uid(sop_instance_uid):
        raise ValueError(f"received an instance with an invalid SOP Instance UID {sop_instance_uid!r}")
    return write_bytes_atomic(out_dir / f"{sop_instance_uid}.dcm", encoded)


# ---- DIMSE: PS3.4 Annex B (Storage), Annex C (Query/Retrieve) ----


def _application_entity(address: PacsAddress, timeout_s: float) -> AE:
    ae = AE(ae_title=address.calling_aet)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    return ae


@contextmanager
def _association(ae: AE, address: PacsAddress, **kwargs) -> Iterator:
    """An established association, released afterwards; a rejection is final only when the PACS says permanent.

    A ``dicoms://`` address associates over TLS (PS3.15 B.1) with the CA bundle and client certificate of
    :func:`radtl.dicom.connections.connection_settings`; a certificate that fails the check is final.
    """
    context = None
    if address.is_tls and "tls_args" not in kwargs:
        context = connections.dimse_tls_context(connections.connection_settings(address.host).tls)
        kwargs["tls_args"] = (context, address.host)
    assoc = ae.associate(address.host, address.port, ae_title=address.called_aet, **kwargs)
    if not assoc.is_established and context is not None and assoc.acceptor.primitive is None:
        problem = connections.certificate_problem(address.host, address.port, context, ae.connection_timeout or 30)
        if problem is not None:
            raise _Refused(f"{problem}; set {connections.CA_BUNDLE_VARIABLE} to the authority that signed the "
                           f"PACS's certificate (and {connections.CLIENT_CERT_VARIABLE} if it asks for radtl's)")
    if not assoc.is_established:
        answer = assoc.acceptor.primitive
        if assoc.is_rejected and answer is not None:
            kind = _Refused if answer.result == 0x01 else _Transient
            raise kind(f"association rejected ({answer.result_str}): {answer.reason_str}")
        if answer is not None and answer.result == 0x00:
            raise _Refused("the PACS accepted none of the proposed presentation contexts")
        raise _Transient(
            f"no association with {address.called_aet}@{address.host}:{address.port} "
            "(connection refused, timed out or aborted)"
        )
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _c_store(address: PacsAddress, headers: list[Dataset], paths: list[Path], stored: dict[int, str], timeout_s: float):
    """C-STORE the files not yet in ``stored`` (index -> SOP Instance UID) on one association (PS3.4 B.2)."""
    pending = [i for i in range(len(paths)) if i not in stored]
    contexts = sorted({(headers[i].SOPClassUID, headers[i].file_meta.TransferSyntaxUID) for i in pending})
    if len(contexts) > _MAX_CONTEXTS:
        raise _Refused(f"{len(contexts)} SOP class/transfer syntax pairs exceed the {_MAX_CONTEXTS} of one association")
    ae = _application_entity(address, timeout_s)
    for sop_class_uid, transfer_syntax in contexts:
        ae.add_requested_context(sop_class_uid, transfer_syntax)
    with _association(ae, address) as assoc:
        accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
        for i in pending:
            name, header = paths[i].name, headers[i]
            if not assoc.is_established:
                raise _Transient(f"the association was aborted after {len(stored)} of {len(paths)} files")
            if (header.SOPClassUID, header.file_meta.TransferSyntaxUID) not in accepted:
                raise _Refused(
                    f"{name}: the PACS does not accept {header.SOPClassUID.name} "
                    f"in {header.file_meta.TransferSyntaxUID.name}"
                )
            status = assoc.send_c_store(paths[i])
            if "Status" not in status:
                raise _Transient(f"{name}: no C-STORE response (association aborted or timed out)")
            if status.Status in _WARNING_STATUSES:
                logger.warning(
                    "C-STORE %s: stored with warning 0x%04X (%s) %s",
                    name,
                    status.Status,
                    _WARNING_STATUSES[status.Status],
                    status.get("ErrorComment", ""),
                )
            elif status.Status != 0x0000:
                comment = f" ({status.ErrorComment})" if "ErrorComment" in status else ""
                raise _Refused(
                    f"{name}: C-STORE failed with status 0x{status.Status:04X}{comment}; "
                    f"{len(stored)} of {len(paths)} files were stored before"
                )
            stored[i] = header.SOPInstanceUID


def _c_find(assoc, query: Dataset) -> Iterator[Dataset]:
    """The identifiers a C-FIND returns (PS3.4 C.4.1): pending 0xFF00/0xFF01, then success 0x0000."""
    for status, identifier in assoc.send_c_find(query, sop.StudyRootQueryRetrieveInformationModelFind):
        if "Status" not in status:
            raise _Transient("no C-FIND response (association aborted or timed out)")
        if status.Status in (0xFF00, 0xFF01):
            yield identifier
        elif status.Status != 0x0000:
            raise _Refused(f"C-FIND failed with status 0x{status.Status:04X}")


def _query(level: str, **keys: str) -> Dataset:
    """A C-FIND/C-GET/C-MOVE identifier (PS3.4 C.4.1.1.3): the level, then each key with its matching value.

    A matching value is not a value of its VR (``CT*`` and ``20200101-20201231`` are not a CS and a DA), so it is
    not checked as one (pydicom would warn).
    """
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        tag = tag_for_keyword(keyword)
        query.add(DataElement(tag, dictionary_VR(tag), value, validation_mode=pydicom_config.IGNORE))
    return query


def _c_get(address: PacsAddress, study_uid: str, series_uid: str, out_dir: Path, timeout_s: float) -> list[Path]:
    """C-GET one series at SERIES level; the archive C-STOREs each instance back on our association (PS3.4 C.4.3)."""
    received: dict[str, Path] = {}
    write_errors: list[str] = []

    def on_store(event) -> int:
        try:
            path = _write_instance(out_dir, event.request.AffectedSOPInstanceUID, event.encoded_dataset())
        except (OSError, ValueError) as error:
            write_errors.append(str(error))
            return 0xA700  # Out of Resources (PS3.4 B.2.3)
        received[path.stem] = path
        return 0x0000

    ae = _application_entity(address, timeout_s)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelGet)
    for sop_class_uid in _RETRIEVED_SOP_CLASSES:
        for syntaxes in _RETRIEVED_SYNTAXES:
            ae.add_requested_context(sop_class_uid, syntaxes)
    roles = [build_role(sop_class_uid, scp_role=True) for sop_class_uid in _RETRIEVED_SOP_CLASSES]
    query = _query("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid)
    final = Dataset()
    with _association(ae, address, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        for status, _ in assoc.send_c_get(query, sop.StudyRootQueryRetrieveInformationModelGet):
            if "Status" not in status:
                raise _Transient("no C-GET response (association aborted or timed out)")
            final = status
    code = final.get("Status", 0)
    count = {kind: int(final.get(f"NumberOf{kind}Suboperations") or 0) for kind in ("Completed", "Failed", "Warning")}
    if not received and not any(count.values()) and not write_errors:
        return []  # an unknown series: Orthanc answers 0xC000 with no sub-operations, other archives success
    if write_errors or count["Failed"] or code != 0x0000:
        causes = "; ".join(write_errors) or final.get("ErrorComment", "see the PACS log")
        raise _Refused(f"C-GET ended with status 0x{code:04X}, {count['Failed']} failed sub-operation(s): {causes}")
    return sorted(received.values())


def _c_find_study(address: PacsAddress, study_uid: str, modality: str | None, timeout_s: float) -> list[InstanceRecord]:
    """C-FIND hierarchically (PS3.4 C.4.1.2.1): the study's series, then the IMAGE level of each series."""
    ae = _application_entity(address, timeout_s)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelFind)
    records = []
    with _association(ae, address) as assoc:
        series_query = _query("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="", Modality=modality or "")
        for series in list(_c_find(assoc, series_query)):
            keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series.SeriesInstanceUID}
            for image in _c_find(assoc, _query("IMAGE", **keys, SOPInstanceUID="", SOPClassUID="")):
                uids = (series.SeriesInstanceUID, image.SOPInstanceUID, image.SOPClassUID)
                records.append(InstanceRecord(study_uid, *uids, series.get("Modality", "")))
    return records


# ---- DICOMweb: PS3.18 10.5 (STOW-RS), 10.4 (WADO-RS), 10.6 (QIDO-RS) ----


def _dicomweb(address: PacsAddress, timeout_s: float) -> DICOMwebClient:
    """A DICOMweb client with the credentials and CA bundle of the URL's host (:func:`connections.session_for`)."""
    client = DICOMwebClient(address.url, session=connections.session_for(address.url), timeout=timeout_s)
    client.set_http_retry_params(retry=False)  # retried here, with our backoff, logging and PacsError
    return client


def _http_failure(error: requests.RequestException) -> Exception:
    """HTTP 5xx, 429 and network errors are transient; 401/403, an untrusted certificate, 4xx and anything else
    are a refusal."""
    response = getattr(error, "response", None)
    if isinstance(error, requests.HTTPError) and response is not None:
        if response.status_code in (401, 403):
            return _CredentialsRefused(response.status_code, response.reason)
        kind = _Transient if response.status_code >= 500 or response.status_code == 429 else _Refused
        return kind(f"HTTP {response.status_code} {response.reason}")
    cause = _ssl_cause(error) if isinstance(error, requests.exceptions.SSLError) else None
    if isinstance(cause, ssl.SSLCertVerificationError):
        return _Refused(
            f"TLS certificate verify failed ({cause.verify_message}); set {connections.CA_BUNDLE_VARIABLE} to the "
            "authority that signed the PACS's certificate"
        )
    if cause is not None and "ALERT" in (cause.reason or ""):  # the PACS ended the handshake: settings, not network
        return _Refused(
            f"the PACS refused the TLS handshake ({cause.reason}); if it asks for radtl's certificate, set "
            f"{connections.CLIENT_CERT_VARIABLE} and {connections.CLIENT_KEY_VARIABLE}"
        )
    if isinstance(error, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return _Transient(_network_problem(error))
    return _Refused(f"{type(error).__name__}: {error}")


def _cause(error: BaseException, wanted: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception under a requests error (urllib3 wraps the socket's in one or two of its own) that is
    ``wanted``, if any."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if wanted(current):
            return current
        inner = (getattr(current, "reason", None), *current.args, current.__cause__, current.__context__)
        pending.extend(item for item in inner if isinstance(item, BaseException))
    return None


def _ssl_cause(error: BaseException) -> ssl.SSLError | None:
    """The ssl module's error under a requests error, if any."""
    return _cause(error, lambda inner: isinstance(inner, ssl.SSLError))


def _network_problem(error: requests.RequestException) -> str:
    """A network failure in one line: the operating system's reason (connection refused, name or service not
    known, ...) rather than urllib3's nested description of it, which repeats the whole URL."""
    if isinstance(error, requests.Timeout):
        return "no answer within the timeout"
    cause = _cause(error, lambda inner: isinstance(inner, OSError) and bool(inner.strerror)
                   and not isinstance(inner, requests.RequestException))
    if isinstance(cause, OSError):
        return f"network error: {cause.strerror}"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the connection ended in the middle of the answer"
    return f"network error ({type(error).__name__})"


def _stow(address: PacsAddress, paths: list[Path], timeout_s: float) -> list[str]:
    datasets = [pydicom.dcmread(path) for path in paths]
    try:
        response = _dicomweb(address, timeout_s).store_instances(datasets)
    except requests.RequestException as error:
        raise _http_failure(error) from error
    failed = response.get("FailedSOPSequence", [])
    if failed:
        reasons = "; ".join(f"{it.get('ReferencedSOPInstanceUID')} (reason {it.get('FailureReason')})" for it in failed)
        raise _Refused(f"the PACS refused {len(failed)} of {len(datasets)} instance(s): {reasons}")
    referenced = {item.get("ReferencedSOPInstanceUID") for item in response.get("ReferencedSOPSequence", [])}
    missing = [ds.SOPInstanceUID for ds in datasets if ds.SOPInstanceUID not in referenced]
    if missing:
        raise _Refused(f"the STOW-RS response does not reference {len(missing)} instance(s), e.g. {missing[0]}")
    return [ds.SOPInstanceUID for ds in datasets]


#: Results one QIDO-RS search may give, all pages together: a PACS that answers more is refused, not followed.
MAX_QIDO_RESULTS = 200_000
#: The largest QIDO-RS answer (one page) radtl reads: a larger one is refused before it is decoded.
MAX_QIDO_PAGE_BYTES = 64 * 1024**2
_QIDO_PAGE = 1000  # results asked for per request (limit, PS3.18 8.3.4.4)
_QIDO_RESOURCES = {"search_for_studies": "studies", "search_for_series": "series",
                   "search_for_instances": "instances"}


def _qido_url(address: PacsAddress, search: str, study_instance_uid: str | None = None,
              series_instance_uid: str | None = None) -> str:
    """The resource a search asks (PS3.18 10.6.1.2): ``/studies``, ``/studies/{study}/series``, ...; a UID that is
    not one never becomes part of the path."""
    parts = [address.url]
    for level, level_uid in (("studies", study_instance_uid), ("series", series_instance_uid)):
        if level_uid is not None:
            if not is_uid(level_uid):
                raise _Refused(f"{level_uid!r} is not a UID")
            parts += [level, level_uid]
    return "/".join([*parts, _QIDO_RESOURCES[search]])


def _qido_page(session: requests.Session, url: str, params: dict, timeout_s: float) -> list[dict]:
    """One page of a QIDO-RS answer, read up to :data:`MAX_QIDO_PAGE_BYTES` and checked to be DICOM JSON
    (PS3.18 F.2: an array of objects); HTTP 204 (no match) is an empty page."""
    body = bytearray()
    try:
        with session.get(url, params=params, headers={"Accept": "application/dicom+json"}, stream=True,
                         timeout=timeout_s) as response:
            response.raise_for_status()
            for chunk in response.iter_content(1 << 16):
                body += chunk
                if len(body) > MAX_QIDO_PAGE_BYTES:
                    raise _Refused(f"a QIDO-RS answer of more than {MAX_QIDO_PAGE_BYTES} bytes; narrow the query")
    except requests.RequestException as error:
        raise _http_failure(error) from error
    if not body.strip():
        return []
    try:
        answers = json.loads(body)
    except ValueError:
        raise _Refused("the QIDO-RS answer is not JSON") from None
    if not isinstance(answers, list) or not all(isinstance(answer, dict) for answer in answers):
        raise _Refused("the QIDO-RS answer is not an array of DICOM JSON objects (PS3.18 F.2)")
    return answers


def _qido(address: PacsAddress, timeout_s: float, search: str, *, study_instance_uid: str | None = None,
          series_instance_uid: str | None = None, search_filters: dict[str, str] | None = None,
          fields: list[str] | None = None) -> list[Dataset]:
    """One QIDO-RS search (PS3.18 10.6): ``search_for_studies``, ``search_for_series`` or ``search_for_instances``
    (named as dicomweb-client names them), with matching keys and ``includefield`` s, as datasets.

    Paged with ``limit`` and ``offset`` until an empty page, and bounded: each page is read up to
    :data:`MAX_QIDO_PAGE_BYTES` before it is decoded, a page that repeats the one before (a PACS that ignores
    ``offset``) ends the search, and more than :data:`MAX_QIDO_RESULTS` results is a refusal, so a broken or hostile
    PACS can neither fill radtl's memory nor keep it asking for ever. Credentials and TLS are the session's
    (:func:`radtl.dicom.connections.session_for`).
    """
    url = _qido_url(address, search, study_instance_uid, series_instance_uid)
    params: dict[str, object] = dict(search_filters or {})
    if fields:
        params["includefield"] = list(fields)
    session = connections.session_for(address.url)
    answers: list[dict] = []
    previous: list[dict] | None = None
    while True:
        page = _qido_page(session, url, {**params, "limit": _QIDO_PAGE, "offset": len(answers)}, timeout_s)
        if not page or page == previous:
            break
        answers.extend(page)
        if len(answers) > MAX_QIDO_RESULTS:
            raise _Refused(f"the PACS answered more than {MAX_QIDO_RESULTS} results to one search; narrow the query")
        previous = page
    try:
        return [Dataset.from_json(answer) for answer in answers]
    except (ValueError, TypeError, KeyError) as error:
        raise _Refused(f"the QIDO-RS answer is not DICOM JSON ({type(error).__name__})") from None


def _qido_study(address: PacsAddress, study_uid: str, modality: str | None, timeout_s: float) -> list[InstanceRecord]:
    """QIDO-RS Search for Instances of a study (PS3.18 10.6), all pages."""
    found = _qido(address, timeout_s, "search_for_instances", study_instance_uid=study_uid,
                  fields=["Modality", "SOPClassUID"], search_filters={"Modality": modality} if modality else None)
    records = []
    for ds in found:
        uids = (ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID)
        records.append(InstanceRecord(study_uid, *uids, ds.get("Modality", "")))
    return records


def _wado_series(address: PacsAddress, study_uid: str, series_uid: str, out_dir: Path, timeout_s: float) -> list[Path]:
    try:
        datasets = _dicomweb(address, timeout_s).retrieve_series(study_uid, series_uid)
    except requests.HTTPError as error:
        if error.response is not None and error.response.status_code == 404:
            return []
        raise _http_failure(error) from error
    except requests.RequestException as error:
        raise _http_failure(error) from error
    paths = []
    for ds in datasets:
        if ds.get("SeriesInstanceUID") != series_uid:
            raise _Refused(f"WADO-RS returned instance {ds.get('SOPInstanceUID')} of another series")
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        paths.append(_write_instance(out_dir, ds.SOPInstanceUID, buffer.getvalue()))
    return sorted(paths)


# ---- public API ----


def send(
    paths: Iterable[str | os.PathLike], url: str, *, attempts: int = 3, backoff_s: float = 1.0, timeout_s: float = 30.0
) -> list[str]:
    """Store DICOM files in the PACS; returns their SOP Instance UIDs, in the order given.

    ``dicom://``: C-STORE (PS3.4 B.2) on one association proposing each file's own SOP class and transfer
    syntax; 0xB000/0xB006/0xB007 are accepted with a warning. ``http(s)://``: one STOW-RS request (PS3.18 10.5),
    whose response must reference every instance. Raises :class:`PacsError`; the files are never modified.
    Every file is read before anything is sent: one that is missing or not DICOM (a preview PNG picked up by
    ``segs/*``) raises :class:`~radtl.dicom.errors.NotDicomError` naming it, and nothing is stored.
    """
    address = parse_pacs_url(url)
    files = [Path(p) for p in paths]
    if not files:
        return []
    headers = [_dicom_header(path) for path in files]
    if address.is_dimse:
        stored: dict[int, str] = {}  # kept across attempts: a retry sends only what is not stored yet
        _with_retries(
            address, "C-STORE to", attempts, backoff_s, lambda: _c_store(address, headers, files, stored, timeout_s)
        )
        uids = [stored[i] for i in range(len(files))]
    else:
        uids = _with_retries(address, "STOW-RS to", attempts, backoff_s, lambda: _stow(address, files, timeout_s))
    logger.info("stored %d instance(s) in %s", len(uids), address.url)
    return uids


def _dicom_header(path: Path) -> Dataset:
    """``path``'s header, or a :class:`NotDicomError` that names the file and says what to send instead."""
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, *ELEMENT_VALUE_ERRORS) as error:
        raise NotDicomError(f"{path} is not a DICOM file ({error}); nothing was sent",
                            hint="send only the DICOM files (segs/*.dcm, not the .png previews)") from error


def fetch_series(
    url: str,
    study_uid: str,
    series_uid: str,
    out_dir: str | os.PathLike,
    *,
    attempts: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Retrieve one series into ``out_dir`` as ``<SOPInstanceUID>.dcm`` files; returns their paths, sorted.

    ``dicom://``: C-GET at SERIES level (PS3.4 C.4.3). ``http(s)://``: WADO-RS Retrieve Series (PS3.18 10.4).
    Raises :class:`PacsError` when the series is not in the archive, a sub-operation failed, or the network failed.
    """
    address, out = parse_pacs_url(url), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    operation, retrieve = ("C-GET from", _c_get) if address.is_dimse else ("WADO-RS from", _wado_series)

    def attempt() -> list[Path]:
        paths = retrieve(address, study_uid, series_uid, out, timeout_s)
        if not paths:
            raise _Refused(f"series {series_uid} of study {study_uid} not found")
        return paths

    paths = _with_retries(address, operation, attempts, backoff_s, attempt)
    logger.info("retrieved %d instance(s) of series %s from %s into %s", len(paths), series_uid, address.url, out)
    return paths


def find_instances(
    url: str,
    study_uid: str,
    *,
    modality: str | None = None,
    attempts: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 30.0,
) -> list[InstanceRecord]:
    """The instances of a study in the archive, optionally of one modality.

    ``dicom://``: C-FIND (PS3.4 C.4.1), study root, hierarchically: the study's series, then each series' IMAGE
    level. ``http(s)://``: QIDO-RS Search for Instances (PS3.18 10.6). An unknown study gives an empty list.
    """
    address = parse_pacs_url(url)
    operation, search = ("C-FIND at", _c_find_study) if address.is_dimse else ("QIDO-RS at", _qido_study)
    return _with_retries(
        address, operation, attempts, backoff_s, lambda: search(address, study_uid, modality, timeout_s)
    )


# ---- radtl's results in the archive (issue 24): the SEG and SR series radtl wrote for a study ----
# (its public names are added to __all__ here, so that the section stands alone)

__all__ += ["ResultSeries", "find_results"]


#: The modalities of radtl's results: DICOM-SEG (radtl.dicom.seg) and the SR reports (radtl.dicom.sr).
RESULT_MODALITIES = ("SEG", "SR")
#: The Manufacturer (0008,0070) radtl writes in every SEG and SR.
RESULT_MANUFACTURER = "radtl"


@dataclass(frozen=True)
class ResultSeries:
    """One series of radtl's results in the archive, as C-FIND or QIDO-RS reports it at SERIES level.

    Args:
        study_instance_uid: its study (the source images' study).
        series_instance_uid: the series.
        modality: ``SEG`` or ``SR``.
        series_description: ``<algorithm> <version>[ measurements| results]``, as radtl writes it.
        instances: Number of Series Related Instances, or None when the archive does not say.
    """

    study_instance_uid: str
    series_instance_uid: str
    modality: str
    series_description: str
    instances: int | None


def _result_series(study_uid: str, ds: Dataset, algorithm: str | None) -> ResultSeries | None:
    """``ds`` as a :class:`ResultSeries` when radtl made it (and ``algorithm`` did, when given), else None."""
    if str(ds.get("Manufacturer", "")).strip() != RESULT_MANUFACTURER:
        return None
    description = str(ds.get("SeriesDescription", ""))
    if algorithm and description.split(" ")[0] != algorithm:
        return None
    count = ds.get("NumberOfSeriesRelatedInstances")
    return ResultSeries(study_uid, str(ds.SeriesInstanceUID), str(ds.get("Modality", "")), description,
                        int(count) if count not in (None, "") else None)


def _c_find_results(address: PacsAddress, study_uid: str, algorithm: str | None, timeout_s: float) -> list:
    """C-FIND at SERIES level (PS3.4 C.4.1), one query per result modality, Manufacturer as a return key."""
    ae = _application_entity(address, timeout_s)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelFind)
    found = []
    with _association(ae, address) as assoc:
        for modality in RESULT_MODALITIES:
            query = _query("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="", Modality=modality,
                           SeriesDescription="", Manufacturer="", NumberOfSeriesRelatedInstances="")
            found.extend(_result_series(study_uid, ds, algorithm) for ds in _c_find(assoc, query))
    return [series for series in found if series is not None]


def _qido_results(address: PacsAddress, study_uid: str, algorithm: str | None, timeout_s: float) -> list:
    """QIDO-RS Search for Series of the study (PS3.18 10.6), one search per result modality, all pages."""
    found = []
    for modality in RESULT_MODALITIES:
        answers = _qido(address, timeout_s, "search_for_series", study_instance_uid=study_uid,
                        search_filters={"Modality": modality},
                        fields=["SeriesDescription", "Manufacturer", "NumberOfSeriesRelatedInstances"])
        found.extend(_result_series(study_uid, ds, algorithm) for ds in answers)
    return [series for series in found if series is not None]


def find_results(
    url: str,
    study_uid: str,
    *,
    algorithm: str | None = None,
    attempts: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 30.0,
) -> list[ResultSeries]:
    """The series of radtl's results (SEG and SR, Manufacturer ``radtl``) in a study, optionally of one algorithm.

    ``dicom://``: C-FIND at SERIES level (PS3.4 C.4.1); ``http(s)://``: QIDO-RS Search for Series (PS3.18 10.6);
    both ask for Modality SEG and SR and return Manufacturer, Series Description and the number of instances, and
    keep the series whose Manufacturer is ``radtl`` (and whose description starts with ``algorithm``, the bundle's
    name, when given). Retried as :func:`find_instances`; an unknown study gives an empty list.

    Raises:
        PacsError: the search failed after retries, or the archive refused it.
    """
    if not is_uid(study_uid):
        raise ValueError(f"{study_uid!r} is not a Study Instance UID (digits and dots, at most 64 characters)")
    address = parse_pacs_url(url)
    operation, search = ("C-FIND at", _c_find_results) if address.is_dimse else ("QIDO-RS at", _qido_results)
    found = _with_retries(address, operation, attempts, backoff_s, lambda: search(address, study_uid, algorithm,
                                                                                 timeout_s))
    return sorted(found, key=lambda series: (series.modality, series.series_description, series.series_instance_uid))


# ---- cohort pulls (issue 25): series found by matching keys, instances retrieved with bounded memory ----
# (its public names are added to __all__ here, so that the section stands alone)

__all__ += [
    "CohortSeries",
    "MoveDestination",
    "find_series",
    "find_series_instances",
    "is_network_failure",
    "retrieve_instances",
]

#: C-STORE status for an instance the receiver did not ask for (PS3.4 B.2.3: 0xCxxx, Error: Cannot understand).
_STORE_NOT_WANTED = 0xC001
_STORE_OUT_OF_RESOURCES = 0xA700  # PS3.4 B.2.3
_UIDS_PER_RETRIEVE = 100  # a list of UIDs in one C-GET/C-MOVE identifier (PS3.4 C.2.2.2.2), kept well below 64 KiB
_CHUNK = 1 << 20
_PART_HEADER_LIMIT = 64 << 10  # the multipart boundary and part headers around one instance
# a cohort holds more than radtl's own inputs: C-GET proposes (and the C-MOVE destination accepts) these too;
# 9 + 8 image classes with the 6 syntax groups and 5 non-image ones uncompressed make 107 of the 128 contexts
_COHORT_IMAGE_SOP_CLASSES = _RETRIEVED_SOP_CLASSES + (
    sop.ComputedRadiographyImageStorage,
    sop.DigitalXRayImageStorageForPresentation,
    sop.DigitalXRayImageStorageForProcessing,
    sop.DigitalMammographyXRayImageStorageForPresentation,
    sop.UltrasoundImageStorage,
    sop.UltrasoundMultiFrameImageStorage,
    sop.XRayAngiographicImageStorage,
    sop.NuclearMedicineImageStorage,
)
_COHORT_OTHER_SOP_CLASSES = (
    sop.BasicTextSRStorage,
    sop.EnhancedSRStorage,
    sop.ComprehensiveSRStorage,
    sop.KeyObjectSelectionDocumentStorage,
    sop.RTStructureSetStorage,
)
_receiving_to_disk = threading.Lock()
_receivers_on_disk = 0


@dataclass(frozen=True)
class CohortSeries:
    """One series a cohort search found (C-FIND or QIDO-RS at SERIES level); both UIDs passed :func:`is_uid`.

    Args:
        study_instance_uid: its study.
        series_instance_uid: the series.
        modality: Modality (0008,0060), or empty when the archive does not return it.
    """

    study_instance_uid: str
    series_instance_uid: str
    modality: str


class _InstanceRefused(_Refused):
    """Final for one instance (too large, not DICOM, another instance than asked for); the others go on."""


def is_network_failure(error: PacsError) -> bool:
    """Whether ``error`` ended in network trouble (retried, then given up) rather than in a refusal by the PACS."""
    return isinstance(error.__cause__, _Transient)


def _checked_uid(value: object, what: str) -> str:
    """``value`` when it is a UID (PS3.5 9.1), else a refusal naming it: no PACS answer becomes a path unchecked."""
    if not is_uid(value):
        raise _Refused(f"the PACS answered a {what} that is not a UID: {str(value)[:80]!r}")
    return str(value)


def _series_from_answer(ds: Dataset) -> CohortSeries:
    return CohortSeries(_checked_uid(ds.get("StudyInstanceUID"), "Study Instance UID"),
                        _checked_uid(ds.get("SeriesInstanceUID"), "Series Instance UID"),
                        str(ds.get("Modality", "") or ""))


def _c_find_cohort(address: PacsAddress, study_keys: dict[str, str], series_keys: dict[str, str],
                   timeout_s: float) -> list[CohortSeries]:
    """C-FIND at STUDY level with the study keys, then at SERIES level in each study with the series keys
    (PS3.4 C.4.1.2.1, hierarchical search in the Study Root model)."""
    ae = _application_entity(address, timeout_s)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelFind)
    found = []
    with _association(ae, address) as assoc:
        studies = list(_c_find(assoc, _query("STUDY", **{"StudyInstanceUID": "", **study_keys})))
        for study in studies:
            study_uid = _checked_uid(study.get("StudyInstanceUID"), "Study Instance UID")
            keys = {"SeriesInstanceUID": "", "Modality": "", **series_keys, "StudyInstanceUID": study_uid}
            for series in _c_find(assoc, _query("SERIES", **keys)):
                series.StudyInstanceUID = study_uid  # Orthanc returns it; PS3.4 C.4.1.2.1 does not require it
                found.append(_series_from_answer(series))
    return found


def _qido_cohort(address: PacsAddress, study_keys: dict[str, str], series_keys: dict[str, str],
                 timeout_s: float) -> list[CohortSeries]:
    """QIDO-RS Search for Studies with the study keys, then Search for Series of each study (PS3.18 10.6).

    A list of UIDs, backslash-separated as in C-FIND, is comma-separated in a QIDO-RS query (PS3.18 8.3.4.1).
    """
    study_keys, series_keys = ({keyword: value.replace("\\", ",") if keyword.endswith("InstanceUID") else value
                                for keyword, value in keys.items()} for keys in (study_keys, series_keys))
    found = []
    for study in _qido(address, timeout_s, "search_for_studies", search_filters=dict(study_keys) or None):
        study_uid = _checked_uid(study.get("StudyInstanceUID"), "Study Instance UID")
        for series in _qido(address, timeout_s, "search_for_series", study_instance_uid=study_uid,
                            search_filters=dict(series_keys) or None, fields=["Modality"]):
            series.StudyInstanceUID = study_uid
            found.append(_series_from_answer(series))
    return found


def find_series(
    url: str,
    study_keys: dict[str, str],
    series_keys: dict[str, str],
    *,
    attempts: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 30.0,
) -> list[CohortSeries]:
    """The series whose study matches ``study_keys`` and which match ``series_keys`` themselves.

    ``dicom://``: C-FIND at STUDY level, then at SERIES level in each study (PS3.4 C.4.1.2.1);
    ``http(s)://``: QIDO-RS Search for Studies, then for Series (PS3.18 10.6). Keys are DICOM keywords with
    values as PS3.4 C.2.2.2 matches them (single values, wildcards, ranges, UID lists); the caller checks them.
    Every UID in the answers must be a UID: the pull names folders after them.

    Args:
        url: the PACS (:func:`parse_pacs_url`).
        study_keys: matching keys at STUDY level (StudyDate, AccessionNumber, PatientID, StudyInstanceUID, ...).
        series_keys: matching keys at SERIES level (Modality, BodyPartExamined, SeriesInstanceUID, ...).
        attempts: tries on network trouble, with backoff_s, 2*backoff_s, ... between them.
        backoff_s: the first delay between tries.
        timeout_s: per network operation.

    Raises:
        PacsError: the search failed, the PACS refused it, or it answered a UID that is not one.
    """
    address = parse_pacs_url(url)
    operation, search = ("C-FIND at", _c_find_cohort) if address.is_dimse else ("QIDO-RS at", _qido_cohort)
    found = _with_retries(address, operation, attempts, backoff_s,
                          lambda: search(address, study_keys, series_keys, timeout_s))
    return sorted(set(found), key=lambda s: (s.study_instance_uid, s.series_instance_uid))


def _c_find_series_instances(address: PacsAddress, study_uid: str, series_uid: str, timeout_s: float) -> list[str]:
    ae = _application_entity(address, timeout_s)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelFind)
    with _association(ae, address) as assoc:
        query = _query("IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SOPInstanceUID="")
        return [_checked_uid(ds.get("SOPInstanceUID"), "SOP Instance UID") for ds in _c_find(assoc, query)]


def _qido_series_instances(address: PacsAddress, study_uid: str, series_uid: str, timeout_s: float) -> list[str]:
    answers = _qido(address, timeout_s, "search_for_instances", study_instance_uid=study_uid,
                    series_instance_uid=series_uid)
    return [_checked_uid(ds.get("SOPInstanceUID"), "SOP Instance UID") for ds in answers]


def find_series_instances(
    url: str, study_uid: str, series_uid: str, *, attempts: int = 3, backoff_s: float = 1.0, timeout_s: float = 30.0
) -> list[str]:
    """The SOP Instance UIDs of one series, sorted: C-FIND at IMAGE level (PS3.4 C.4.1) or QIDO-RS Search for
    Instances (PS3.18 10.6). An unknown series gives an empty list.

    Raises:
        PacsError: as :func:`find_series`, including an answer whose SOP Instance UID is not a UID.
    """
    address = parse_pacs_url(url)
    operation, search = (("C-FIND at", _c_find_series_instances) if address.is_dimse
                         else ("QIDO-RS at", _qido_series_instances))
    found = _with_retries(address, operation, attempts, backoff_s,
                          lambda: search(address, study_uid, series_uid, timeout_s))
    return sorted(set(found))


@contextmanager
def _datasets_received_to_disk() -> Iterator[None]:
    """pynetdicom writes each received C-STORE data set to a temporary file, not to memory, while any retrieve of
    this section runs (``STORE_RECV_CHUNKED_DATASET``, a process-wide setting: counted, restored at the end)."""
    global _receivers_on_disk
    from pynetdicom import _config

    with _receiving_to_disk:
        if _receivers_on_disk == 0:
            _config.STORE_RECV_CHUNKED_DATASET = True
        _receivers_on_disk += 1
    try:
        yield
    finally:
        with _receiving_to_disk:
            _receivers_on_disk -= 1
            if _receivers_on_disk == 0:
                _config.STORE_RECV_CHUNKED_DATASET = False


class _InstanceReceiver:
    """The C-STORE handler of a C-GET or C-MOVE (PS3.4 C.4.2, C.4.3): takes only the instances asked for, no larger
    than ``max_instance_bytes``, and writes each atomically as ``out_dir/<SOPInstanceUID>.dcm``."""

    def __init__(self, out_dir: Path, wanted: set[str], max_instance_bytes: int,
                 before_each: Callable[[], None], on_received: Callable[[Path], None]):
        self.out_dir, self.wanted, self.max_instance_bytes = out_dir, wanted, max_instance_bytes
        self.before_each, self.on_received = before_each, on_received
        self.refused: dict[str, str] = {}
        self.unexpected: list[str] = []
        self.errors: list[str] = []

    def __call__(self, event) -> int:
        on_disk = getattr(event.request, "_dataset_path", None)
        try:
            return self._receive(event, on_disk)
        finally:  # pynetdicom's temporary copy: it removes it only when it is the Storage SCP, not on a C-GET
            if on_disk:
                Path(on_disk).unlink(missing_ok=True)

    def _receive(self, event, on_disk: str | None) -> int:
        sop_uid = str(event.request.AffectedSOPInstanceUID)
        if sop_uid not in self.wanted:
            self.unexpected.append(sop_uid[:80])
            logger.warning("refused instance %r: not one of the instances asked for", sop_uid[:80])
            return _STORE_NOT_WANTED
        size = os.path.getsize(on_disk) if on_disk else len(event.request.DataSet.getvalue())
        if size > self.max_instance_bytes:
            self.refused[sop_uid] = f"{size} bytes, more than the limit of {self.max_instance_bytes}"
            return _STORE_OUT_OF_RESOURCES
        self.before_each()
        try:
            if on_disk:
                with atomic_path(self.out_dir / f"{sop_uid}.dcm") as temporary:
                    shutil.copyfile(on_disk, temporary)
                path = self.out_dir / f"{sop_uid}.dcm"
            else:
                path = _write_instance(self.out_dir, sop_uid, event.encoded_dataset())
        except OSError as error:
            self.errors.append(f"{sop_uid}: {error}")
            return _STORE_OUT_OF_RESOURCES
        self.wanted.discard(sop_uid)
        self.on_received(path)
        return 0x0000


def _cohort_contexts() -> Iterator[tuple[str, list[str]]]:
    """The (SOP class, transfer syntaxes) a cohort retrieve takes: every image class in its stored syntax."""
    for sop_class_uid in _COHORT_IMAGE_SOP_CLASSES:
        for syntaxes in _RETRIEVED_SYNTAXES:
            yield sop_class_uid, syntaxes
    for sop_class_uid in _COHORT_OTHER_SOP_CLASSES:
        yield sop_class_uid, _RETRIEVED_SYNTAXES[0]


def _retrieve_query(study_uid: str, series_uid: str, sop_uids: list[str]) -> Dataset:
    """An IMAGE-level identifier with a list of SOP Instance UIDs (PS3.4 C.4.2.2.1, C.2.2.2.2 list of UID matching)."""
    query = _query("IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid)
    query.SOPInstanceUID = sop_uids
    return query


def _check_final_status(operation: str, final: Dataset, receiver: _InstanceReceiver) -> None:
    """The final C-GET/C-MOVE response (PS3.4 C.4.2.1.5): a failure status is the PACS's refusal unless it only
    counts the sub-operations radtl itself refused; missing instances are the caller's to count."""
    if receiver.errors:
        raise _Refused(f"{operation}: could not write {len(receiver.errors)} instance(s): {receiver.errors[0]}")
    code = final.get("Status", 0x0000)
    if code not in (0x0000, 0xB000) and not receiver.refused and not receiver.unexpected:
        raise _Refused(f"{operation} ended with status 0x{code:04X}: {final.get('ErrorComment', 'see the PACS log')}")


def _c_get_instances(address: PacsAddress, study_uid: str, series_uid: str, receiver: _InstanceReceiver,
                     timeout_s: float) -> None:
    """C-GET at IMAGE level of the instances ``receiver`` still wants, on our association (PS3.4 C.4.3)."""
    ae = _application_entity(address, timeout_s)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelGet)
    for sop_class_uid, syntaxes in _cohort_contexts():
        ae.add_requested_context(sop_class_uid, syntaxes)
    roles = [build_role(uid, scp_role=True) for uid in _COHORT_IMAGE_SOP_CLASSES + _COHORT_OTHER_SOP_CLASSES]
    pending = sorted(receiver.wanted - set(receiver.refused))
    with _association(ae, address, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver)]) as assoc:
        for start in range(0, len(pending), _UIDS_PER_RETRIEVE):
            query = _retrieve_query(study_uid, series_uid, pending[start:start + _UIDS_PER_RETRIEVE])
            final = Dataset()
            for status, _ in assoc.send_c_get(query, sop.StudyRootQueryRetrieveInformationModelGet):
                if "Status" not in status:
                    raise _Transient("no C-GET response (association aborted or timed out)")
                final = status
            _check_final_status("C-GET", final, receiver)


class MoveDestination:
    """The storage SCP a C-MOVE sends to (PS3.4 C.4.2): radtl's AE title, on ``host:port`` (127.0.0.1 by default).

    It accepts associations only from the PACS's AE title and C-STOREs only from the PACS's host, and only of the
    instances a running :func:`retrieve_instances` asked for; anything else is refused (status 0xC001) and logged.
    The PACS must know radtl's AE title with this address (its move destination).

    Args:
        url: the PACS (a ``dicom://`` URL); its calling AE title is the move destination.
        host: the address to listen on.
        port: the port; 0 picks a free one (then :attr:`port` says which).
        timeout_s: per network operation.
    """

    def __init__(self, url: str, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 60.0):
        self.address = parse_pacs_url(url)
        if self.address.scheme != "dicom":
            raise ValueError(f"{url!r}: radtl's C-MOVE destination needs a dicom:// URL (it does not serve TLS)")
        self.host, self.requested_port, self.timeout_s = host, port, timeout_s
        self.receivers: dict[str, _InstanceReceiver] = {}
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._server = None
        self._pacs_hosts: set[str] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    def start(self) -> MoveDestination:
        import socket

        self._pacs_hosts = {info[4][0] for info in socket.getaddrinfo(self.address.host, None)}
        ae = _application_entity(self.address, self.timeout_s)
        ae.require_calling_aet = [self.address.called_aet]
        for sop_class_uid, syntaxes in _cohort_contexts():
            ae.add_supported_context(sop_class_uid, syntaxes)
        try:
            self._server = ae.start_server((self.host, self.requested_port), block=False,
                                           evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        except OSError as error:
            raise PacsError(self.address.url, "C-MOVE destination for", 1,
                            f"cannot listen on {self.host}:{self.requested_port} ({error.strerror})") from None
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> MoveDestination:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _on_store(self, event) -> int:
        peer = event.assoc.requestor.address
        sop_uid = str(event.request.AffectedSOPInstanceUID)[:80]
        with self._lock:
            receiver = next((r for r in self.receivers.values() if sop_uid in r.wanted), None)
        if peer not in self._pacs_hosts or receiver is None:
            why = f"from {peer}, not the PACS" if peer not in self._pacs_hosts else "not asked for"
            self.refused.append(f"{sop_uid} ({why})")
            logger.warning("C-MOVE destination refused instance %r: %s", sop_uid, why)
            return _STORE_NOT_WANTED
        return receiver(event)

    @contextmanager
    def expecting(self, series_uid: str, receiver: _InstanceReceiver) -> Iterator[None]:
        with self._lock:
            self.receivers[series_uid] = receiver
        try:
            yield
        finally:
            with self._lock:
                self.receivers.pop(series_uid, None)


def _c_move_instances(address: PacsAddress, study_uid: str, series_uid: str, receiver: _InstanceReceiver,
                      destination: MoveDestination, timeout_s: float) -> None:
    """C-MOVE at IMAGE level of the instances ``receiver`` still wants to ``destination`` (PS3.4 C.4.2)."""
    ae = _application_entity(address, timeout_s)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelMove)
    pending = sorted(receiver.wanted - set(receiver.refused))
    with destination.expecting(series_uid, receiver), _association(ae, address) as assoc:
        for start in range(0, len(pending), _UIDS_PER_RETRIEVE):
            query = _retrieve_query(study_uid, series_uid, pending[start:start + _UIDS_PER_RETRIEVE])
            final, waiting = Dataset(), len(receiver.wanted)
            for status, _ in assoc.send_c_move(query, address.calling_aet,
                                               sop.StudyRootQueryRetrieveInformationModelMove):
                if "Status" not in status:
                    raise _Transient("no C-MOVE response (association aborted or timed out)")
                final = status
            code = final.get("Status", 0x0000)
            if code == 0xA801 or (code not in (0x0000, 0xB000) and len(receiver.wanted) == waiting
                                  and not receiver.refused and not receiver.unexpected):
                # nothing arrived: most often the PACS cannot reach radtl, or does not know it as a destination
                raise _Refused(f"C-MOVE ended with status 0x{code:04X} and no instance reached radtl: the PACS must "
                               f"know AE title {address.calling_aet!r} at the host and port radtl listens on "
                               f"({destination.host}:{destination.port})")
            _check_final_status("C-MOVE", final, receiver)


def _multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/related`` Content-Type (RFC 2387), or None for a single part."""
    kind, _, parameters = content_type.partition(";")
    if kind.strip().lower() != "multipart/related":
        return None
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary" and value.strip('"'):
            return value.strip('"').encode("ascii", "replace")
    raise _InstanceRefused(f"a multipart answer without a boundary ({content_type[:80]!r})")


def _stream_to_file(response: requests.Response, path: Path, limit: int, sop_uid: str) -> None:
    """Write the response body to ``path`` in 1 MiB chunks; stop (refused) as soon as it passes ``limit`` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _InstanceRefused(f"instance {sop_uid}: {declared} bytes, more than the limit")
    written = 0
    with path.open("wb") as file:
        for chunk in response.iter_content(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise _InstanceRefused(f"instance {sop_uid}: more than the limit of {limit} bytes")
            file.write(chunk)


def _copy_single_part(body: Path, boundary: bytes | None, destination: Path, max_bytes: int, sop_uid: str) -> None:
    """Copy the first part of a ``multipart/related`` body (or the whole single-part body) to ``destination``,
    reading through a memory map, never the whole body at once (PS3.18 8.6.1.2, RFC 2046 5.1.1)."""
    size = body.stat().st_size
    if size == 0:
        raise _InstanceRefused(f"instance {sop_uid}: an empty answer")
    with body.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
        start, end = 0, size
        if boundary is not None:
            delimiter = b"--" + boundary
            first = view.find(delimiter)
            headers_end = view.find(b"\r\n\r\n", first) if first >= 0 else -1
            start = headers_end + 4
            end = view.find(b"\r\n" + delimiter, start) if headers_end >= 0 else -1
            if first < 0 or headers_end < 0 or end < 0:
                raise _InstanceRefused(f"instance {sop_uid}: a malformed multipart/related answer")
        if end - start > max_bytes:
            raise _InstanceRefused(f"instance {sop_uid}: {end - start} bytes, more than the limit of {max_bytes}")
        with destination.open("wb") as out:
            for offset in range(start, end, _CHUNK):
                out.write(view[offset:min(offset + _CHUNK, end)])


def _check_received_instance(path: Path, study_uid: str, series_uid: str, sop_uid: str) -> None:
    """The file is DICOM and is the instance asked for (its header only is read)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True,
                             specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
        uids = (ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID"), ds.get("SOPInstanceUID"))
    except (InvalidDicomError, EOFError, *ELEMENT_VALUE_ERRORS) as error:
        raise _InstanceRefused(f"instance {sop_uid}: the answer is not DICOM ({error})") from None
    if uids != (study_uid, series_uid, sop_uid):
        raise _InstanceRefused(f"instance {sop_uid}: the PACS answered another instance ({str(uids[2])[:80]!r})")


def _wado_instances(address: PacsAddress, study_uid: str, series_uid: str, receiver: _InstanceReceiver,
                    timeout_s: float) -> None:
    """WADO-RS Retrieve Instance (PS3.18 10.4.1.1.3) of each instance ``receiver`` still wants, one request each,
    streamed to a file under ``out_dir`` and stopped at ``max_instance_bytes``."""
    session = connections.session_for(address.url)
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    for sop_uid in sorted(receiver.wanted - set(receiver.refused)):
        receiver.before_each()
        url = f"{address.url}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        final = receiver.out_dir / f"{sop_uid}.dcm"
        body = receiver.out_dir / f".{sop_uid}.body.{os.getpid()}.tmp"  # radtl.atomic's NAME.PID.tmp, if left
        try:
            with session.get(url, headers={"Accept": accept}, stream=True, timeout=timeout_s) as response:
                if response.status_code == 404:
                    raise _InstanceRefused(f"instance {sop_uid}: not found (HTTP 404)")
                response.raise_for_status()
                _stream_to_file(response, body, receiver.max_instance_bytes + _PART_HEADER_LIMIT, sop_uid)
                boundary = _multipart_boundary(response.headers.get("Content-Type", ""))
            with atomic_path(final) as temporary:
                _copy_single_part(body, boundary, temporary, receiver.max_instance_bytes, sop_uid)
                _check_received_instance(temporary, study_uid, series_uid, sop_uid)
        except _InstanceRefused as refusal:
            receiver.refused[sop_uid] = str(refusal)
            continue
        except requests.RequestException as error:
            raise _http_failure(error) from error
        finally:
            body.unlink(missing_ok=True)
        receiver.wanted.discard(sop_uid)
        receiver.on_received(final)


def retrieve_instances(
    url: str,
    study_uid: str,
    series_uid: str,
    sop_instance_uids: Iterable[str],
    out_dir: str | os.PathLike,
    *,
    destination: MoveDestination | None = None,
    max_instance_bytes: int = 2 << 30,
    before_each: Callable[[], None] = lambda: None,
    on_received: Callable[[Path], None] = lambda path: None,
    attempts: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
) -> dict[str, str]:
    """Retrieve the instances of one series not yet in ``out_dir``, each as ``out_dir/<SOPInstanceUID>.dcm``.

    ``http(s)://``: WADO-RS Retrieve Instance (PS3.18 10.4), one streamed request per instance. ``dicom://``:
    C-GET at IMAGE level with the list of SOP Instance UIDs (PS3.4 C.4.3), or C-MOVE to ``destination``
    (PS3.4 C.4.2). Each file is written atomically, after its size was checked against ``max_instance_bytes``
    (DICOMweb: while streaming, before anything is decoded; DIMSE: pynetdicom receives it to a temporary file).
    A retry after network trouble asks only for the instances still missing.

    Args:
        url: the PACS.
        study_uid: the study (a UID).
        series_uid: the series (a UID).
        sop_instance_uids: the instances wanted (UIDs).
        out_dir: the folder (created).
        destination: C-MOVE to this started :class:`MoveDestination` instead of C-GET (DIMSE only).
        max_instance_bytes: the largest instance accepted; a larger one is refused with its reason.
        before_each: called before each instance is taken (radtl pull's rate limit).
        on_received: called with each file written.
        attempts: tries on network trouble.
        backoff_s: the first delay between tries.
        timeout_s: per network operation.

    Returns:
        The instances refused one by one (too large, not DICOM, another instance, not found), with the reason.

    Raises:
        PacsError: the network failed after retries, or the PACS refused the retrieve.
    """
    wanted = set(sop_instance_uids)
    for value in (study_uid, series_uid, *wanted):
        if not is_uid(value):
            raise ValueError(f"{str(value)[:80]!r} is not a UID")
    address, out = parse_pacs_url(url), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    receiver = _InstanceReceiver(out, {u for u in wanted if not (out / f"{u}.dcm").exists()}, max_instance_bytes,
                                 before_each, on_received)
    if not address.is_dimse:
        operation, attempt = "WADO-RS from", lambda: _wado_instances(address, study_uid, series_uid, receiver,
                                                                      timeout_s)
    elif destination is None:
        operation, attempt = "C-GET from", lambda: _c_get_instances(address, study_uid, series_uid, receiver,
                                                                     timeout_s)
    else:
        operation, attempt = "C-MOVE from", lambda: _c_move_instances(address, study_uid, series_uid, receiver,
                                                                       destination, timeout_s)
    with _datasets_received_to_disk():
        _with_retries(address, operation, attempts, backoff_s, attempt)
    return dict(receiver.refused)
