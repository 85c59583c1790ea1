"""Short graded exercises (course 3.1/3.2: hyper-convergence; chapter 4 reuses it for IaaS/PaaS/SaaS).

An :class:`Exercise` is a few :class:`Question` s, each single or multiple choice, with the set of
correct option keys and an explanation per option. :func:`validate_choices` checks what a student
chose (every question answered, known option keys, one key for a single-choice question) and names
the question of a mistake; :func:`judge` marks each question right or wrong and gives the
explanations of the options the student got wrong. Pure: no I/O.

The answer keys are part of the library (a student who reads its source can find them): a graded
exercise proves that the notebook recorded right answers, not who worked them out (README, "What
grading can and cannot prove").

The texts are built when asked (:func:`exercise`), so they follow the language chosen at that time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "EXERCISES",
    "Exercise",
    "Judgement",
    "Option",
    "Question",
    "exercise",
    "hci_exercise",
    "judge",
    "normalize_choice",
    "question_label",
    "quiz_check_id",
    "rejudge",
    "validate_choices",
]


@dataclass(frozen=True)
class Option:
    """One answer option: its key (``"A"``), text and why it is right or wrong."""

    key: str
    text: str
    explanation: str


@dataclass(frozen=True)
class Question:
    """One question; ``correct`` holds the keys of the right options (one for single choice)."""

    qid: str
    prompt: str
    options: tuple[Option, ...]
    correct: frozenset[str]
    multiple: bool = False

    def __post_init__(self) -> None:
        keys = [o.key for o in self.options]
        if len(set(keys)) != len(keys) or not self.correct <= set(keys):
            raise ValueError(f"question {self.qid}: option keys {keys}, correct {sorted(self.correct)}")
        if not self.multiple and len(self.correct) != 1:
            raise ValueError(f"question {self.qid}: a single-choice question has one correct option")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(o.key for o in self.options)

    def option(self, key: str) -> Option:
        return next(o for o in self.options if o.key == key)


@dataclass(frozen=True)
class Exercise:
    exercise_id: str
    title: str
    questions: tuple[Question, ...]

    def question(self, qid: str) -> Question:
        return next(q for q in self.questions if q.qid == qid)

    def number(self, qid: str) -> int:
        return next(i for i, q in enumerate(self.questions, 1) if q.qid == qid)


@dataclass(frozen=True)
class Judgement:
    """One question judged: the keys chosen, right or not, and what to read about the mistake."""

    qid: str
    number: int
    chosen: tuple[str, ...]
    right: bool
    #: Explanations of the options chosen wrongly (and, for multiple choice, how many right ones
    #: were left out), in the course language.
    why: tuple[str, ...] = ()

    def to_evidence(self) -> dict[str, Any]:
        return {"question": self.qid, "chosen": list(self.chosen), "right": self.right, "why": list(self.why)}


def normalize_choice(value: Any) -> tuple[str, ...]:
    """A widget's or a notebook's answer as sorted option keys: ``"B"``, ``"a, c"``, ``"AC"``, ``["A", "C"]``,
    ``None`` / ``""`` (not answered) → ``()``, ``("B",)``, ``("A", "C")``."""
    if value is None:
        return ()
    if isinstance(value, str):
        words = value.replace("，", ",").replace("、", ",").replace(",", " ").split()
        parts = [ch for w in words for ch in (w if w.isascii() and w.isalpha() else [w])]
    elif isinstance(value, (list, tuple, set, frozenset)):
        parts = [str(v) for v in value]
    else:
        parts = [str(value)]
    return tuple(sorted({p.strip().upper() for p in parts if p.strip()}))


def question_label(number: int) -> str:
    """How the panel and the messages name a question: "第 N 题"."""
    return tr("第 {n} 题", "question {n}", n=number)


def validate_choices(ex: Exercise, choices: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Every question's choice as option keys; :class:`InvalidField` naming the question when a
    choice is unknown, a question is not in the exercise, or a single-choice question got several.

    An unanswered question is ``()`` here (judged by :func:`judge` as not answered)."""
    unknown = sorted(set(choices) - {q.qid for q in ex.questions})
    if unknown:
        raise InvalidField(
            unknown[0],
            choices[unknown[0]],
            tr("不是本练习的题目", "is not a question of this exercise"),
            ", ".join(q.qid for q in ex.questions),
        )
    out: dict[str, tuple[str, ...]] = {}
    for q in ex.questions:
        keys = normalize_choice(choices.get(q.qid))
        bad = [k for k in keys if k not in q.keys]
        if bad:
            raise InvalidField(
                q.qid,
                choices.get(q.qid),
                tr("没有这个选项", "is not one of its options"),
                tr("从 {o} 中选", "choose from {o}", o=" / ".join(q.keys)),
            )
        if not q.multiple and len(keys) > 1:
            raise InvalidField(
                q.qid,
                choices.get(q.qid),
                tr("是单选题，只能选一项", "is single choice: choose one option"),
                tr("只保留一个选项", "keep one option"),
            )
        out[q.qid] = keys
    return out


