"""Exception types shared by the whole library.

Every error that is caused by user input (a file, a config key, a split) derives from
:class:`LowshotError` so that the CLI can print it without a traceback.
"""


class LowshotError(Exception):
    """Base class for errors caused by user input (bad files, keys, configs)."""


class ConfigError(LowshotError, ValueError):
    """A config file, key or value is invalid."""


class DataError(LowshotError, ValueError):
    """A data file is missing, corrupt or inconsistent with the others."""


class UntrustedPickleError(DataError):
    """A pickle-based file was asked to be read without explicit trust."""
