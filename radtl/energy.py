"""Wall time and energy of a run: what RadiologyNET's "epochs to convergence" stood in for.

The study tracked emissions with codecarbon and reported epochs as the portable proxy
(shared/science/radiologynet.md, "Fine-tuning protocol"). :class:`RunMeter` measures a block of
work: always its wall time, and, when the optional ``codecarbon`` package is installed, the
energy it drew (CPU, GPU and RAM, kWh) and the emissions that energy stands for in a given
country's grid mix (kg CO2eq). It uses codecarbon's offline tracker, which needs no network.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import time
from typing import Self

__all__ = ["RunMeter", "codecarbon_available"]

logger = logging.getLogger(__name__)


def codecarbon_available() -> bool:
    return importlib.util.find_spec("codecarbon") is not None


class RunMeter:
    """Context manager: ``with RunMeter() as meter: ...`` then ``meter.result()``.

    ``result()`` is ``{"seconds": ...}``, plus ``energy_kwh`` and ``emissions_kg`` when codecarbon
    is installed (and ``energy_note`` with the reason when it is installed but failed to measure:
    the run itself is never lost to the meter).

    Args:
        country: ISO 3166-1 alpha-3 code of the grid whose carbon intensity converts kWh to kg CO2eq.
        energy: measure energy when codecarbon is installed; ``False`` measures wall time only.
    """

    def __init__(self, country: str = "HRV", energy: bool = True) -> None:
        self.country = country
        self.energy = energy and codecarbon_available()
        self._tracker = None
        self._result: dict = {}

    def __enter__(self) -> Self:
        self._result = {}
        if self.energy:
            try:
                from codecarbon import OfflineEmissionsTracker

                # nothing written to disk: codecarbon 3 names that output_methods=[], 2.x save_to_file=False
                from codecarbon.emissions_tracker import BaseEmissionsTracker

                modern = "output_methods" in inspect.signature(BaseEmissionsTracker).parameters
                quiet = {"output_methods": []} if modern else {"save_to_file": False}
                # codecarbon logs its first lines (on a handler of its own) before it applies log_level
                logging.getLogger("codecarbon").setLevel(logging.ERROR)
                self._tracker = OfflineEmissionsTracker(
                    country_iso_code=self.country, log_level="error", tracking_mode="process", **quiet
                )
                self._tracker.start()
            except Exception as error:  # noqa: BLE001 - a failed measurement must not fail the run
                self._tracker = None
                self._result["energy_note"] = f"codecarbon did not start: {type(error).__name__}: {error}"
                logger.warning(self._result["energy_note"])
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        self._result["seconds"] = round(time.perf_counter() - self._started, 1)
        if self._tracker is None:
            return
        try:
            emissions = self._tracker.stop()
            data = self._tracker.final_emissions_data
            self._result["energy_kwh"] = float(data.energy_consumed)
            self._result["emissions_kg"] = float(emissions)
        except Exception as error:  # noqa: BLE001 - as in __enter__
            self._result["energy_note"] = f"codecarbon did not measure: {type(error).__name__}: {error}"
            logger.warning(self._result["energy_note"])
        finally:
            self._tracker = None

    def result(self) -> dict:
        return dict(self._result)
