"""The error policy's two kinds of failure, for every module and entry point.

`UserError`: the input is wrong (a flag, a config value, a file, the set-up); the message
names the bad value and the fix, and the command-line tools print it as one line and exit
with code 2, leaving nothing written. `RunFailure`: a run failed for a reason that is not
a bug of ours (the simulator raised, the loss diverged); one line, exit code 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2
EXIT_RUN_FAILURE = 1


class UserError(Exception):
    """Bad input from the user; the message names the value and the fix."""


class RunFailure(RuntimeError):
    """A run failed for a reason outside our code; the message says where and what to do."""


class ConfigError(UserError, ValueError):
    """A bad flag, config value or environment variable."""


class SimulatorNotFound(UserError, ValueError):
    """A simulator name, class or option set that cannot be loaded or built."""


class SimulatorSetupError(UserError):
    """The simulator cannot run here (a missing library, a bad data file): the user must fix
    their set-up. Raised as is, never wrapped, so its one-line fix reaches the user."""


class NotAnExportError(UserError, ValueError):
    """A directory that is missing or is not a simvae_tf export."""


class SimulatorError(RunFailure):
    """A simulator raised, or returned something unusable; names the simulator and latents."""


class NonFiniteLossError(RunFailure):
    """Training produced NaN/Inf; the last good checkpoint is left untouched."""
