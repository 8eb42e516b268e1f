"""``radtl-label``: MONAI Label's own command line, started after radtl's compatibility shim, behind radtl's guard.

``radtl-label start_server --app apps/radtl --studies STUDIES --conf models luna_nodule_seg`` takes ``monailabel``'s
arguments. It exists because ``monailabel start_server`` imports pydicom-seg before any app code runs (see
:mod:`radtl.label.compat`), and because ``monailabel`` listens on every interface with no authentication. For
``start_server``, ``radtl-label``

- listens on 127.0.0.1 unless ``--host`` says otherwise;
- serves ``radtl.label.asgi:app``: MONAI Label's app behind :class:`radtl.label.guard.RequestGuard` (a bearer token
  when one is set, a request body limit, typed train settings);
- takes the token from the environment (``RADTL_LABEL_TOKEN``) or a file (``--token_file`` or
  ``RADTL_LABEL_TOKEN_FILE``), never from the command line, where every user of the machine could read it;
- refuses to start on an address other than loopback without a token, unless ``--insecure`` (or MONAI Label's own
  Keycloak authentication, ``MONAI_LABEL_AUTH_ENABLE=true``) is given;
- takes ``--max_upload_mb`` (default 512): the largest upload it reads.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from radtl.label.compat import install
from radtl.label.guard import (
    DEFAULT_MAX_UPLOAD_MB,
    TOKEN_FILE_ENV,
    UPLOAD_ENV,
    TokenError,
    configured_token,
    max_upload_bytes,
)

__all__ = ["ASGI_APP", "DEFAULT_HOST", "main", "server_arguments"]

#: Where ``radtl-label`` listens unless ``--host`` says otherwise.
DEFAULT_HOST = "127.0.0.1"
#: What uvicorn serves: MONAI Label's app behind radtl's guard.
ASGI_APP = "radtl.label.asgi:app"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def _keycloak_enabled() -> bool:
    return os.environ.get("MONAI_LABEL_AUTH_ENABLE", "").strip().lower() in ("1", "true", "yes", "on")


def server_arguments(argv: list[str]) -> list[str]:
    """``monailabel``'s arguments for ``radtl-label ARGV``: radtl's options applied (to the environment) and removed.

    Raises:
        SystemExit: with a one-line message, when the server would listen beyond loopback without authentication,
            or the token or an option is unusable.
    """
    if not argv or argv[0] != "start_server":
        return argv
    parser = argparse.ArgumentParser(prog="radtl-label start_server", add_help=False)
    parser.add_argument("-i", "--host", default=DEFAULT_HOST)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--token_file")
    parser.add_argument("--max_upload_mb", type=float, default=None)
    parser.add_argument("--uvicorn_app")
    parser.add_argument("--token")
    options, rest = parser.parse_known_args(argv)
    if options.token is not None:
        sys.exit(
            "radtl-label: a token on the command line is visible to every user of the machine; "
            "set RADTL_LABEL_TOKEN or pass --token_file"
        )
    if options.uvicorn_app is not None:
        sys.exit(f"radtl-label: serves {ASGI_APP} (MONAI Label behind radtl's guard); --uvicorn_app is not taken")
    if options.token_file:
        os.environ[TOKEN_FILE_ENV] = os.path.abspath(options.token_file)
    if options.max_upload_mb is not None:
        os.environ[UPLOAD_ENV] = str(options.max_upload_mb)
    try:
        token = configured_token()
        max_upload_bytes()
    except (TokenError, ValueError) as error:
        sys.exit(f"radtl-label: {error}")
    if token and _keycloak_enabled():
        sys.exit("radtl-label: both a radtl token and MONAI_LABEL_AUTH_ENABLE (Keycloak) are set; use one")
    if not _is_loopback(options.host) and not token and not _keycloak_enabled():
        if not options.insecure:
            sys.exit(
                f"radtl-label: refusing to listen on {options.host} without authentication; set RADTL_LABEL_TOKEN "
                "or --token_file (or Keycloak: MONAI_LABEL_AUTH_ENABLE=true), or pass --insecure"
            )
    authentication = "bearer token" if token else "Keycloak" if _keycloak_enabled() else "NONE (--insecure)"
    if _is_loopback(options.host) and not token and not _keycloak_enabled():
        authentication = "none (loopback only)"
    print(
        f"radtl-label: listening on {options.host}; authentication: {authentication}; "
        f"uploads up to {os.environ.get(UPLOAD_ENV, DEFAULT_MAX_UPLOAD_MB)} MiB",
        file=sys.stderr,
    )
    return [*rest, "--host", options.host, "--uvicorn_app", ASGI_APP]


def main(argv: list[str] | None = None) -> None:
    """Run ``monailabel`` with ``argv`` (default: this process's arguments), radtl's options applied first."""
    install()
    arguments = server_arguments(list(sys.argv[1:] if argv is None else argv))
    try:
        from monailabel.main import Main
    except ImportError as error:
        sys.exit(
            f"radtl-label: MONAI Label is not installed ({error}); install it with\n"
            '  pip install "radtl[label]" && pip install --no-deps monailabel==0.8.5'
        )
    sys.argv = [sys.argv[0], *arguments]
    Main().run()


if __name__ == "__main__":
    main()
