"""Project error classes: every bad-input error names the file, column and rows at fault."""


class DataError(ValueError):
    """Bad input data: the message names the file, the column and the first offending rows."""


class ModelError(ValueError):
    """A model directory that is missing, corrupted or trained on other data."""
