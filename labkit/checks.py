"""Check results: the evidence a step leaves in the notebook.

A :class:`CheckResult` is plain data. Displayed in Jupyter it produces a MIME bundle with
``application/vnd.labkit.check+json`` (the machine-readable payload the validator and the grader
read back from the saved ``.ipynb``), ``text/html`` and ``text/plain``. Nothing depends on widget
state, so the evidence survives saving, nbconvert and papermill. The payload format is at
:meth:`CheckResult.to_payload`, what its digest proves at :func:`payload_digest`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from labkit._version import __version__
from labkit.i18n import lang as _lang

__all__ = [
    "CHECK_MIME",
    "PLAN_MIME",
    "STATUSES",
    "CheckResult",
    "Status",
    "canonical",
    "now_iso",
    "payload_digest",
    "session_id",
    "verify_payload",
]

CHECK_MIME = "application/vnd.labkit.check+json"
PLAN_MIME = "application/vnd.labkit.plan+json"
Status = Literal["pass", "fail", "error", "skipped"]
STATUSES: tuple[str, ...] = ("pass", "fail", "error", "skipped")
_MODES = ("run", "plan")

_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#9a6700", "skipped": "#57606a"}
_ICONS = {"pass": "✔", "fail": "✘", "error": "⚠", "skipped": "○"}


def now_iso() -> str:
    """The current UTC time as ``2026-03-01T12:00:00Z`` (one-second resolution, sorts as text)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SESSION: str | None = None
_DIGEST_PREFIX = b"labkit-check-v1\n"
#: A number token (after ``:`` ``,`` or ``[`` in compact JSON) that is an integral float such as
#: ``60.0`` or an integer of 16+ digits: only then can :func:`canonical` change anything. Integral
#: floats up to 2**53 never print with an exponent, and hex strings (session ids, sha256) do not
#: follow those separators, so they stay on the fast path.
_MAYBE_NON_CANONICAL = re.compile(r"[:,\[]-?(?:\d+\.0+(?=[,}\]])|\d{16,})")


def session_id() -> str:
    """A random id for this process (one kernel run), drawn on first use."""
    global _SESSION
    if _SESSION is None:
        _SESSION = uuid.uuid4().hex
    return _SESSION


