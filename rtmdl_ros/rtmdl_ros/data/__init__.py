"""Data sets: synthetic generators (cached outside git) and loaders for real ones."""


class DatasetError(ValueError):
    """A data folder that does not have the expected layout; the message says what is missing."""
