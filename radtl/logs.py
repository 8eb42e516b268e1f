"""Placeholder until the console-output change lands: console logging for the radtl command."""

from __future__ import annotations

import logging
import os


def configure(verbose: bool | None = None) -> None:
    if verbose is None:
        verbose = os.environ.get("RADTL_VERBOSE", "") in ("1", "true")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
