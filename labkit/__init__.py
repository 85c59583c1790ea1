"""labkit: a Jupyter-native course kit for 大数据技术 (big-data infrastructure).

``import labkit`` stays fast: heavy modules (docker, kubernetes, torch, papermill, ipywidgets)
load only when the function that needs them is first used.

Layout (each layer imports only the ones below it):

* :mod:`labkit.logic` – pure tool logic: argv / file builders and output parsers.
* :mod:`labkit.checks`, :mod:`labkit.errors`, :mod:`labkit.i18n` – shared data types.
* :mod:`labkit.steps` – the runner (the only code that spawns processes) and the plan → run →
  check steps of each chapter.
* :mod:`labkit.ui` – thin ipywidgets panels; :mod:`labkit.cli` – the ``labkit`` command.
"""

from labkit._version import __version__
from labkit.checks import CHECK_MIME, CheckResult
from labkit.errors import (
    CommandFailed,
    CommandTimeout,
    ConsentRequired,
    InvalidField,
    LabkitError,
    NotSupportedHere,
    ToolMissing,
)
from labkit.i18n import tr

__all__ = [
    "CHECK_MIME",
    "CheckResult",
    "CommandFailed",
    "CommandTimeout",
    "ConsentRequired",
    "InvalidField",
    "LabkitError",
    "NotSupportedHere",
    "ToolMissing",
    "__version__",
    "tr",
]
