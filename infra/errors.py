"""Errors a user can fix. The CLI prints them as one clear line instead of a traceback."""


class UserError(Exception):
    """Bad input or bad configuration: the message says what is wrong and how to fix it."""


class ConfigError(UserError):
    """A run config or override is invalid; the message names the key and the allowed values."""


class DataError(UserError):
    """An annotation file, video or prediction file is malformed; the message names file, record, field."""