def judge(ex: Exercise, choices: Mapping[str, Any]) -> list[Judgement]:
    """Each question right or wrong, with the explanation of every wrongly chosen option."""
    valid = validate_choices(ex, choices)
    out = []
    for n, q in enumerate(ex.questions, 1):
        chosen = valid[q.qid]
        right = bool(chosen) and set(chosen) == q.correct
        why: list[str] = []
        if not chosen:
            why.append(tr("还没有作答", "not answered yet"))
        for key in chosen:
            if key not in q.correct:
                why.append(tr("{k}：{e}", "{k}: {e}", k=key, e=q.option(key).explanation))
        missed = len(q.correct - set(chosen))
        if chosen and missed and q.multiple:
            why.append(tr("还漏选了 {m} 个正确选项", "{m} right option(s) left out", m=missed))
        out.append(Judgement(q.qid, n, chosen, right, tuple(why)))
    return out


# -- the course's exercises -----------------------------------------------------------------------
def _q(
    qid: str, prompt: str, options: Sequence[tuple[str, str, str]], correct: str, multiple: bool = False
) -> Question:
    return Question(
        qid,
        prompt,
        tuple(Option(k, t, e) for k, t, e in options),
        frozenset(correct),
        multiple,
    )


def _hci_converges() -> Question:
    """What HCI integrates (3.1)."""
    return _q(
        "q1",
        tr(
            "超融合基础设施（HCI）把哪些功能集成到同一批服务器上？",
            "What does HCI integrate on the same servers?",
        ),
        (
            (
                "A",
                tr("计算、存储和网络", "compute, storage and networking"),
                tr(
                    "正确，HCI 把计算、存储和网络集成在（通常是标准化 x86 的）服务器节点上，由软件统一管理",
                    "right: HCI integrates compute, storage and networking on (usually standard x86) "
                    "nodes, managed by one software layer",
                ),
            ),
            (
                "B",
                tr(
                    "只有存储：用专用磁盘阵列代替服务器",
                    "storage only: a dedicated disk array replaces servers",
                ),
                tr(
                    "不对，专用磁盘阵列正是传统架构的做法，HCI 用通用服务器里的磁盘组成存储",
                    "no: a dedicated array is the traditional design; HCI builds storage from the "
                    "disks in commodity servers",
                ),
            ),
            (
                "C",
                tr("电力供应和机房空调", "power supply and cooling"),
                tr(
                    "不对，这些是机房设施，不是 HCI 集成的 IT 功能",
                    "no: those are facilities, not the IT functions HCI integrates",
                ),
            ),
        ),
        "A",
    )


def _hci_scaling() -> Question:
    """How a system on HCI grows (3.1)."""
    return _q(
        "q2",
        tr(
            "在 HCI 平台上运行的分布式系统需要更多容量时，通常怎么扩展？",
            "How does a distributed system on an HCI platform usually grow?",
        ),
        (
            (
                "A",
                tr("添加更多 HCI 节点", "add more HCI nodes"),
                tr(
                    "正确，扩展就是加节点，每个节点同时带来计算和存储",
                    "right: it grows by adding nodes, each bringing compute and storage",
                ),
            ),
            (
                "B",
                tr("单独购买一台更大的存储阵列", "buy a bigger separate storage array"),
                tr(
                    "不对，这是传统三层架构的扩展方式",
                    "no: that is how the traditional three-tier design grows",
                ),
            ),
            (
                "C",
                tr(
                    "只能整体更换为更大的一台服务器",
                    "only by replacing everything with one bigger server",
                ),
                tr(
                    "不对，那是纵向扩展（scale up）；HCI 是横向扩展",
                    "no: that is scaling up; HCI scales out",
                ),
            ),
        ),
        "A",
    )


def _hci_pros() -> Question:
    """The pros (3.2)."""
    return _q(
        "q3",
        tr(
            "下面哪些是课程列出的超融合的“利”？（多选）",
            "Which are advantages of HCI listed in the course? (several)",
        ),
        (
            (
                "A",
                tr("简化管理：多种 IT 功能集成在一个平台上", "simpler management: one platform"),
                tr("这是优点：减少管理复杂性和培训需求", "an advantage: less complexity and training"),
            ),
            (
                "B",
                tr(
                    "使用通用硬件，降低硬件、能源和空间成本",
                    "commodity hardware lowers hardware, power and space costs",
                ),
                tr(
                    "这是优点：减少了特殊定制的存储和网络硬件",
                    "an advantage: less special storage and network hardware",
                ),
            ),
            (
                "C",
                tr("彻底消除单点故障", "removes single points of failure entirely"),
                tr(
                    "不对，功能依赖同一套硬件和软件平台，单点故障的风险反而可能增加",
                    "no: functions share one hardware and software platform, so the risk of a single "
                    "point of failure can grow",
                ),
            ),
            (
                "D",
                tr("可以方便地添加或移除节点，灵活扩展", "nodes can be added or removed to scale"),
                tr(
                    "这是优点：快速适应容量和性能的变化",
                    "an advantage: adapts quickly to capacity needs",
                ),
            ),
        ),
        "ABD",
        True,
    )


