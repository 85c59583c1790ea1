"""A graded exercise as a panel: radio buttons (single choice) or checkboxes (multiple choice) per
question, the panel's Run button judges them (:class:`labkit.steps.exercise.AnswerExercise`) and the
result is recorded in the cell output like every other check.

Each question is a field of a :class:`~labkit.ui.panel.StepPanel` named by its question id and
labelled "第 N 题", so a message about a choice names the question on screen. ``answers`` (question
id → key or keys, e.g. ``{"q1": "A", "q3": "ABD"}``) pre-selects them: answers written into the
notebook survive "Restart Kernel and Run All", clicks in the widget do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labkit.i18n import tr
from labkit.logic import exercise as ex
from labkit.ui.panel import StepPanel, step_factory

__all__ = ["QuestionField", "exercise_panel", "question_widget"]


@dataclass(frozen=True)
class QuestionField:
    """The ``choices`` of a question field: it draws its own widget (see :class:`StepPanel`)."""

    question: ex.Question
    number: int

    def widget(self, default: Any, label: str) -> Any:
        return question_widget(self.question, label, default)


def question_widget(question: ex.Question, label: str, default: Any = None) -> Any:
    """The prompt and its options as one widget whose ``value`` is the answer: the chosen key
    (single choice; ``None`` when nothing is chosen) or the tuple of chosen keys (multiple choice).
    Setting ``value`` from code (``"B"``, ``"ABD"``, ``("A", "B")``) ticks the options."""
    import html

    import ipywidgets as w
    import traitlets

    class Question(w.VBox):
        value = traitlets.Any(None, allow_none=True)

    hint = tr("（多选）", " (choose all that apply)") if question.multiple else ""
    prompt = w.HTML(f"<b>{html.escape(label)}</b> {html.escape(question.prompt)}{html.escape(hint)}")
    labels = [f"{o.key}. {o.text}" for o in question.options]
    layout = w.Layout(width="auto", max_width="52em")
    chosen = ex.normalize_choice(default)
    if not question.multiple:
        radio = w.RadioButtons(
            options=list(zip(labels, question.keys, strict=True)),
            value=chosen[0] if chosen else None,
            layout=layout,
        )
        field = Question([prompt, radio], layout=w.Layout(margin="4px 0"))
        field.value = radio.value

        def to_radio(change: dict[str, Any]) -> None:
            keys = ex.normalize_choice(change["new"])
            if not keys or (len(keys) == 1 and keys[0] in question.keys):
                radio.value = keys[0] if keys else None  # else: left as it is, the plan names the mistake

        radio.observe(lambda c: setattr(field, "value", c["new"]), names="value")
        field.observe(to_radio, names="value")
    else:
        boxes = [
            w.Checkbox(value=k in chosen, description=t, indent=False, layout=layout)
            for k, t in zip(question.keys, labels, strict=True)
        ]
        field = Question([prompt, *boxes], layout=w.Layout(margin="4px 0"))
        field.value = chosen

        def from_boxes(_change: dict[str, Any]) -> None:
            picked = tuple(k for k, b in zip(question.keys, boxes, strict=True) if b.value)
            if picked != ex.normalize_choice(field.value):
                field.value = picked

        def to_boxes(change: dict[str, Any]) -> None:
            wanted = set(ex.normalize_choice(change["new"]))
            for key, box in zip(question.keys, boxes, strict=True):
                box.value = key in wanted

        for box in boxes:
            box.observe(from_boxes, names="value")
        field.observe(to_boxes, names="value")
    field.add_class("labkit-question")
    return field


def exercise_panel(exercise_id: str, answers: Mapping[str, Any] | None = None) -> StepPanel:
    """The panel of the course exercise ``exercise_id`` (e.g. ``ch3.hci``), check ``<id>.quiz``."""
    from labkit.steps.exercise import AnswerExercise

    exercise = ex.exercise(exercise_id)
    given = dict(answers or {})
    ex.validate_choices(exercise, given)  # a typo in the notebook's answers names the question now

    def build(**choices: Any) -> AnswerExercise:
        return AnswerExercise(exercise_id, choices)

    fields: dict[str, tuple[Any, ...]] = {}
    for n, q in enumerate(exercise.questions, 1):
        chosen = ex.normalize_choice(given.get(q.qid))
        default: Any = chosen if q.multiple else (chosen[0] if chosen else None)
        fields[q.qid] = (default, ex.question_label(n), QuestionField(q, n))
    return StepPanel(
        exercise.title,
        step_factory(AnswerExercise, build=build),
        fields,
        console=False,
        check_id=ex.quiz_check_id(exercise_id),
    )
