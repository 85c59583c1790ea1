"""``labkit validate``: execute the course notebooks headlessly (papermill) and report their checks.

Each notebook runs in its own fresh kernel, several at once, with the papermill parameters
``mode`` (``auto`` / ``plan`` / ``live``) and ``labkit_workdir`` (a fresh scratch folder). The
executed copies land in ``--out`` under the same file names; the check payloads the steps
displayed are read back from them (:mod:`labkit.notebooks`) and counted. A table goes to stdout,
``--report`` writes JSON.

Modules: :mod:`~labkit.validate.inputs` (notebooks, scratch folders), :mod:`~.kernels` (starting,
stopping, killing kernels), :mod:`~.execute` (one notebook, failures), :mod:`~.run` (the pool and
:func:`main`), :mod:`~.report` (results, table), :mod:`~.cli`. Nothing heavy is imported until a
notebook runs.
"""

from __future__ import annotations

from .cli import add_arguments, cli
from .inputs import MODES, WORKDIR_MARK, default_notebooks
from .report import NotebookResult, ValidateReport
from .run import main

__all__ = [
    "MODES",
    "WORKDIR_MARK",
    "NotebookResult",
    "ValidateReport",
    "add_arguments",
    "cli",
    "default_notebooks",
    "main",
]
