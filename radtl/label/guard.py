"""The front door of ``radtl-label``: a bearer token, a bounded request body and typed train settings.

:class:`RequestGuard` wraps MONAI Label's FastAPI app (``monailabel.app.app``) as ASGI middleware; ``radtl-label``
serves it as ``radtl.label.asgi:app``. For every HTTP request, before the app sees it, it

1. checks ``Authorization: Bearer <token>`` when the server has a token (401 otherwise; compared in constant time,
   never logged or echoed). A CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) carries no
   credentials by design and passes;
2. refuses a body over the upload limit from its ``Content-Length`` alone (413), and a body without one (411), so
   nothing is read that the limit does not bound;
3. parses the bundle settings of a train request (``POST /train/...``) to their types (422 naming the setting),
   in the server's process: MONAI Label hands the request to a training subprocess otherwise, too late to answer;
4. refuses to replace or delete model weights over HTTP (``PUT``/``DELETE /model/...``, 403): a checkpoint is a
   pickle-based file the server loads, so it is placed on the server by its operator, never uploaded by a client.

Its settings come from the environment, so every process uvicorn starts reads the same: ``RADTL_LABEL_TOKEN`` or
``RADTL_LABEL_TOKEN_FILE`` (a file holding the token), ``RADTL_LABEL_MAX_UPLOAD_MB`` (default
:data:`DEFAULT_MAX_UPLOAD_MB`). ``radtl-label`` sets them from its options (see :mod:`radtl.label.server`).
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from radtl.errors import RadtlError

__all__ = [
    "DEFAULT_MAX_UPLOAD_MB",
    "MIN_TOKEN_LENGTH",
    "RequestGuard",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "TokenError",
    "UPLOAD_ENV",
    "configured_token",
    "max_upload_bytes",
]

TOKEN_ENV = "RADTL_LABEL_TOKEN"
TOKEN_FILE_ENV = "RADTL_LABEL_TOKEN_FILE"
UPLOAD_ENV = "RADTL_LABEL_MAX_UPLOAD_MB"
#: The largest request body (an image or label upload) the server reads by default, in MiB.
DEFAULT_MAX_UPLOAD_MB = 512
#: A token shorter than this is refused: it could be guessed.
MIN_TOKEN_LENGTH = 16

_TRAIN_PATH = re.compile(r"/train(/[^/]*)?/?")
_MODEL_PATH = re.compile(r"/model/[^/]+/?")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TokenError(RadtlError, ValueError):
    """The token is configured in a way radtl will not use (both ways at once, an unreadable file, too short)."""


def configured_token() -> str | None:
    """The server's bearer token, from ``RADTL_LABEL_TOKEN`` or the file named by ``RADTL_LABEL_TOKEN_FILE``; None
    when neither is set.

    Raises:
        TokenError: both set, the file unreadable, or a token shorter than :data:`MIN_TOKEN_LENGTH`
            (the message never holds the token).
    """
    from_env, file = os.environ.get(TOKEN_ENV), os.environ.get(TOKEN_FILE_ENV)
    if from_env and file:
        raise TokenError(f"both {TOKEN_ENV} and {TOKEN_FILE_ENV} are set; set one")
    if file:
        try:
            from_env = Path(file).read_text().strip()
        except OSError as error:
            raise TokenError(f"cannot read the token file {file}: {error.strerror}") from None
    if not from_env:
        return None
    if len(from_env.strip()) < MIN_TOKEN_LENGTH:
        raise TokenError(f"the token is shorter than {MIN_TOKEN_LENGTH} characters; use e.g. `openssl rand -hex 32`")
    return from_env.strip()


def max_upload_bytes() -> int:
    """The largest request body the server reads: ``RADTL_LABEL_MAX_UPLOAD_MB`` MiB (default 512)."""
    value = os.environ.get(UPLOAD_ENV, "").strip() or str(DEFAULT_MAX_UPLOAD_MB)
    try:
        megabytes = float(value)
    except ValueError:
        raise ValueError(f"{UPLOAD_ENV}={value!r} is not a number of MiB") from None
    if not 0 < megabytes <= 1 << 20:
        raise ValueError(f"{UPLOAD_ENV}={value!r} must be above 0 and at most 1048576 MiB")
    return int(megabytes * (1 << 20))


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    fields = {"content-type": "application/json", "content-length": str(len(body)), **(headers or {})}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(key.encode(), value.encode()) for key, value in fields.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware in front of MONAI Label's app (see the module docstring).

    Args:
        app: the app to guard.
        token: the bearer token every request must carry; None lets every request in.
        max_body_bytes: the largest request body read.
        check_train: parses a train request's settings (a dict), raising ``ValueError`` with the setting's name.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        max_body_bytes: int,
        check_train: Callable[[dict], object] | None = None,
    ) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.check_train = check_train

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        return self._expected is None or hmac.compare_digest(headers.get(b"authorization", b""), self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the app's start-up and shut-down, no client
            await self.app(scope, receive, send)
            return
        headers = {key.lower(): value for key, value in scope["headers"]}
        if scope["type"] == "websocket":
            if self._authorized(headers):
                await self.app(scope, receive, send)
            else:  # refused before the handshake completes (ASGI: close in answer to websocket.connect)
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        preflight = scope["method"] == "OPTIONS" and b"access-control-request-method" in headers
        if not preflight and not self._authorized(headers):
            await _answer(send, 401, "this server needs a bearer token: Authorization: Bearer <token>",
                          {"www-authenticate": "Bearer"})
            return
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" in headers:
            await _answer(send, 411, "a request body must declare its Content-Length")
            return
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(length) > self.max_body_bytes:
                detail = f"the request body is {int(length)} bytes; this server takes at most {self.max_body_bytes}"
                await _answer(send, 413, detail)
                return
        if scope["method"] in ("PUT", "DELETE") and _MODEL_PATH.fullmatch(scope["path"]):
            await _answer(send, 403, "model weights are not replaced or deleted over HTTP; place the checkpoint on the "
                                     "server (--conf <bundle> '{\"checkpoint\": PATH}') or fine-tune with /train/")
            return
        if self.check_train is not None and scope["method"] == "POST" and _TRAIN_PATH.fullmatch(scope["path"]):
            receive = await self._checked_train(receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    async def _checked_train(self, receive: Receive, send: Send) -> Receive | None:
        """The train request's body read (bounded above), its settings parsed; a receive that replays it, or None
        when a 422 was sent."""
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return receive
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _answer(send, 413, f"the request body is over {self.max_body_bytes} bytes")
                return None
        try:
            params = json.loads(body) if body.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            params = None  # not JSON: MONAI Label's own validation answers
        if isinstance(params, dict):
            try:
                for part in (params, *(value for value in params.values() if isinstance(value, dict))):
                    self.check_train(part)
            except ValueError as error:
                await _answer(send, 422, f"train request: {error}")
                return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay
