"""The container backend (``scheduler="container"``): each job in a container.

- ``docker.py`` — ``ContainerScheduler``: docker or podman, driven through
  their command line (one ``ps`` per poll cycle for the whole run);
- ``apptainer.py`` — ``ApptainerScheduler``: ``apptainer exec`` as local
  processes (apptainer has no daemon); the engine picks it for
  ``bin="apptainer"`` (``ContainerScheduler.for_options``);
- ``spec.py`` — the options, command lines and ``ps`` parsing, as pure
  functions shared by both.
"""

from __future__ import annotations

from .apptainer import ApptainerScheduler
from .docker import ContainerScheduler
from .spec import CONTAINER_OPTIONS, check_engine_and_volumes

__all__ = [
    "CONTAINER_OPTIONS",
    "ApptainerScheduler",
    "ContainerScheduler",
    "check_engine_and_volumes",
]
