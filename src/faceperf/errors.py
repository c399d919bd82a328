"""Errors the user can act on.

Library code raises these; only the CLI and the pytest plugin turn them into messages and exit
codes. Every message is one line that names the file or value and says what was expected.
"""


class FaceperfError(Exception):
    """Base class for every error faceperf reports to its user."""


class WeightsError(FaceperfError):
    """A checkpoint is missing, unreadable, unsafe, or does not fit the model."""


class ArtifactError(FaceperfError):
    """An artifact file or manifest is missing, corrupt, or breaks the artifact contract."""


class InputMismatchError(FaceperfError):
    """Inputs handed to a runner do not match the artifact's declared names, shapes or dtypes."""


class BackendUnavailableError(FaceperfError):
    """The requested runtime backend cannot run on this machine (with the reason)."""


class RevisionError(FaceperfError):
    """A git revision cannot be resolved or built."""
