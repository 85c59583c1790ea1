"""A short graded exercise as a step (course 3.1/3.2 ``ch3.hci.quiz``; chapter 4 reuses it).

:class:`AnswerExercise` runs no process and touches no file: it judges the student's choices
(:mod:`labkit.logic.exercise`) and records them with each question's result as evidence, so the
grader can judge the same choices again. It passes when every question is right; the message names
the wrong questions and why. With nothing answered at all the result is *skipped*
(``skip_reason="unanswered"``): a notebook run before the student answered is not a failed check,
and the grader gives it no points ("not answered").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labkit.checks import CheckResult
from labkit.i18n import tr
from labkit.logic import exercise as ex
from labkit.steps.base import Plan, RunContext, Step

__all__ = ["AnswerExercise"]


class AnswerExercise(Step):
    """Judge ``choices`` (question id → option key(s)) of the course exercise ``exercise_id``."""

    check_id = "exercise.quiz"
    timeout = 10.0

    def __init__(self, exercise_id: str, choices: Mapping[str, Any] | None = None) -> None:
        self.exercise = ex.exercise(exercise_id)
        self.check_id = ex.quiz_check_id(exercise_id)
        self.choices = ex.validate_choices(self.exercise, dict(choices or {}))

    def plan(self) -> Plan:
        answered = sum(1 for keys in self.choices.values() if keys)
        return Plan(
            self.check_id,
            tr(
                "判断你对「{t}」{n} 道题的作答（已答 {a} 题）；不运行任何命令",
                "judge your answers to the {n} questions of “{t}” ({a} answered); no command runs",
                t=self.exercise.title,
                n=len(self.exercise.questions),
                a=answered,
            ),
            notes=[
                tr(
                    "每题答对才算通过；答错的题会说明原因，可以改了再检查",
                    "every question must be right to pass; a wrong one is explained: change it, check again",
                )
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        judged = ex.judge(self.exercise, self.choices)
        return {
            "exercise": self.exercise.exercise_id,
            "choices": {q: list(keys) for q, keys in self.choices.items()},
            "questions": [j.to_evidence() for j in judged],
            "right": sum(1 for j in judged if j.right),
            "total": len(judged),
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        questions = evidence["questions"]
        if not any(q["chosen"] for q in questions):
            return CheckResult.skipped(
                self.check_id,
                tr(
                    "还没有作答：在面板里为每道题选择答案，再点「运行」",
                    "not answered yet: choose an answer for each question in the panel, then click Run",
                ),
                skip_reason="unanswered",
                **evidence,
            )
        wrong = [(n, q) for n, q in enumerate(questions, 1) if not q["right"]]
        if not wrong:
            return CheckResult.passed(
                self.check_id,
                tr(
                    "{t}：{k} 道题全部答对",
                    "{t}: all {k} questions right",
                    t=self.exercise.title,
                    k=len(questions),
                ),
                **evidence,
            )
        details = tr("；", "; ").join(
            tr("{q}：{w}", "{q}: {w}", q=ex.question_label(n), w=tr("，", ", ").join(q["why"]))
            for n, q in wrong
        )
        return CheckResult.failed(
            self.check_id,
            tr(
                "答对 {r}/{k} 题。{d}",
                "{r} of {k} right. {d}",
                r=evidence["right"],
                k=evidence["total"],
                d=details,
            ),
            **evidence,
        )
