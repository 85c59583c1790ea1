"""Grading executed course notebooks: ``labkit release`` and ``labkit grade``.

::

    course notebooks ──labkit release──▶ student notebooks + manifest.json (kept by the instructor)
    executed student notebooks + manifest ──labkit grade──▶ gradebook.csv, lms.csv, report.json,
                                                           feedback/<id>.html, summary.html + .png

Imports go one way: :mod:`labkit.notebooks` (every cell helper) ← ``manifest`` (check cells,
checksums, the manifest; pure) ← ``classify`` (one notebook → one status per check; pure) ←
``collect`` (reads submissions once each, bounded, never executes them) ← ``gradebook``
(duplicates, copies, totals; pure) ← ``render`` (CSV / HTML, escaped; pure) and ``plot`` (PNG) ←
the verbs ``release`` and ``grade``; ``output`` decides whether ``--out`` may be used and replaces
it whole. ``rerun`` (``--rerun`` only) re-executes submissions with
:mod:`labkit.validate`. Nothing here imports :mod:`labkit.steps` or :mod:`labkit.ui`.
"""
