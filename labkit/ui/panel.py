"""A generic plan → run → check panel: the widget every course cell uses.

The panel is thin: field widgets become keyword arguments of a step factory; the step does all the
work (:meth:`labkit.steps.base.Step.execute`). What makes it fit notebooks:

* **Evidence survives saving.** :meth:`StepPanel.show` creates display handles in the *cell's*
  outputs (not inside a widget). The check result recorded for grading goes there as a
  :class:`~labkit.ui.evidence.GradedResult`, whose ``application/vnd.labkit.check+json`` payload is
  stored in the ``.ipynb`` even when widget state is not.
* **Experimenting keeps what was earned.** Every run is an *attempt*; it becomes the recorded
  result unless the recorded one passed and the attempt did not
  (:func:`~labkit.ui.evidence.keeps_recorded`). Such an attempt is shown as a note above the graded
  result (text only) and the panel offers a button to record it anyway (:meth:`StepPanel.record_attempt`).
* **Headless and interactive alike.** :meth:`StepPanel.run` runs synchronously, so papermill /
  ``labkit validate`` records the result before the cell ends. The Run button runs the same code
  in a background thread so the Stop button (a cancel event) stays responsive.
"""

from __future__ import annotations

import contextvars
import html
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.checks import CheckResult
from labkit.errors import LabkitError
from labkit.i18n import tr, use_labels
from labkit.steps.base import Plan, Step, check_mode, error_evidence
from labkit.ui import OUTSIDE_FIELD, outside_label
from labkit.ui.evidence import AttemptNote, GradedResult, console_html, keeps_recorded, unrecorded_notice

if TYPE_CHECKING:  # pragma: no cover
    from labkit.ui import Session

__all__ = [
    "Controls",
    "Masked",
    "StepFactory",
    "StepPanel",
    "blank_is_none",
    "css",
    "label_width",
    "step_factory",
]

_MAX_CONSOLE_LINES = 400
#: Lines sent to the console widget: it shows the newest ~12 and scrolls back over the rest.
_VISIBLE_LINES = 60


def css() -> str:
    """The panel stylesheet from the top-level ``widgets/`` folder.

    Installed wheels carry it as the data package ``labkit.assets``; an editable install of a clone
    does not map that package, so fall back to the folder beside ``labkit/``.
    """
    try:
        return resources.files("labkit.assets").joinpath("labkit.css").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        return (Path(__file__).resolve().parents[2] / "widgets" / "labkit.css").read_text(encoding="utf-8")


def label_width(labels: list[str]) -> str:
    """A description width (CSS ``em``) that fits the longest label, so none is cut off.

    Wide (CJK) characters take 1 em, others at most ~0.62 em in the widgets' sans-serif font.
    """
    import unicodedata

    def ems(text: str) -> float:
        return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.62 for ch in text)

    widest = max((ems(label) for label in labels), default=0.0)
    return f"{max(6.0, widest + 1.5):.1f}em"


def _widget_for(default: Any, label: str, choices: Any = None, *, width: str = "10em"):
    import ipywidgets as w

    style = {"description_width": width}
    # Stretched to the panel's width (``auto`` in its column; ``100%`` plus the widget's margins would
    # overflow it), never wider: no horizontal scrollbar in a narrow notebook.
    layout = w.Layout(width="auto", max_width="52em")
    if hasattr(choices, "widget"):  # a field that draws itself (a question of an exercise)
        return choices.widget(default, label)
    if choices is not None:
        return w.Dropdown(options=choices, value=default, description=label, style=style, layout=layout)
    if isinstance(default, bool):  # the label sits right of the box: as wide as it needs
        return w.Checkbox(
            value=default, description=label, indent=False, layout=w.Layout(width="auto", max_width="100%")
        )
    if isinstance(default, int):
        return w.IntText(value=default, description=label, style=style, layout=layout)
    if isinstance(default, float):
        return w.FloatText(value=default, description=label, style=style, layout=layout)
    return w.Text(
        value="" if default is None else str(default), description=label, style=style, layout=layout
    )


