"""Errors in the user's data, which the entry points print as one line (no traceback)."""


class DataError(ValueError):
    """Data that cannot be used as configured; the message names the file or the setting."""


class ManifestError(DataError):
    """A manifest that cannot be used: missing, unparseable, or with no usable row."""
