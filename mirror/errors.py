"""Errors that the command line reports as one line instead of a traceback."""


class MirrorError(Exception):
    """A failure the user can act on (bad data, a missing checkpoint); exit code 1."""

    exit_code = 1


class ConfigError(MirrorError):
    """A bad configuration: unknown key, wrong type, missing file; exit code 2."""

    exit_code = 2