@dataclass(frozen=True)
class Masked:
    """The ``choices`` of a secret field (a password): a masked ``ipywidgets.Password`` widget.

    Its value reaches the step factory as typed (the factory wraps it, e.g. in
    :class:`labkit.logic.jupyter_server.Password`); the panel never puts a field value into the plan,
    the console or a result, and the browser shows dots."""

    def widget(self, default: Any, label: str) -> Any:
        import ipywidgets as w

        return w.Password(
            value="" if default is None else str(default),
            description=label,
            style={"description_width": label_width([label])},
            layout=w.Layout(width="auto", max_width="52em"),
        )


@dataclass(frozen=True)
class StepFactory:
    """How a panel turns its field values into a step: ``cls(**fixed, **arguments(values))``.

    Made by :func:`step_factory`. ``check_id`` is the step class's: a panel needs it before the
    step exists, so that an error while building the step still names the right check.
    """

    cls: type[Step]
    work: Session | None = None
    #: Fields holding a file name inside the work directory (mapped through ``work.file``; a file
    #: elsewhere only when the panel's :data:`~labkit.ui.OUTSIDE_FIELD` checkbox is ticked).
    paths: tuple[str, ...] = ()
    #: Field name → the step's keyword, where they differ.
    rename: Mapping[str, str] = field(default_factory=dict)
    #: Field name → a function of the widget's value (applied before the path mapping).
    convert: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    #: Keywords that are not fields.
    fixed: Mapping[str, Any] = field(default_factory=dict)
    #: Another constructor of ``cls`` (e.g. a classmethod taking the fields as they are shown).
    build: Callable[..., Step] | None = None

    @property
    def check_id(self) -> str:
        return self.cls.check_id

    def arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the step: fixed ones, then each field converted and renamed."""
        out = dict(self.fixed)
        outside = bool(values.get(OUTSIDE_FIELD, False))
        for name, value in values.items():
            if name == OUTSIDE_FIELD and self.paths:  # the path policy's checkbox, not a step keyword
                continue
            if name in self.convert:
                value = self.convert[name](value)
            if name in self.paths and value is not None:
                if self.work is None:
                    raise TypeError(f"step_factory({self.cls.__name__}) maps paths but was given no work")
                value = self.work.file(value, field=name, outside=outside)
            out[self.rename.get(name, name)] = value
        return out

    def __call__(self, **values: Any) -> Step:
        return (self.build or self.cls)(**self.arguments(values))


def step_factory(
    cls: type[Step],
    *,
    work: Session | None = None,
    paths: tuple[str, ...] = (),
    rename: Mapping[str, str] | None = None,
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
    build: Callable[..., Step] | None = None,
    **fixed: Any,
) -> StepFactory:
    """The one way a panel builds its step (see :class:`StepFactory`).

    E.g. ``step_factory(CreateImage, work=work, paths=("name",), rename={"name": "path"})``: the
    field ``name`` is a file in the work directory, passed as the step's ``path``.
    """
    if paths and work is None:
        raise TypeError("step_factory: paths need the notebook's work session (work=...)")
    return StepFactory(cls, work, tuple(paths), dict(rename or {}), dict(convert or {}), fixed, build)


def blank_is_none(value: Any) -> Any:
    """An empty text field means "not given" (``src_format=""`` → ``None``: detect it)."""
    return None if isinstance(value, str) and not value.strip() else value


@dataclass(frozen=True)
class Controls:
    """The panel's widgets: what a student sees and uses, and what tests drive the same way.

    Act like the frontend does: set ``fields["size"].value``, call ``run.click()``,
    ``stop.click()``, ``record.click()``; read ``plan.value``, ``console.value``, ``status.value``,
    ``notice.value``. The check result itself is not in the panel: it is in the cell output below
    (one result display), see :mod:`labkit.ui.evidence`.
    """

    box: Any
    fields: dict[str, Any]
    plan: Any
    run: Any
    stop: Any
    progress: Any
    status: Any
    console: Any
    #: "评分仍用 … 的结果" when the newest attempt was not recorded; empty otherwise.
    notice: Any
    #: "记录这次结果（用于评分）": shown only while the newest attempt is not the recorded one.
    record: Any


class StepPanel:
    """Fields + plan + Run/Stop + progress + live console for one step; results in the cell output.

    ``fields`` maps a field name to ``(default, label)`` or ``(default, label, choices)``; choices
    with a ``widget(default, label)`` method draw their own widget (one with a ``value``), e.g. a
    question of :mod:`labkit.ui.exercise`.
    ``make_step(**values)`` builds the step (a :class:`StepFactory`). ``extra`` renders something
    for the recorded result (a plot). The widgets exist once :meth:`controls` (or :meth:`widget`)
    was called; everything else works headless too.

    ``result`` is the newest attempt, ``recorded`` the result the cell output holds for grading.
    """

    def __init__(
        self,
        title: str,
        make_step: StepFactory,
        fields: dict[str, tuple[Any, ...]] | None = None,
        *,
        console: bool = True,
        extra: Callable[[Step, CheckResult], Any] | None = None,
        check_id: str | None = None,
    ) -> None:
        self.title = title
        self.make_step = make_step
        #: Overrides the step's own check id, so two cells running the same kind of step (a qcow2 and
        #: a raw image, say) leave two distinct results for the validator and the grader.
        self.check_id = check_id or make_step.check_id
        self.field_specs = dict(fields or {})
        if getattr(make_step, "paths", ()):
            # One path policy for every file field: a file outside the work folder only when the
            # student ticks this (labkit.ui.Session.file), so nothing elsewhere is touched silently.
            self.field_specs.setdefault(OUTSIDE_FIELD, (False, outside_label()))
        self.console = console
        self.extra = extra
        self.result: CheckResult | None = None
        self.recorded: CheckResult | None = None
        self.step: Step | None = None
        self.lines: list[str] = []
        self._cancel = threading.Event()
        self._handle: Any = None
        self._note_handle: Any = None
        self._extra_handle: Any = None
        self._thread: threading.Thread | None = None
        self._controls: Controls | None = None
        #: The field values and the step whose plan is on screen: Run executes that very step, so
        #: what the student read (generated names, labels) is what runs.
        self._planned: tuple[dict[str, Any], Step] | None = None

    # -- values and plan (no widgets needed: usable headless) ---------------------------------
    def values(self) -> dict[str, Any]:
        if self._controls is not None:
            return {k: wdg.value for k, wdg in self._controls.fields.items()}
        return {k: spec[0] for k, spec in self.field_specs.items()}

    def set(self, **values: Any) -> StepPanel:
        """Set field values from code (what a student would type), e.g. ``panel.set(size="10G")``."""
        unknown = set(values) - set(self.field_specs)
        if unknown:
            raise TypeError(f"unknown field(s) {sorted(unknown)}; fields are {sorted(self.field_specs)}")
        for k, v in values.items():
            if self._controls is not None:
                self._controls.fields[k].value = v
            else:
                spec = self.field_specs[k]
                self.field_specs[k] = (v, *spec[1:])
        return self

    def labels(self) -> dict[str, str]:
        """Step keyword → the label the student sees, for messages (:func:`labkit.i18n.use_labels`).

        Each field's label under its own name and under the step keyword it is renamed to, so a
        message about ``overwrite`` or ``path`` names the checkbox or text field on screen."""
        out: dict[str, str] = {}
        for name, spec in self.field_specs.items():
            out[name] = str(spec[1])
            out.setdefault(getattr(self.make_step, "rename", {}).get(name, name), str(spec[1]))
        return out

    def build(self) -> Step:
        """The step for the current field values: the planned one while the values are unchanged."""
        values = self.values()
        if self._planned is not None and self._planned[0] == values:
            return self._planned[1]
        with use_labels(self.labels()):
            step = self.make_step(**values)
        step.check_id = self.check_id
        self._planned = (values, step)
        return step

    def plan(self) -> Plan | CheckResult:
        """The step's plan, or an *error* result naming the bad field."""
        with use_labels(self.labels()):
            try:
                return self.build().plan()
            except LabkitError as exc:
                return CheckResult.errored(self.check_id, str(exc), **error_evidence(exc))

    # -- widgets -----------------------------------------------------------------------------
    def controls(self) -> Controls:
        """The panel's widgets, created on first use (then always the same ones)."""
        if self._controls is not None:
            return self._controls
        import ipywidgets as w

        width = label_width(
            [
                s[1]
                for s in self.field_specs.values()
                if not isinstance(s[0], bool) and not hasattr(s[2] if len(s) > 2 else None, "widget")
            ]
        )
        fields = {
            name: _widget_for(spec[0], spec[1], spec[2] if len(spec) > 2 else None, width=width)
            for name, spec in self.field_specs.items()
        }
        run = w.Button(description=tr("运行", "Run"), button_style="primary", icon="play")
        stop = w.Button(description=tr("停止", "Stop"), icon="stop", disabled=True)
        record = w.Button(
            description=tr("记录这次结果（用于评分）", "Record this attempt for grading"),
            icon="save",
            layout=w.Layout(width="auto", display="none"),
        )
        progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="16em"))
        wrap = w.Layout(flex_flow="row wrap", align_items="center", overflow="hidden")
        c = Controls(
            box=None,
            fields=fields,
            plan=w.HTML(layout=w.Layout(overflow="hidden")),
            run=run,
            stop=stop,
            progress=progress,
            status=w.HTML(),
            console=w.HTML(layout=w.Layout(display="none", overflow="hidden")),
            notice=w.HTML(),
            record=record,
        )
        box = w.VBox(
            [
                w.HTML(f"<style>{css()}</style><div class='labkit-title'>{html.escape(self.title)}</div>"),
                *fields.values(),
                c.plan,
                w.HBox([run, stop, progress, c.status], layout=wrap),
                c.console,
                w.HBox([record, c.notice], layout=wrap),
            ],
            layout=w.Layout(border="1px solid #d0d7de", padding="6px", overflow="hidden"),
        )
        box.add_class("labkit-panel")
        self._controls = c = replace(c, box=box)
        run.on_click(lambda _b: self.start())
        stop.on_click(lambda _b: self.stop())
        record.on_click(lambda _b: self.record_attempt())
        for wdg in fields.values():
            wdg.observe(lambda _c: self._refresh_plan(), names="value")
        self._refresh_plan()
        return c

    def widget(self) -> Any:
        """The panel as one ipywidgets box (what :meth:`show` displays)."""
        return self.controls().box

    def _refresh_plan(self) -> None:
        """The plan for the fields as they are now (re-planned on every change, so its notes never
        describe old values); a bad field is an input problem here, not a check result."""
        if self._controls is None:
            return
        shown = self.plan()
        if isinstance(shown, CheckResult):
            self._controls.plan.value = (
                "<div class='labkit-plan labkit-invalid' style='border-left:4px solid #9a6700;"
                f"padding:4px 8px'><b>{html.escape(tr('输入有误', 'Check the fields'))}</b>: "
                f"{html.escape(shown.message)}</div>"
            )
        else:
            self._controls.plan.value = shown._repr_html_()

    def show(self, mode: str | None = None) -> None:
        """Display the panel and its cell outputs (the graded result, once there is one).

        With ``mode`` (the notebook's ``mode`` parameter) the step also runs now, synchronously, so
        executing the cell – interactively or headless under papermill – records its evidence.
        """
        from IPython.display import display

        display(self.widget())
        # Slots in the cell outputs, saved with the notebook: a note about an attempt that was not
        # recorded, the graded result, and the recorded result's plot (if the panel makes one).
        self._note_handle = display(_BLANK, raw=True, display_id=True)
        self._handle = display(_not_run_yet(), raw=True, display_id=True)
        if self.extra is not None:
            self._extra_handle = display(_BLANK, raw=True, display_id=True)
        if mode is not None:
            self.run(mode)

    # -- running -----------------------------------------------------------------------------
    def _on_line(self, stream: str, line: str) -> None:
        self.lines.append(line if stream != "stderr" else f"! {line}")
        del self.lines[:-_MAX_CONSOLE_LINES]
        if self._controls is not None:
            console = self._controls.console
            console.value = console_html(self.lines[-_VISIBLE_LINES:])
            if self.console and console.layout.display == "none":
                console.layout.display = ""

    def _on_progress(self, fraction: float) -> None:
        if self._controls is not None:
            self._controls.progress.value = fraction

    def run(self, mode: str = "auto") -> CheckResult:
        """Build the step from the fields, execute it synchronously: one attempt (see :meth:`_settle`).

        Messages made meanwhile name this panel's labels (:meth:`labels`), in this thread too: the
        Run button's thread enters here as well."""
        with use_labels(self.labels()):
            return self._run(mode)

    def _run(self, mode: str) -> CheckResult:
        check_mode(mode)
        self._cancel.clear()
        self.lines.clear()
        if (c := self._controls) is not None:
            c.run.disabled, c.stop.disabled = True, False
            c.status.value = html.escape(tr("运行中…", "running…"))
            c.progress.value = 0.0
            c.console.value = ""
        step: Step | None = None
        try:
            step = self.build()
        except LabkitError as exc:
            result = CheckResult.errored(self.check_id, str(exc), **error_evidence(exc))
        else:
            self._planned = None  # a step runs once: the next Run plans and builds afresh
            result = step.execute(
                mode, on_line=self._on_line, on_progress=self._on_progress, cancel=self._cancel
            )
        self._settle(result, step)
        self._refresh_plan()
        return result

    def start(self, mode: str = "live") -> None:
        """Run in a background thread (the Run button): the kernel stays free for Stop."""
        if self._thread is not None and self._thread.is_alive():
            return
        # Threads start with an empty context: copy the kernel's, so the language (a context
        # variable, labkit.i18n) and any other choice made in the notebook reach the step.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self.run, mode), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> CheckResult | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    # -- attempts and the recorded result ----------------------------------------------------
    def _settle(self, result: CheckResult, step: Step | None) -> None:
        """One attempt is over: record it, or keep the recorded pass and say so."""
        from labkit.ui import current_session

        self.result, self.step = result, step
        if (sess := current_session()) is not None:
            sess.attempted(result)
        if (c := self._controls) is not None:
            c.run.disabled, c.stop.disabled = False, True
            if result.ok:
                c.progress.value = 1.0
        if keeps_recorded(self.recorded, result):
            self._keep_recorded(result)
        else:
            self._record(result, step)

    def record_attempt(self) -> CheckResult | None:
        """Record the newest attempt for grading although it did not pass (the panel's button)."""
        if self.result is None or self.result is self.recorded:
            return self.recorded
        self._record(self.result, self.step)
        return self.recorded

    def _record(self, result: CheckResult, step: Step | None) -> None:
        from labkit.ui import current_session

        self.recorded = result
        if (sess := current_session()) is not None:
            sess.record(result)
        self._publish(GradedResult(result), self._handle)
        if self._note_handle is not None:
            self._note_handle.update(_BLANK, raw=True)
        if (c := self._controls) is not None:
            done = tr("结果已记录在下方（评分用）", "result recorded below (used for grading)")
            c.status.value = html.escape(done)
            c.notice.value = ""
            c.record.layout.display = "none"
        if self.extra is not None and step is not None:
            out = self.extra(step, result)  # None: nothing to draw for this result (clear the slot)
            if out is not None:
                self._publish(out, self._extra_handle)
            elif self._extra_handle is not None:
                self._extra_handle.update(_BLANK, raw=True)

    def _keep_recorded(self, attempt: CheckResult) -> None:
        if self.recorded is None:  # keeps_recorded() is only true with a recorded result
            return
        self._publish(AttemptNote(attempt, self.recorded), self._note_handle)
        if (c := self._controls) is not None:
            c.status.value = ""
            c.notice.value = (
                f"<span class='labkit-notice'>{html.escape(unrecorded_notice(self.recorded, attempt))}</span>"
            )
            c.record.layout.display = ""

    @staticmethod
    def _publish(out: Any, handle: Any) -> None:
        """Show ``out`` in the cell output slot ``handle`` (or as a new output without one)."""
        if out is None:
            return
        if handle is not None:
            handle.update(out)
        else:
            from IPython.display import display

            display(out)


#: An empty output slot (a display handle waiting for content).
_BLANK = {"text/plain": ""}


def _not_run_yet() -> dict[str, str]:
    text = tr("评分用的结果：还没有运行（点「运行」）", "Result used for grading: not run yet (click Run)")
    return {
        "text/plain": text,
        "text/html": f"<div class='labkit-graded' style='opacity:0.75'>{html.escape(text)}</div>",
    }
