"""Errors that reach the user as one line."""


class RFCheckError(Exception):
    """Bad input or a model that cannot be analysed; ``str()`` is the one line to print."""


class TraceError(RFCheckError):
    """The model's forward pass failed for the given input."""
