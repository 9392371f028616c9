"""Errors that the command line reports as one line instead of a traceback."""


class MirrorError(Exception):
    """A failure the user can act on (bad data, a missing checkpoint); exit code 1."""

    exit_code = 1


class ConfigError(MirrorError):
    """A bad configuration: unknown key, wrong type, missing file; exit code 2."""

    exit_code = 2


class MissingExtra(MirrorError):
    """An optional package is not installed; the message names the extra of pyproject.toml that installs it."""


def missing_extra(package: str, extra: str, part: str) -> MissingExtra:
    """The one-line error for `part` (a feature) needing `package`, which the extra `mirror[extra]` installs."""
    return MissingExtra(f"{part} needs '{package}', which is not installed: install mirror's extra '{extra}' "
                        f"(in the repository: pip install -e '.[{extra}]')")