def canonical(value: Any) -> Any:
    """JSON data as a browser would write it back: integral floats become ints.

    JupyterLab saves notebooks through JavaScript, which has one number type: ``60.0`` is written
    back as ``60``. Payloads are stored (and digested) in this form so a result saved from a browser
    still verifies. Integers beyond 2**53 would lose precision in JavaScript and become strings.
    """
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)
    return value


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of ``payload`` without its ``digest`` key.

    It exposes a hand-edited payload (say a ``fail`` turned into ``pass`` in a text editor). It is
    not a signature – anyone with labkit can recompute it – so graders combine it with the other
    tamper checks (see the grading docs).
    """
    body = {k: v for k, v in payload.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if _MAYBE_NON_CANONICAL.search(text):  # fast path: most payloads hold no 60.0 or huge ints
        text = json.dumps(canonical(body), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    # surrogatepass: JSON may carry lone surrogates ("\ud800"); hash them instead of raising.
    return hashlib.sha256(_DIGEST_PREFIX + text.encode("utf-8", "surrogatepass")).hexdigest()


def verify_payload(payload: dict[str, Any]) -> bool:
    """True when ``payload`` carries a digest that matches its content."""
    digest = payload.get("digest")
    return isinstance(digest, str) and digest == payload_digest(payload)


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so evidence never holds objects a notebook cannot store."""
    return canonical(json.loads(json.dumps(value, default=str)))


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking system state after (or instead of) running a step."""

    check: str
    status: Status
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    mode: str = "run"
    labkit_version: str = __version__
    at: str = field(default_factory=now_iso)
    session: str = field(default_factory=session_id)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, not {self.mode!r}")
        if not self.check:
            raise ValueError("check id must not be empty")
        object.__setattr__(self, "evidence", _jsonable(dict(self.evidence)))

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def passed(cls, check: str, message: str = "", **evidence: Any) -> CheckResult:
        return cls(check, "pass", message, evidence)

    @classmethod
    def failed(cls, check: str, message: str, **evidence: Any) -> CheckResult:
        return cls(check, "fail", message, evidence)

    @classmethod
    def errored(cls, check: str, message: str, **evidence: Any) -> CheckResult:
        return cls(check, "error", message, evidence)

    @classmethod
    def skipped(cls, check: str, message: str, *, mode: str = "run", **evidence: Any) -> CheckResult:
        return cls(check, "skipped", message, evidence, mode=mode)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CheckResult:
        """Rebuild a result read back from a saved notebook (raises ``ValueError`` if malformed)."""
        try:
            return cls(
                check=str(payload["check"]),
                status=payload["status"],
                message=str(payload.get("message", "")),
                evidence=dict(payload.get("evidence") or {}),
                mode=payload.get("mode", "run"),
                labkit_version=str(payload.get("labkit_version", "")),
                at=str(payload.get("at", "")),
                session=str(payload.get("session", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a labkit check payload: {exc}") from exc

    # -- views ------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def to_payload(self) -> dict[str, Any]:
        """The payload stored under ``CHECK_MIME`` (all keys always present)::

            {"check": "ch1.disk.create", "status": "pass|fail|error|skipped", "mode": "run|plan",
             "message": "...", "evidence": {...}, "labkit_version": "0.1.0", "at": "2026-...Z",
             "session": "<32 hex>", "digest": "<sha256 hex>"}

        ``mode`` says whether the step really ran (``run``) or was only planned (``plan``); a
        planned step is always ``skipped``. ``session`` is a random id drawn once per Python process
        (one kernel run), so a grader can tell results produced together from results copied between
        notebooks. ``digest`` is :func:`payload_digest` of the other keys.
        """
        payload = {
            "check": self.check,
            "status": self.status,
            "mode": self.mode,
            "message": self.message,
            "evidence": self.evidence,
            "labkit_version": self.labkit_version,
            "at": self.at,
            "session": self.session,
        }
        payload["digest"] = payload_digest(payload)
        return payload

    def __str__(self) -> str:
        line = f"[{self.status.upper()}] {self.check}"
        if self.message:
            line += f": {self.message}"
        return line

    def summary_html(self) -> str:
        """One line: icon, status, check id and message (what a panel shows)."""
        colour = _COLOURS[self.status]
        return (
            f"<div class='labkit-check' style='border-left:4px solid {colour};padding:4px 8px;"
            f"text-align:left'><b style='color:{colour}'>{_ICONS[self.status]} {self.status.upper()}</b> "
            f"<code>{html.escape(self.check)}</code> {html.escape(self.message)}</div>"
        )

    def _repr_html_(self) -> str:
        """The summary line plus the evidence, folded, left-aligned (JupyterLab right-aligns tables)."""
        cell = "text-align:left;vertical-align:top;padding:1px 8px 1px 0"
        pre = "margin:0;white-space:pre-wrap;overflow-wrap:anywhere;text-align:left"  # long paths wrap
        rows = "".join(
            f"<tr><th style='{cell}'>{html.escape(str(k))}</th>"
            f"<td style='{cell}'><pre style='{pre}'>"
            f"{html.escape(_short(v))}</pre></td></tr>"
            for k, v in self.evidence.items()
        )
        if not rows:
            return self.summary_html()
        label = html.escape("证据" if _lang() == "zh" else "evidence")
        return (
            self.summary_html()[: -len("</div>")]
            + f"<details><summary>{label}</summary>"
            + f"<table style='font-size:90%;margin-left:0'>{rows}</table></details></div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            CHECK_MIME: self.to_payload(),
            "text/html": self._repr_html_(),
            "text/plain": str(self),
        }


def _short(value: Any, limit: int = 2000) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
    return text if len(text) <= limit else text[:limit] + " …"
