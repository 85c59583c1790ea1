"""The graded exercise (course 3.1/3.2 HCI quiz): the pure judging, the step, and the widget driven
the way the frontend drives it (set a radio button's / checkbox's value, click Run)."""

from __future__ import annotations

import pytest

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import exercise as ex
from labkit.steps.exercise import AnswerExercise
from labkit.ui import session
from labkit.ui.exercise import exercise_panel
from tests.planmatch import execute_and_match


def right_answers(exercise_id: str = "ch3.hci") -> dict[str, str]:
    """The key of every question, as a student would write it (``"ABD"``)."""
    return {q.qid: "".join(sorted(q.correct)) for q in ex.exercise(exercise_id).questions}


def test_the_hci_exercise_follows_the_course_text():
    hci = ex.exercise("ch3.hci")
    assert hci.exercise_id == "ch3.hci" and len(hci.questions) == 5
    q1 = hci.question("q1")
    assert "计算、存储和网络" in q1.option(next(iter(q1.correct))).text
    multiple = [q for q in hci.questions if q.multiple]
    assert multiple and all(len(q.correct) > 1 for q in multiple)
    cons = hci.question("q4")
    assert "供应商锁定" in " ".join(cons.option(k).text for k in cons.correct)
    for q in hci.questions:  # every option explains itself
        assert all(o.explanation for o in q.options)
    with use_lang("en"):
        assert ex.exercise("ch3.hci").question("q1").prompt.startswith("What does HCI")


@pytest.mark.parametrize(
    ("given", "keys"),
    [
        ("B", ("B",)),
        ("a, c", ("A", "C")),
        ("dba", ("A", "B", "D")),
        (["C", "a"], ("A", "C")),
        ("", ()),
        (None, ()),
    ],
)
def test_answers_are_read_the_ways_students_write_them(given, keys):
    assert ex.normalize_choice(given) == keys


def test_judging_marks_each_question_and_explains_the_wrong_choices():
    hci = ex.exercise("ch3.hci")
    answers = right_answers()
    assert all(j.right for j in ex.judge(hci, answers))
    wrong_q2 = next(k for k in hci.question("q2").keys if k not in hci.question("q2").correct)
    answers.update(q2=wrong_q2, q3=answers["q3"][:-1], q5="")
    judged = {j.qid: j for j in ex.judge(hci, answers)}
    assert judged["q1"].right and not judged["q2"].right
    assert judged["q2"].why == (f"{wrong_q2}：{hci.question('q2').option(wrong_q2).explanation}",)
    assert judged["q3"].why == ("还漏选了 1 个正确选项",)  # no key revealed for what was left out
    assert judged["q5"].why == ("还没有作答",) and not judged["q5"].right


def test_bad_choices_name_the_question():
    hci = ex.exercise("ch3.hci")
    with pytest.raises(InvalidField) as bad:
        ex.validate_choices(hci, {"q1": "Z"})
    assert bad.value.field == "q1" and "没有这个选项" in str(bad.value)
    with pytest.raises(InvalidField) as two:
        ex.validate_choices(hci, {"q2": "AB"})
    assert two.value.field == "q2" and "单选题" in str(two.value)
    with pytest.raises(InvalidField) as unknown:
        ex.validate_choices(hci, {"q9": "A"})
    assert unknown.value.field == "q9"
    with pytest.raises(InvalidField):
        ex.exercise("ch9.nope")
    with pytest.raises(ValueError):  # a question bank mistake is caught when the question is made
        ex.Question("x", "?", (ex.Option("A", "a", "."),), frozenset("B"))