def _hci_cons() -> Question:
    """The cons (3.2)."""
    return _q(
        "q4",
        tr(
            "下面哪些是课程列出的超融合的“弊”？（多选）",
            "Which are drawbacks of HCI listed in the course? (several)",
        ),
        (
            (
                "A",
                tr("供应商锁定", "vendor lock-in"),
                tr(
                    "这是缺点：方案常来自单一供应商，限制未来的选择",
                    "a drawback: one vendor limits later choices",
                ),
            ),
            (
                "B",
                tr(
                    "存储和网络需求超出预期时的性能瓶颈",
                    "bottlenecks when storage and network needs exceed plans",
                ),
                tr(
                    "这是缺点：资源共用，某些工作负载会遇到瓶颈",
                    "a drawback: shared resources, some workloads hit bottlenecks",
                ),
            ),
            (
                "C",
                tr(
                    "升级和扩展受设备兼容性和产品路线图限制",
                    "upgrades limited by compatibility and the vendor's roadmap",
                ),
                tr(
                    "这是缺点：扩展虽方便，但受兼容性限制",
                    "a drawback: scaling is easy but bound by compatibility",
                ),
            ),
            (
                "D",
                tr("完全不需要专业的 IT 知识", "no IT expertise needed at all"),
                tr(
                    "不对，课程指出配置、维护和优化仍需要专业知识和技能",
                    "no: the course says configuring, maintaining and tuning still need expertise",
                ),
            ),
        ),
        "ABC",
        True,
    )


def _hci_fit() -> Question:
    """Whom HCI suits (3.2)."""
    return _q(
        "q5",
        tr(
            "课程认为哪类组织更适合采用超融合？",
            "Which organisations does the course find HCI suits best?",
        ),
        (
            (
                "A",
                tr(
                    "想简化 IT 运维并扩展基础设施的中小型企业",
                    "small and medium firms that want simpler operations",
                ),
                tr(
                    "正确，课程认为对它们超融合可能是理想方案",
                    "right: the course calls HCI a likely ideal fit for them",
                ),
            ),
            (
                "B",
                tr(
                    "对性能和定制有特殊要求的大型企业",
                    "large firms with special performance and customization needs",
                ),
                tr(
                    "不对，课程认为它们可能更适合传统数据中心架构",
                    "no: the course says traditional architectures may suit them better",
                ),
            ),
        ),
        "A",
    )


def hci_exercise() -> Exercise:
    """Course 3.1/3.2: what hyper-convergence converges, how it scales, its pros and cons."""
    return Exercise(
        "ch3.hci",
        tr("超融合（HCI）：利与弊", "Hyper-converged infrastructure: pros and cons"),
        (_hci_converges(), _hci_scaling(), _hci_pros(), _hci_cons(), _hci_fit()),
    )


def _ch4_layers() -> Exercise:
    from labkit.logic.exercise_cloud import layers_exercise

    return layers_exercise()


def _ch4_models() -> Exercise:
    from labkit.logic.exercise_cloud import models_exercise

    return models_exercise()


#: Exercise id → the function building it (read-only). Chapter 4's banks live in
#: :mod:`labkit.logic.exercise_cloud`.
EXERCISES: Mapping[str, Callable[[], Exercise]] = MappingProxyType(
    {"ch3.hci": hci_exercise, "ch4.layers": _ch4_layers, "ch4.models": _ch4_models}
)


def exercise(exercise_id: str) -> Exercise:
    """The course exercise ``exercise_id`` (in the current language); :class:`InvalidField` if unknown."""
    if exercise_id not in EXERCISES:
        raise InvalidField(
            "exercise_id",
            exercise_id,
            tr("不是课程里的练习", "is not an exercise of the course"),
            ", ".join(EXERCISES),
        )
    return EXERCISES[exercise_id]()


def quiz_check_id(exercise_id: str) -> str:
    """The check id of an exercise's graded result: ``ch3.hci`` → ``ch3.hci.quiz``."""
    return f"{exercise_id}.quiz"


def rejudge(check: str, evidence: Any) -> str | None:
    """Judge a *passing* exercise result again from the choices its evidence recorded, with this
    labkit's answer keys (the grader's): ``None`` when they are all right, else why not.

    It catches a pass whose recorded choices are wrong (a student's copy of labkit with an edited
    key, a hand-made result); a result forged together with right choices passes, as it would."""
    ids = {quiz_check_id(i): i for i in EXERCISES}
    if check not in ids:
        return None
    choices = evidence.get("choices") if isinstance(evidence, Mapping) else None
    if not isinstance(choices, Mapping):
        return tr("结果里没有记录所选的答案", "the result records no choices")
    ex = exercise(ids[check])
    try:
        judged = judge(ex, choices)
    except (InvalidField, TypeError) as exc:
        return tr("记录的答案无效：{e}", "the recorded choices are invalid: {e}", e=exc)
    wrong = [question_label(j.number) for j in judged if not j.right]
    if wrong:
        return tr(
            "按评分机器上的答案重新判断，这些题不对：{w}",
            "judged again with the grading machine's answer key, these are wrong: {w}",
            w=tr("、", ", ").join(wrong),
        )
    return None
