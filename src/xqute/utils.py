"""``xqute.utils.logger`` (xqute 2.x's name): the package's logger.

The same ``logging.Logger`` as ``xqute.logger`` (``logging.getLogger("xqute")``).
Clients configure it as they like; pipen, for one, removes ``handlers[0]`` and
installs its own.
"""

from __future__ import annotations

from . import logger

__all__ = ["logger"]