def test_the_step_passes_only_when_every_question_is_right_and_records_the_choices():
    result = AnswerExercise("ch3.hci", right_answers()).execute("auto")
    assert (result.check, result.status, result.mode) == ("ch3.hci.quiz", "pass", "run")
    ev = result.evidence
    assert ev["choices"]["q3"] == sorted(right_answers()["q3"]) and ev["right"] == ev["total"] == 5
    assert all(q["right"] for q in ev["questions"])
    assert "commands" not in ev  # no process ran

    answers = right_answers()
    answers["q1"] = next(k for k in "ABC" if k not in answers["q1"])
    failed = AnswerExercise("ch3.hci", answers).execute("auto")
    assert failed.status == "fail"
    assert failed.message.startswith("答对 4/5 题。第 1 题：")
    assert failed.evidence["questions"][0] == {
        "question": "q1",
        "chosen": [answers["q1"]],
        "right": False,
        "why": [
            f"{answers['q1']}：{ex.exercise('ch3.hci').question('q1').option(answers['q1']).explanation}"
        ],
    }


def test_an_unanswered_exercise_is_skipped_not_failed_and_plan_mode_judges_nothing():
    blank = AnswerExercise("ch3.hci", {"q1": "", "q3": ()}).execute("auto")
    assert blank.status == "skipped" and blank.evidence["skip_reason"] == "unanswered"
    assert "还没有作答" in blank.message
    planned = AnswerExercise("ch3.hci", right_answers()).execute("plan")
    assert planned.status == "skipped" and "questions" not in planned.evidence


def test_the_grader_gives_an_unanswered_exercise_no_points_and_says_why():
    from labkit.grading.classify import _judge_result
    from labkit.grading.manifest import CheckSpec

    blank = AnswerExercise("ch3.hci", {}).execute("auto")
    spec = CheckSpec("ch3.hci.quiz", 3, "0" * 64, None, 0)
    grade = _judge_result(spec, blank.to_payload(), 0)
    assert (grade.status, grade.reason) == ("fail", "not-answered")


def test_the_widget_records_what_was_clicked(tmp_path):
    work = session(tmp_path)
    panel = exercise_panel("ch3.hci")
    c = panel.controls()
    keys = right_answers()
    radio = c.fields["q1"].children[1]
    assert radio.value is None and [v for _label, v in radio.options] == ["A", "B", "C"]
    assert "第 1 题" in c.fields["q1"].children[0].value
    radio.value = keys["q1"]  # a click on a radio button
    assert c.fields["q1"].value == keys["q1"]
    boxes = c.fields["q3"].children[1:]
    for key, box in zip("ABCD", boxes, strict=True):  # clicks on checkboxes
        box.value = key in keys["q3"]
    assert c.fields["q3"].value == tuple(keys["q3"])
    panel.set(q2=keys["q2"], q4=keys["q4"], q5=keys["q5"].lower())  # the same from code
    assert [b.value for b in c.fields["q4"].children[1:]] == [k in keys["q4"] for k in "ABCD"]
    c.run.click()
    result = panel.wait(30)
    assert result is not None and result.status == "pass", result
    assert work.results["ch3.hci.quiz"] is result  # recorded for grading, like every panel

    c.fields["q2"].value = "AB"  # two options for a single-choice question: the plan names it
    assert "第 2 题" in c.plan.value and "单选题" in c.plan.value


def test_answers_written_in_the_notebook_preselect_the_widget_and_a_typo_names_the_question():
    keys = right_answers()
    panel = exercise_panel("ch3.hci", keys)
    assert panel.run("auto").status == "pass"
    c = panel.controls()
    assert c.fields["q1"].children[1].value == keys["q1"]
    with pytest.raises(InvalidField) as typo:
        exercise_panel("ch3.hci", {"q1": "Q"})
    assert typo.value.field == "q1"


def test_english_panel_and_messages(tmp_path):
    with use_lang("en"):
        panel = exercise_panel("ch3.hci", {"q1": "B"})
        result = panel.run("auto")
        assert result.status == "fail"
        assert result.message.startswith("0 of 5 right. question 1: B: no:")
        assert panel.title == "Hyper-converged infrastructure: pros and cons"


