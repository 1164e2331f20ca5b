"""xqute's logger, with the NullHandler a library gives its logger (records
go nowhere unless the application configures logging). The modules that log
import it; ``import xqute`` alone does not import ``logging`` (the one-shot
``xqute submit`` does not need it)."""

import logging

logger = logging.getLogger("xqute")
if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
    logger.addHandler(logging.NullHandler())
