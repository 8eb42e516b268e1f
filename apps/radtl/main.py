"""The radtl MONAI Label app (see docs/label.md): :class:`radtl.label.app.RadtlApp`, found here by MONAI Label.

Start it with ``radtl-label start_server --app apps/radtl --studies STUDIES --conf models luna_nodule_seg``.
Importing ``radtl.label`` installs its start-up shim before MONAI Label's own imports: MONAI Label's
training subprocess loads this file first.
"""

from radtl.label.app import RadtlApp

__all__ = ["RadtlApp"]