def test_the_plan_shows_that_nothing_runs_and_nothing_does():
    result, ran = execute_and_match(AnswerExercise("ch3.hci", right_answers()))
    assert result.status == "pass" and ran == []


def test_the_grader_judges_a_passing_exercise_again_from_its_recorded_choices():
    from labkit.checks import CheckResult
    from labkit.grading.classify import _judge_result
    from labkit.grading.manifest import CheckSpec

    spec = CheckSpec("ch3.hci.quiz", 3, "0" * 64, None, 0)
    honest = AnswerExercise("ch3.hci", right_answers()).execute("auto")
    assert ex.rejudge("ch3.hci.quiz", honest.evidence) is None
    assert _judge_result(spec, honest.to_payload(), 0).status == "pass"

    # a pass recorded by a copy of labkit whose key was edited: the choices say otherwise
    wrong = AnswerExercise("ch3.hci", {**right_answers(), "q2": "B"}).execute("auto")
    forged = CheckResult.passed("ch3.hci.quiz", "全部答对", **wrong.evidence)
    grade = _judge_result(spec, forged.to_payload(), 0)
    assert (grade.status, grade.reason) == ("fail", "rejudged-wrong")
    assert "第 2 题" in grade.message and '"q2": ["B"]' in grade.evidence["choices"]
    bare = CheckResult.passed("ch3.hci.quiz", "全部答对")  # no choices recorded at all
    assert _judge_result(spec, bare.to_payload(), 0).reason == "rejudged-wrong"
    junk = CheckResult.passed("ch3.hci.quiz", "ok", choices={"q1": "Z"})
    assert "无效" in (ex.rejudge("ch3.hci.quiz", junk.evidence) or "")
    assert ex.rejudge("ch3.nested.check", {}) is None  # other checks are not exercises


# -- chapter 4: layers (4.1) and service models (4.2) -------------------------------------------
def test_the_chapter4_exercises_follow_the_course_text():
    layers = ex.exercise("ch4.layers")
    placed = {q.qid: q.option(next(iter(q.correct))).text for q in layers.questions}
    assert placed == {
        "q1": "服务单元（基础设施）",  # PVE's VMs and containers
        "q2": "中间件（平台环境）",  # Jupyter: the seed's table names it there
        "q3": "应用层（应用软件）",  # Seafile: a cloud drive
        "q4": "数据层（数据信息）",  # a data API
    }
    models = ex.exercise("ch4.models")
    os_in_paas = models.question("q1")
    assert (
        "PaaS" in os_in_paas.prompt
        and os_in_paas.option(next(iter(os_in_paas.correct))).text == "云服务提供商"
    )
    assert models.question("q2").multiple and models.question("q2").correct == {"A", "B"}
    for exercise in (layers, models):
        for q in exercise.questions:
            assert all(o.explanation for o in q.options)
    with use_lang("en"):
        assert ex.exercise("ch4.models").question("q1").prompt.startswith("In a full-platform PaaS")


@pytest.mark.parametrize("exercise_id", ["ch4.layers", "ch4.models"])
def test_the_chapter4_exercises_are_graded_like_chapter3(exercise_id):
    right = right_answers(exercise_id)
    result, ran = execute_and_match(AnswerExercise(exercise_id, right))
    assert result.status == "pass" and ran == [] and result.check == f"{exercise_id}.quiz"
    assert ex.rejudge(f"{exercise_id}.quiz", result.evidence) is None
    wrong = dict(right, q1=next(k for k in "ABCD" if k not in right["q1"]))
    failed = exercise_panel(exercise_id, wrong).run("auto")
    assert failed.status == "fail" and failed.message.startswith(
        f"答对 {len(right) - 1}/{len(right)} 题。第 1 题："
    )
    forged = {**failed.evidence}
    assert "第 1 题" in (ex.rejudge(f"{exercise_id}.quiz", forged) or "")
