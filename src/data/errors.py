"""Errors in the user's data, which the entry points print as one line (no traceback)."""


class ManifestError(ValueError):
    """A manifest that cannot be used: missing, empty, or a malformed row (file and line named)."""
