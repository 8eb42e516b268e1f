"""Moving DICOM files to and from a PACS: DIMSE (PS3.4) and DICOMweb (PS3.18).

``radtl segment`` fetches the input CT series from the archive and sends the DICOM-SEG back to it.
A PACS is named by a URL (:func:`parse_pacs_url`): ``dicom://AET@host:port[?calling=MYAET]`` speaks DIMSE through
pynetdicom, ``dicoms://`` the same over TLS, ``http(s)://host:port/dicom-web`` speaks DICOMweb through
dicomweb-client. Credentials and certificates come from the environment (:mod:`radtl.dicom.connections`).

Network trouble (connection refused, an aborted association, a timeout, HTTP 5xx or 429) is retried with
exponential backoff; a refusal by the PACS (a failure status, HTTP 4xx, a certificate radtl does not trust) is
final at once, and refused credentials (HTTP 401/403) are one :class:`PacsAuthenticationError`. Either way the
transfer ends in :class:`PacsError`, never in a success that did not happen. Files sent are only read.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import ssl
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
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, build_role, evt
from pynetdicom import sop_class as sop

from radtl.atomic import write_bytes_atomic
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
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(query, keyword, value)
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
        return _Transient(f"{type(error).__name__}: {error}")
    return _Refused(f"{type(error).__name__}: {error}")


def _ssl_cause(error: BaseException) -> ssl.SSLError | None:
    """The ssl module's error under a requests error (urllib3 wraps it in one or two of its own), if any."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        inner = (getattr(current, "reason", None), *current.args, current.__cause__, current.__context__)
        pending.extend(item for item in inner if isinstance(item, BaseException))
    return None


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


def _qido_study(address: PacsAddress, study_uid: str, modality: str | None, timeout_s: float) -> list[InstanceRecord]:
    """QIDO-RS Search for Instances of a study (PS3.18 10.6), all pages."""
    try:
        found = _dicomweb(address, timeout_s).search_for_instances(
            study_instance_uid=study_uid,
            fields=["Modality", "SOPClassUID"],
            search_filters={"Modality": modality} if modality else None,
            get_remaining=True,
        )
    except requests.RequestException as error:
        raise _http_failure(error) from error
    records = []
    for ds in map(Dataset.from_json, found):
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
    client = _dicomweb(address, timeout_s)
    for modality in RESULT_MODALITIES:
        try:
            answers = client.search_for_series(
                study_instance_uid=study_uid,
                search_filters={"Modality": modality},
                fields=["SeriesDescription", "Manufacturer", "NumberOfSeriesRelatedInstances"],
                get_remaining=True,
            )
        except requests.RequestException as error:
            raise _http_failure(error) from error
        found.extend(_result_series(study_uid, Dataset.from_json(answer), algorithm) for answer in answers)
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
