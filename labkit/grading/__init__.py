"""Grading executed course notebooks: ``labkit release`` and ``labkit grade``.

The flow an instructor follows::

    course notebooks ──labkit release──▶ student notebooks  (handed out)
                              └────────▶ manifest.json      (kept by the instructor)
    executed student notebooks + manifest ──labkit grade──▶ gradebook.csv, lms.csv, report.json,
                                                           feedback/<id>.html, summary.html + .png

Modules (the pure ones take and return plain data and never spawn a process):

* :mod:`labkit.grading.manifest` – pure: check cells, source checksums, student versions, the
  manifest format.
* :mod:`labkit.grading.classify` – pure: one notebook dict → one status per check (the tamper
  rules are tabled in its docstring).
* :mod:`labkit.grading.collect` – reads submissions (folders, files, zips) once each, with
  size limits, and identifies students; no code from a submission is ever executed.
* :mod:`labkit.grading.gradebook` – pure: duplicates, copies between students, totals.
* :mod:`labkit.grading.render` – pure: CSV / HTML strings (everything from a submission escaped).
* :mod:`labkit.grading.plot` – the summary PNG (matplotlib Figure API, imported lazily).
* :mod:`labkit.grading.rerun` – ``--rerun`` only: re-executes submissions with
  :mod:`labkit.validate`'s papermill machinery.
* :mod:`labkit.grading.release`, :mod:`labkit.grading.grade` – the CLI verbs.

Nothing here imports the widget layer (:mod:`labkit.ui`).
"""
