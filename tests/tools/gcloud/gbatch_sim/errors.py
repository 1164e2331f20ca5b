"""Errors: CLI usage errors, generic CLI errors and Batch API errors."""

from __future__ import annotations


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
class CliError(Exception):
    """An error printed as ``ERROR: (gcloud.X) message``."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ArgError(CliError):
    """Command line usage error (gcloud exits 2 for these)."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


class ApiError(Exception):
    """An error 'returned by the Batch API' (status + message)."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def sim_limitation(message: str) -> ApiError:
    return ApiError("UNIMPLEMENTED", f"[gcloud batch simulator] {message}")
