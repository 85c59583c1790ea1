"""Course 2.4.6, cleaning up: only what labkit created (``ch2.docker.cleanup``), or, as the course
writes it, every container and image on the host (``ch2.docker.nuke``, behind a typed phrase).

What these remove depends on what exists when they run, so their plans cannot name ids: they show
the list probes and the exact shape of each removal (:data:`labkit.logic.docker.CLEANUP_TEMPLATES`,
:data:`~labkit.logic.docker.NUKE_TEMPLATES`); every removal that runs is recorded in that shape.
Cleanup reads the current state in ``run`` and, without consent, stops there and shows the list.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import ConsentRequired, LabkitError
from labkit.i18n import api_note, consent_hint, fill_hint, tr
from labkit.logic import docker as dk
from labkit.logic.docker_names import (
    LABEL_CREATED,
    LABEL_STEP,
    LABKIT_FILTER,
    NUKE_COMMANDS,
    NUKE_PHRASE,
    DockerObject,
    container_object,
    image_object,
    own_tags,
    select_labkit,
    short_id,
)
from labkit.steps.base import Plan, RunContext
from labkit.steps.docker.common import DockerStep, sdk_note
from labkit.steps.docker.engine import perform
from labkit.steps.docker.owned import created_by_labkit

__all__ = ["CleanupLabkit", "DeleteEverything", "list_labkit_objects"]


def list_labkit_objects(client: Any) -> tuple[list[DockerObject], list[DockerObject]]:
    """(objects labkit created, labelled objects labkit did NOT create) on this engine (reads)."""
    filters = dict(LABKIT_FILTER)
    objects = [container_object(c.attrs) for c in client.containers.list(all=True, filters=filters)]
    objects += [image_object(i.attrs) for i in client.images.list(all=True, filters=filters)]
    return select_labkit(objects, created_by_labkit())


def _template_notes(templates: tuple[tuple[str, ...], ...]) -> list[str]:
    return [tr("对每个对象执行：", "for each object: ") + shlex.join(t) for t in templates]


class CleanupLabkit(DockerStep):
    """Remove the containers and images labkit created (labels), after listing them; never others.

    ``run`` lists what exists now; only objects labkit's record says it created go, objects that
    only *inherited* labkit's labels stay (see :mod:`labkit.steps.docker.owned` and
    :func:`~labkit.logic.docker_names.select_labkit`). Nothing is removed without ``consent=True``:
    the run then stops with the list (a *skipped* check in ``auto``). ``step`` / ``ids`` narrow the
    set. Images lose only the tag labkit gave them: one a student added keeps the image alive.
    """

    check_id = "ch2.docker.cleanup"
    timeout = 300.0

    def __init__(
        self, *, consent: bool = False, step: str | None = None, ids: list[str] | None = None
    ) -> None:
        self.consent = consent
        self.step = step  # only objects created by this check id (None: all of labkit's)
        self.ids = list(ids) if ids is not None else None  # only these ids (full or short)

    def _targets(self, client: Any) -> tuple[list[DockerObject], list[DockerObject]]:
        ours, lookalike = list_labkit_objects(client)
        if self.step:
            ours = [o for o in ours if o.labels.get(LABEL_STEP) == self.step]
        if self.ids is not None:
            wanted = {short_id(i) for i in self.ids}
            ours = [o for o in ours if short_id(o.id) in wanted]
        return ours, lookalike

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "只删除带 {l}=true 标签、由 labkit 创建的容器和镜像（先容器后镜像）",
                "remove only containers and images labkit created (label {l}=true), containers first",
                l=LABEL_CREATED,
            ),
            notes=[
                tr(
                    "运行时先列出现有对象（下面的只读检查），要删除哪些在运行时才知道：",
                    "what exists is listed when it runs (the read-only checks below), so which objects "
                    "go is only known then:",
                ),
                *_template_notes(dk.CLEANUP_TEMPLATES),
                tr(
                    "镜像先去掉 labkit 打的标签；没有别的标签时才删除镜像本身",
                    "an image first loses the tag labkit gave it; the image itself goes only when no "
                    "other tag is left",
                ),
                tr(
                    "除非{c}，运行时只列出将删除的对象，什么也不删",
                    "unless you {c}, the run only lists what would be removed and removes nothing",
                    c=consent_hint("consent"),
                ),
                sdk_note(),
            ],
            probes=[dk.list_labelled_argv("container"), dk.list_labelled_argv("image")],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        with ctx.engine(tr("清理 labkit 的对象", "clean up labkit's objects")) as client:
            ours, lookalike = self._targets(client)
            listed = [o.describe() for o in ours]
            if ours and not self.consent:
                raise ConsentRequired(
                    _listing(ours, lookalike),
                    tr(
                        "核对清单后{c}，再运行一次",
                        "check the list, then {c} and run again",
                        c=consent_hint("consent"),
                    ),
                    keyword="consent",
                )
            removed: list[str] = []
            kept: list[str] = []
            for obj in ours:
                ctx.check_cancelled()
                remove = _remove_container if obj.kind == "container" else _remove_image
                done, text = remove(ctx, client, obj)
                (removed if done else kept).append(text)
        return {
            "planned": listed,
            "removed": removed,
            "kept": kept,
            "lookalike_kept": [o.describe() for o in lookalike],
            "removed_ids": [o.id for o in ours],
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        with ctx.engine(tr("检查清理结果", "check the cleanup")) as client:
            ours, _ = self._targets(client)
        left = [o.describe() for o in ours]
        ev = {**evidence, "left": left}
        if left and not evidence["kept"]:
            return CheckResult.failed(
                self.check_id,
                tr("仍有 labkit 的对象：{l}", "labkit objects remain: {l}", l="; ".join(left)),
                **ev,
            )
        msg = tr("删除了 {n} 个 labkit 对象", "removed {n} labkit objects", n=len(evidence["removed"]))
        if evidence["kept"]:
            msg += tr(
                "；保留 {k} 个（仍被使用或另有标签）",
                "; kept {k} (still in use or tagged otherwise)",
                k=len(evidence["kept"]),
            )
        if evidence["lookalike_kept"]:
            msg += tr(
                "；{k} 个继承了标签的对象未动",
                "; {k} objects that merely inherited the labels untouched",
                k=len(evidence["lookalike_kept"]),
            )
        return CheckResult.passed(self.check_id, msg, **ev)


def _listing(ours: list[DockerObject], lookalike: list[DockerObject]) -> str:
    """What the consent refusal shows: what would go, and what stays though it carries the labels."""
    text = tr(
        "删除 {n} 个对象：{l}",
        "remove {n} objects: {l}",
        n=len(ours),
        l="; ".join(o.describe() for o in ours),
    )
    if lookalike:
        text += tr(
            "（保留继承了标签、但不是 labkit 创建的：{k}）",
            " (kept: inherited the labels, not created by labkit: {k})",
            k="; ".join(o.describe() for o in lookalike),
        )
    return text


def _remove_container(ctx: RunContext, client: Any, obj: DockerObject) -> tuple[bool, str]:
    """``docker rm -f ID``: (removed?, what to report)."""
    outcome, why = _attempt(lambda: perform(ctx, client.containers.get(obj.id), dk.remove_container(obj.id)))
    return outcome != "refused", _report(obj, outcome, why)


def _remove_image(ctx: RunContext, client: Any, obj: DockerObject) -> tuple[bool, str]:
    """``docker rmi TAG`` per tag labkit gave, then ``docker rmi ID`` unless another tag keeps it."""
    own = own_tags(obj)
    others: list[str] = []

    def untag() -> None:
        others.extend(t for t in client.images.get(obj.id).tags if t not in own)
        for tag in own:
            perform(ctx, client, dk.remove_image(tag))

    outcome, why = _attempt(untag)
    if outcome != "removed":
        return outcome == "gone", _report(obj, outcome, why)
    if others:
        return False, obj.describe() + tr("（还有其他标签：{t}）", " (other tags: {t})", t=", ".join(others))
    outcome, why = _attempt(lambda: perform(ctx, client, dk.remove_image(obj.id)))
    return outcome != "refused", _report(obj, "removed" if outcome == "gone" else outcome, why)


def _attempt(action: Callable[[], Any]) -> tuple[str, str]:
    """Run one removal: (``removed`` | ``gone`` | ``refused``, the engine's words if refused).

    The engine's refusal is reported for this object and the cleanup goes on with the next."""
    import docker.errors

    try:
        action()
    except (docker.errors.APIError, LabkitError) as exc:  # raw: a read before the removal
        cause = exc.__cause__ if isinstance(exc, LabkitError) else exc
        if isinstance(cause, docker.errors.NotFound):
            return "gone", ""
        if isinstance(cause, docker.errors.APIError):
            return "refused", str(cause.explanation or cause)
        raise
    return "removed", ""


def _report(obj: DockerObject, outcome: str, why: str) -> str:
    if outcome == "gone":
        return obj.describe() + tr("（已不存在）", " (already gone)")
    return f"{obj.describe()}: {why}" if outcome == "refused" else obj.describe()


class DeleteEverything(DockerStep):
    """The course's 2.4.6 as written: stop and delete EVERY container and image on this host.

    Shown as text with a warning; runs (through the SDK, never a shell) only when ``confirm`` is
    exactly :data:`~labkit.logic.docker_names.NUKE_PHRASE`. Which objects exist is only known then:
    the plan shows the list probes and the shape of each removal (:data:`NUKE_TEMPLATES`).
    """

    check_id = "ch2.docker.nuke"
    timeout = 600.0

    def __init__(self, confirm: str = "") -> None:
        self.confirm = confirm

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "警告：删除本机上所有容器和镜像（不只是 labkit 的），包括正在运行的、别人的",
                "WARNING: deletes every container and image on this host (not only labkit's), running "
                "ones and other people's included",
            ),
            notes=[
                tr(
                    "课程 2.4.6 的命令（仅作文字展示，labkit 不会执行 shell）：",
                    "the course's 2.4.6 commands (text only, labkit never runs a shell):",
                ),
                *NUKE_COMMANDS,
                tr("labkit 实际执行的：", "what labkit runs instead:"),
                *_template_notes(dk.NUKE_TEMPLATES),
                tr(
                    "只删 labkit 创建的对象请用上面的「清理 labkit 创建的容器和镜像」{a}；"
                    "确实要全部删除，{f}",
                    "to remove only what labkit created use “Clean up what labkit created” above{a}; to "
                    "really delete everything, {f}",
                    a=api_note("CleanupLabkit"),
                    f=fill_hint("confirm", NUKE_PHRASE),
                ),
            ],
            probes=[["docker", "ps", "-a"], ["docker", "images"]],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if self.confirm != NUKE_PHRASE:
            raise ConsentRequired(
                tr("删除本机上所有容器和镜像", "delete every container and image on this host"),
                fill_hint("confirm", NUKE_PHRASE) + tr("（区分大小写）", " (case-sensitive)"),
            )
        removed_containers: list[str] = []
        removed_images: list[str] = []
        failed: list[str] = []
        with ctx.engine(tr("删除所有容器和镜像", "delete every container and image")) as client:
            for container in client.containers.list(all=True):
                ctx.check_cancelled()
                call = dk.remove_container(container.id)
                outcome, why = _attempt(lambda c=container, call=call: perform(ctx, c, call))
                if outcome == "refused":
                    failed.append(f"container {container.short_id}: {why}")
                else:
                    removed_containers.append(f"{container.short_id} {container.name}")
            for image in client.images.list():
                ctx.check_cancelled()
                call = dk.remove_image(image.id, force=True)
                outcome, why = _attempt(lambda call=call: perform(ctx, client, call))
                if outcome == "refused":
                    failed.append(f"image {short_id(image.id)}: {why}")
                elif outcome == "removed":
                    removed_images.append(f"{short_id(image.id)} {' '.join(image.tags)}")
        return {"removed_containers": removed_containers, "removed_images": removed_images, "failed": failed}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        with ctx.engine(tr("检查", "check")) as client:
            left = len(client.containers.list(all=True)) + len(client.images.list())
        ev = {**evidence, "left": left}
        if left:
            return CheckResult.failed(
                self.check_id, tr("还剩 {n} 个对象", "{n} objects remain", n=left), **ev
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "删除了 {c} 个容器和 {i} 个镜像",
                "deleted {c} containers and {i} images",
                c=len(evidence["removed_containers"]),
                i=len(evidence["removed_images"]),
            ),
            **ev,
        )
