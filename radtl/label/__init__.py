"""MONAI Label integration: radtl's bundles served to annotation clients (3D Slicer, OHIF).

:mod:`radtl.label.app` is the app (``apps/radtl/main.py`` exposes it to MONAI Label), :mod:`radtl.label.tasks`
its infer and train tasks, :mod:`radtl.label.datastore` its local-folder and DICOMweb datastores,
:mod:`radtl.label.server` the ``radtl-label`` command, :mod:`radtl.label.guard` the front door it serves MONAI
Label's app behind (a bearer token, a request body limit, typed train settings; :mod:`radtl.label.asgi`).
Needs ``pip install "radtl[label]"`` and ``pip install --no-deps monailabel==0.8.5`` (see docs/label.md).

Importing this package first installs :mod:`radtl.label.compat`'s stand-in for pydicom-seg, so every
way into the app (the server, MONAI Label's training subprocess, a test) imports MONAI Label after it.
"""

from radtl.label.compat import install

install()
