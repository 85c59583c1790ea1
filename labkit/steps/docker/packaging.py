"""Course 2.4.5, packaging an image: ``docker commit`` → ``docker save | gzip`` → ``docker load``.

``ch2.docker.commit`` / ``ch2.docker.save`` / ``ch2.docker.load``; the fourth step, ``docker run``,
is :class:`labkit.steps.docker.run.RunImage`. Saves are streamed, hashed and written atomically with
a sidecar (``.labkit.json``) so a load on another machine can prove the image id is unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import threading
from pathlib import Path
from typing import Any

from labkit import files
from labkit.checks import CheckResult
from labkit.errors import Cancelled, ConsentRequired, InvalidField, LabkitError
from labkit.i18n import api_note, consent_hint, field_name, tr
from labkit.logic import docker as dk
from labkit.logic.docker_names import (
    LABKIT_FILTER,
    LOCAL_BASES,
    SIDECAR_SUFFIX,
    archive_kind,
    container_object,
    image_object,
    looks_like_labkits_image,
    make_sidecar,
    parse_load_output,
    parse_sidecar,
    select_labkit,
    short_id,
    validate_container_name,
    validate_reference,
)
from labkit.logic.sizes import human_size
from labkit.steps.base import Plan, RunContext, refuse_replacing
from labkit.steps.docker.common import DockerStep, find_image, image_info, sdk_note
from labkit.steps.docker.engine import call_errors, perform, translate
from labkit.steps.docker.local_base import ensure_local_base, missing_base_note
from labkit.steps.docker.owned import created_by_labkit
from labkit.steps.docker.streams import CHUNK, HashingReader, pipelined, save_image_stream

__all__ = ["NOTE_LABEL", "CommitContainer", "LoadImage", "SaveImage"]

#: The label a committed image carries: the SHA-256 of the note written into it.
NOTE_LABEL = "org.labkit.note-sha256"


def _owned_by_labkit(client: Any, image: Any) -> bool:
    """Whether ``image`` is one labkit created (not merely one that inherited the labels): its
    labels and labkit's record of what it created (:mod:`labkit.steps.docker.owned`) say so."""
    ours, _ = select_labkit([image_object(image.attrs)], created_by_labkit())
    return bool(ours)


def _may_move_tag_off(client: Any, image: Any) -> bool:
    """Moving labkit's tag deletes nothing, so an image labkit made before it kept a record (its
    labels, and no labelled ancestor) counts too; removal always needs the record."""
    if _owned_by_labkit(client, image):
        return True
    labelled = client.images.list(all=True, filters=dict(LABKIT_FILTER))
    return looks_like_labkits_image(image_object(image.attrs), [image_object(i.attrs) for i in labelled])


class CommitContainer(DockerStep):
    """``docker commit``: change a labelled container, commit it to a labelled image."""

    check_id = "ch2.docker.commit"
    timeout = 180.0

    def __init__(
        self,
        image: str = "labkit/ailab:latest",
        *,
        base: str = LOCAL_BASES["busybox"],
        container_name: str = "labkit-ailab",
        note: str = "committed by labkit",
        overwrite: bool = False,
        keep_container: bool = False,
    ) -> None:
        self.image = image
        self.base = base
        self.container_name = container_name
        self.note = note
        self.overwrite = overwrite
        self.keep_container = keep_container

    def _validate(self) -> None:
        validate_reference(self.image, "image")
        validate_reference(self.base, "base")
        validate_container_name(self.container_name, "container_name")
        if not isinstance(self.note, str) or "\n" in self.note or "\0" in self.note:
            raise InvalidField(
                "note",
                self.note,
                tr("不是一行文字", "is not one line of text"),
                tr("去掉换行", "remove line breaks"),
            )

    # -- the engine calls, built once for plan and run ----------------------------------------
    def _start_call(self) -> dk.DockerCall:
        return dk.run_container(
            self.base, ["sleep", "3600"], step=self.check_id, name=self.container_name, detach=True
        )

    def _exec_call(self) -> dk.DockerCall:
        # the note travels in the environment: any text is safe, nothing is quoted into the shell line
        command = ["sh", "-c", 'printf "%s\\n" "$LABKIT_NOTE" > /labkit-note']
        return dk.exec_in(self.container_name, command, environment={"LABKIT_NOTE": self.note})

    def _note_sha256(self) -> str:
        return hashlib.sha256(self.note.encode("utf-8")).hexdigest()

    def _commit_call(self) -> dk.DockerCall:
        message = tr("labkit 第 2.4.5 节", "labkit section 2.4.5")
        extra = {"note_sha256": self._note_sha256()}  # → label NOTE_LABEL: the note, recognisable
        return dk.commit(self.container_name, self.image, step=self.check_id, message=message, extra=extra)

    def plan(self) -> Plan:
        self._validate()
        remove = dk.remove_container(self.container_name)
        return Plan(
            step=self.check_id,
            reason=tr(
                "从 {b} 启动容器 {c}，在里面写入 /labkit-note，再提交为镜像 {i}",
                "start container {c} from {b}, write /labkit-note inside, commit it as image {i}",
                b=self.base,
                c=self.container_name,
                i=self.image,
            ),
            commands=[
                self._start_call().cli,
                self._exec_call().cli,
                self._commit_call().cli,
                *([] if self.keep_container else [remove.cli]),
            ],
            notes=[
                missing_base_note(self.base, step=self.check_id),
                tr(
                    "若有之前 labkit 留下的同名容器，先用 {c} 删除它；别人的同名容器不动（报错并说明）",
                    "a container of that name left by an earlier labkit run is removed first with "
                    "{c}; anyone else's is left alone (the run stops and says so)",
                    c=shlex.join(remove.argv),
                ),
                tr(
                    "{i} 已指向一个不是 labkit 创建的镜像时，要{c}才会改用这个名字",
                    "if {i} already names an image labkit did not create, you must {c}",
                    i=self.image,
                    c=consent_hint("overwrite"),
                ),
                tr(
                    "{i} 已经是 labkit 在 {b} 上提交的、便条相同的镜像时（标签 {l}），只核实、不再提交",
                    "if {i} already is labkit's commit of the same note on top of {b} (label {l}), it is "
                    "verified, not committed again",
                    i=self.image,
                    b=self.base,
                    l=NOTE_LABEL,
                ),
                sdk_note(),
            ],
            probes=[
                dk.inspect_image_argv(self.image),
                dk.list_labelled_argv("image"),
                dk.inspect_image_argv(self.base),
                ["docker", "container", "inspect", self.container_name],
            ],
        )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        """``image`` is already labkit's commit of this note on top of exactly this ``base``."""
        self._validate()
        argv = dk.inspect_image_argv(self.image)
        with ctx.engine(tr("检查镜像", "inspect the image"), argv=argv) as client:
            image, base = find_image(client, self.image), find_image(client, self.base)
            if image is None or base is None or not _owned_by_labkit(client, image):
                return None
            layers = (image.attrs.get("RootFS") or {}).get("Layers") or []
            base_layers = (base.attrs.get("RootFS") or {}).get("Layers") or []
            info = image_info(image)
        same_base = len(layers) == len(base_layers) + 1 and layers[:-1] == base_layers
        if not same_base or info["labels"].get(NOTE_LABEL) != self._note_sha256():
            return None  # run() commits again: the tag is labkit's own, nothing is lost
        return {
            **info,
            "ref": self.image,
            "base": self.base,
            "base_layers": len(base_layers),
            "container_id": None,
            "container_name": self.container_name,
            "container_kept": False,
            "note": self.note,
            "verified_by": tr(
                "docker image inspect：{i} 由 labkit 提交，在 {b} 上正好多一层，便条的 sha256 相同",
                "docker image inspect: {i} was committed by labkit, one layer on top of {b}, same "
                "note sha256",
                i=short_id(info["image_id"]),
                b=self.base,
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._validate()
        with ctx.engine(tr("提交容器", "commit a container")) as client:
            self._refuse_foreign_tag(client)
            ensure_local_base(client, ctx, self.base, step=self.check_id)
            base_layers = image_info(client.images.get(self.base))["layers"]
            self._remove_stale_container(ctx, client)
            container, image = self._commit(ctx, client)
            info = image_info(image)
        return {
            **info,
            "ref": self.image,
            "base": self.base,
            "base_layers": base_layers,
            "container_id": container.id,
            "container_name": self.container_name,
            "container_kept": self.keep_container,
            "note": self.note,
        }

    def _refuse_foreign_tag(self, client: Any) -> None:
        existing = find_image(client, self.image)
        if existing is None or self.overwrite or _may_move_tag_off(client, existing):
            return
        raise ConsentRequired(
            tr(
                "把标签 {i} 从一个不是 labkit 创建的镜像上移走",
                "move tag {i} off an image labkit did not create",
                i=self.image,
            ),
            tr(
                "换一个「{f}」，或{c}",
                "choose another {f}, or {c}",
                f=field_name("image"),
                c=consent_hint("overwrite"),
            ),
            keyword="overwrite",
        )

    def _remove_stale_container(self, ctx: RunContext, client: Any) -> None:
        """A container of that name left by an earlier labkit run is ours to remove; others are not."""
        import docker.errors

        try:
            old = client.containers.get(self.container_name)
        except docker.errors.NotFound:
            return
        ours, _ = select_labkit([container_object(old.attrs)], created_by_labkit())
        if ours:
            perform(ctx, old, dk.remove_container(self.container_name))
        # else: leave it; create() fails with a name conflict that names it and says how to remove

    def _commit(self, ctx: RunContext, client: Any) -> tuple[Any, Any]:
        """Start the container, write the note, commit; the container goes unless kept."""
        start = self._start_call()
        container = perform(ctx, client, start)
        try:
            with call_errors(start):
                container.start()
            code, out = perform(ctx, container, self._exec_call())
            if code != 0:
                raise InvalidField(
                    "note",
                    self.note,
                    tr("写入失败：", "could not be written: ") + out.decode(errors="replace"),
                    tr("检查容器里有 sh", "check the image has sh"),
                )
            image = perform(ctx, container, self._commit_call())
            image.reload()
        finally:
            if not self.keep_container:
                with contextlib.suppress(Exception):
                    perform(ctx, container, dk.remove_container(self.container_name))
        return container, image

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        argv = dk.inspect_image_argv(self.image)
        with ctx.engine(tr("检查镜像", "inspect the image"), argv=argv) as client:
            image = client.images.get(self.image)
            info = image_info(image)
            owned = _owned_by_labkit(client, image)
        ev = {**evidence, "inspected": info, "owned_by_labkit": owned}
        if info["image_id"] != evidence["image_id"]:
            return CheckResult.failed(
                self.check_id, tr("{i} 指向了别的镜像", "{i} points at another image", i=self.image), **ev
            )
        if info["layers"] != evidence["base_layers"] + 1 or not owned:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "提交的镜像应比基础镜像多一层且带 labkit 标签",
                    "the committed image should have one layer more than its base and labkit's labels",
                ),
                **ev,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "容器已提交为 {i}（{d}，{n} 层，比 {b} 多一层）",
                "container committed as {i} ({d}, {n} layers, one more than {b})",
                i=self.image,
                d=short_id(info["image_id"]),
                n=info["layers"],
                b=self.base,
            ),
            **ev,
        )


class SaveImage(DockerStep):
    """``docker save IMAGE | gzip > FILE``: streamed, hashed, atomic, with a sidecar for the id."""

    check_id = "ch2.docker.save"

    def __init__(
        self,
        image: str = "labkit/ailab:latest",
        path: str | os.PathLike[str] = "ailab-image.tar.gz",
        *,
        compression: str = "auto",
        level: int = dk.GZIP_LEVEL,
        overwrite: bool = False,
        chunk_size: int = CHUNK,
    ) -> None:
        self.image = image
        self.path = str(path)
        self.compression = compression
        self.level = level
        self.overwrite = overwrite
        self.chunk_size = chunk_size

    def _call(self) -> dk.DockerCall:
        validate_reference(self.image, "image")
        dk.validate_gzip_level(self.level)
        comp = dk.compression_for(self.path, self.compression)
        return dk.save(self.image, self.path, compression=comp, chunk_size=self.chunk_size)

    def plan(self) -> Plan:
        call = self._call()
        comp = dk.compression_for(self.path, self.compression)
        text = dk.save_pipeline_text(self.image, self.path, compression=comp, level=self.level)
        return Plan(
            step=self.check_id,
            reason=tr("把镜像 {i} 保存为文件 {p}", "save image {i} to file {p}", i=self.image, p=self.path),
            commands=[call.cli],
            files={
                self.path + SIDECAR_SUFFIX: tr(
                    "镜像 id、标签、sha256（JSON）", "image id, tags, sha256 (JSON)"
                )
            },
            notes=[
                tr("等价命令：", "equivalent command: ") + text,
                tr(
                    "边读边压缩边计算 sha256，先写临时文件再改名，不会留下半个文件",
                    "compressed and hashed while streaming, written to a temporary file then renamed (never "
                    "half a file)",
                ),
                tr(
                    "文件已存在时先核对：sha256 与说明文件一致、镜像 id 与 {i} 现在的相同，"
                    "就直接通过、不重写；不同则拒绝，除非{c}",
                    "an existing file is verified first: its sha256 matching its sidecar and the image id "
                    "being what {i} is now, it passes without writing again; a different one is refused "
                    "unless you {c}",
                    i=self.image,
                    c=consent_hint("overwrite"),
                ),
                sdk_note(),
            ],
            probes=[dk.inspect_image_argv(self.image)],
        )

    def _existing(self, ctx: RunContext) -> tuple[dict[str, Any], list[str]]:
        """Compare the file already at ``path`` (and its sidecar) with what saving would write:
        the same image id as ``image`` has now, the sidecar's sha256, the compression. Facts for the
        evidence, and what differs (empty: the same)."""
        comp = dk.compression_for(self.path, self.compression)
        sidecar = self.path + SIDECAR_SUFFIX
        facts: dict[str, Any] = {"path": os.path.abspath(self.path), "sidecar": sidecar, "compression": comp}
        try:
            side = parse_sidecar(Path(sidecar).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, InvalidField):
            return facts, [
                tr("没有可读的说明文件 {s}", "no readable sidecar {s}", s=os.path.basename(sidecar))
            ]
        with open(self.path, "rb") as fh:
            kind = archive_kind(fh.read(512))
            fh.seek(0)
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        argv = dk.inspect_image_argv(self.image)
        with ctx.engine(tr("检查镜像", "inspect the image"), argv=argv) as client:
            image = find_image(client, self.image)
            info = image_info(image) if image is not None else None
        facts.update(sha256=digest, file_bytes=os.path.getsize(self.path), archive_kind=kind)
        differences = []
        if digest != side["sha256"]:
            differences.append(
                tr("文件的 sha256 与说明文件记录的不同", "the file's sha256 differs from its sidecar's")
            )
        if kind != ("gzip" if comp == "gzip" else "tar"):
            differences.append(
                tr("文件是 {k}，这一步写 {c}", "the file is {k}, this step writes {c}", k=kind, c=comp)
            )
        if info is None:
            differences.append(tr("本机没有镜像 {i}", "there is no image {i} here", i=self.image))
        elif info["image_id"] != side["image_id"]:
            differences.append(
                tr(
                    "文件里是镜像 {a}，{i} 现在是 {b}",
                    "the file holds image {a}, {i} is now {b}",
                    a=short_id(side["image_id"]),
                    i=self.image,
                    b=short_id(info["image_id"]),
                )
            )
        else:
            facts.update(info)
        return facts, differences

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        self._call()  # validates
        if self.overwrite or not os.path.isfile(self.path):
            return None
        facts, differences = self._existing(ctx)
        if differences:
            return None  # run() refuses it, naming the differences
        return {
            **facts,
            "verified_by": tr(
                "文件 sha256 与说明文件一致，镜像 id {i} 与 {r} 现在的相同",
                "the file's sha256 matches its sidecar; image id {i} is what {r} is now",
                i=short_id(facts["image_id"]),
                r=self.image,
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        call = self._call()
        comp = dk.compression_for(self.path, self.compression)
        sidecar = self.path + SIDECAR_SUFFIX
        if os.path.isfile(self.path) and not self.overwrite:
            _, differences = self._existing(ctx)
            raise refuse_replacing(self.path, differences or [tr("已存在", "exists already")])
        files.refuse_overwrite(self.path, self.overwrite, "path")
        files.refuse_overwrite(sidecar, self.overwrite, "path")
        with ctx.engine(call.action, argv=call.cli, timeout=120) as client:
            image = client.images.get(self.image)
            info = image_info(image)
            directory = os.path.dirname(os.path.abspath(self.path))
            files.ensure_free_space(
                directory, info["size"] + (64 << 20), what=tr("保存镜像", "save the image")
            )
            chunks = perform(ctx, image, call, named=dk.save_named(self.image, info["tags"]))
            stream = pipelined(chunks, threading.Event(), batch=self.chunk_size)
            with (
                contextlib.closing(stream),
                files.atomic_target(self.path, overwrite=self.overwrite, field="path") as tmp,
                open(tmp, "wb") as out,
            ):
                result = save_image_stream(
                    stream,
                    out,
                    compression=comp,
                    level=self.level,
                    total=info["size"],
                    on_progress=ctx.progress,
                    check_cancel=ctx.check_cancelled,
                )
        ctx.progress(1.0)
        text = make_sidecar(
            image_id=info["image_id"],
            tags=info["tags"],
            sha256=result["sha256"],
            size=result["file_bytes"],
            compression=comp,
            archive=os.path.basename(self.path),
        )
        files.write_atomic(sidecar, text, overwrite=self.overwrite)
        return {**info, **result, "path": os.path.abspath(self.path), "sidecar": sidecar, "compression": comp}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        path = evidence["path"]
        size = os.path.getsize(path) if os.path.isfile(path) else -1
        with open(path, "rb") as fh:
            kind = archive_kind(fh.read(512))
        side = parse_sidecar(Path(evidence["sidecar"]).read_text(encoding="utf-8"))
        expected_kind = "gzip" if evidence["compression"] == "gzip" else "tar"
        ev = {**evidence, "file_size": size, "archive_kind": kind}
        ok = size == evidence["file_bytes"] and kind == expected_kind and side["sha256"] == evidence["sha256"]
        if not ok:
            return CheckResult.failed(
                self.check_id,
                tr("文件与写入时记录的不一致", "the file does not match what was written"),
                **ev,
            )
        if evidence.get("tar_bytes"):  # known when this run wrote the file
            share = tr("，{r:.0%} 的 tar 大小", ", {r:.0%} of the tar size", r=size / evidence["tar_bytes"])
        else:
            share = ""
        return CheckResult.passed(
            self.check_id,
            tr(
                "已保存 {p}（{s}{t}），sha256 {h}…",
                "saved {p} ({s}{t}), sha256 {h}…",
                p=path,
                s=human_size(size),
                t=share,
                h=evidence["sha256"][:16],
            ),
            **ev,
        )


class LoadImage(DockerStep):
    """``docker load < FILE``: streamed (gzip accepted as the engine does), verified by the sidecar."""

    check_id = "ch2.docker.load"

    def __init__(
        self,
        path: str | os.PathLike[str] = "ailab-image.tar.gz",
        *,
        expect_id: str | None = None,
        chunk_size: int = CHUNK,
    ) -> None:
        self.path = str(path)
        self.expect_id = expect_id
        self.chunk_size = chunk_size

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr("从文件 {p} 导入镜像", "load the image from file {p}", p=self.path),
            commands=[dk.load(self.path).cli],
            notes=[
                tr(
                    "docker load 直接接受 .tar 和 .tar.gz；.zip 不行（要先解压）",
                    "docker load takes .tar and .tar.gz directly; not .zip (unzip it first)",
                ),
                tr(
                    "若有 {s} 说明文件，则核对 sha256 和镜像 id；"
                    "随后读取（docker image inspect）每个导入的镜像",
                    "with a {s} sidecar, the sha256 and the image id are verified; each loaded image is "
                    "then read back (docker image inspect)",
                    s=SIDECAR_SUFFIX,
                ),
                tr(
                    "说明文件里的镜像 id 已以同样的标签在本机（文件 sha256 也一致）时，"
                    "docker load 不会改变任何东西：只核实、不再导入。"
                    "想看一次真正的导入，先删除该镜像（docker rmi）或换一台机器",
                    "when the sidecar's image id is already here under the same tags (and the file's "
                    "sha256 matches), docker load would change nothing: it is verified, not loaded again. "
                    "To watch a real load, remove the image first (docker rmi) or use another machine",
                ),
                sdk_note(),
            ],
            probes=[dk.inspect_image_argv(t) for t in (self._sidecar() or {}).get("tags") or []],
        )

    def _sidecar(self) -> dict[str, Any] | None:
        """The sidecar saved with the file (``None``: none, or not one labkit wrote)."""
        try:
            return parse_sidecar(Path(self.path + SIDECAR_SUFFIX).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, InvalidField):
            return None

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        """The file's image (its sidecar's id, the file's sha256 matching) is here under its tags."""
        kind = self._sniff()
        side = self._sidecar()
        if side is None:
            return None  # only loading tells which image the file holds
        with open(self.path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        tags = [str(t) for t in side.get("tags") or []]
        if digest != side["sha256"] or not tags or (self.expect_id and self.expect_id != side["image_id"]):
            return None
        images = []
        with ctx.engine(tr("检查镜像", "inspect the image"), argv=dk.inspect_image_argv(tags[0])) as client:
            for ref in tags:
                image = find_image(client, ref)
                if image is None or image.id != side["image_id"]:
                    return None
                images.append({"ref": ref, **image_info(image)})
        return {
            "path": os.path.abspath(self.path),
            "archive_kind": kind,
            "file_bytes": os.path.getsize(self.path),
            "sha256": digest,
            "loaded": tags,
            "images": images,
            "sidecar": side,
            "verified_by": tr(
                "文件 sha256 与说明文件一致；{r} 已是镜像 {i}",
                "the file's sha256 matches its sidecar; {r} already is image {i}",
                r=", ".join(tags),
                i=short_id(side["image_id"]),
            ),
        }

    def _sniff(self) -> str:
        if not os.path.isfile(self.path):
            raise InvalidField(
                "path",
                self.path,
                tr("不存在", "does not exist"),
                tr(
                    "检查路径，或先用上面的「保存并压缩镜像」保存",
                    "check the path, or save it first with “Save and compress an image” above",
                )
                + api_note("SaveImage"),
            )
        with open(self.path, "rb") as fh:
            kind = archive_kind(fh.read(512))
        refusal = dk.load_refusal(self.path, kind)
        if refusal is not None:
            raise refusal
        return kind

    def run(self, ctx: RunContext) -> dict[str, Any]:
        kind = self._sniff()
        sidecar_path = self.path + SIDECAR_SUFFIX
        sidecar = None
        if os.path.isfile(sidecar_path):
            sidecar = parse_sidecar(Path(sidecar_path).read_text(encoding="utf-8"))
        reader = HashingReader(self.path, self.chunk_size, ctx.progress, ctx.cancel)
        call = dk.load(self.path)
        try:
            with ctx.engine(call.action, argv=call.cli, timeout=300) as client:
                refs = self._load(ctx, client, call, reader)
                ctx.check_cancelled()
                images = [{"ref": ref, **image_info(client.images.get(ref))} for ref in refs]
        except LabkitError:
            if ctx.cancel.is_set():  # a cut-off upload makes the engine complain: say why it was cut
                raise Cancelled(call.cli, None) from None
            raise
        if reader.read != reader.size:
            raise Cancelled(call.cli, None)
        ctx.progress(1.0)
        return {
            "path": os.path.abspath(self.path),
            "archive_kind": kind,
            "file_bytes": reader.size,
            "sha256": reader.sha.hexdigest(),
            "loaded": refs,
            "images": images,
            "sidecar": sidecar,
        }

    def _load(self, ctx: RunContext, client: Any, call: dk.DockerCall, reader: HashingReader) -> list[str]:
        # read + hash in a thread while the upload blocks on the engine (cf. SaveImage)
        body = pipelined(iter(reader), threading.Event(), batch=self.chunk_size)
        with contextlib.closing(body):
            stream = perform(ctx, client, call, data=body)  # quiet: no progress-bar JSON
            try:
                return parse_load_output(stream)
            except ValueError as exc:
                raise translate(exc, call.action, argv=call.cli) from exc

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        images = evidence["images"]
        if not images:
            return CheckResult.failed(
                self.check_id, tr("docker load 没有报告任何镜像", "docker load reported no image"), **evidence
            )
        ids = sorted({i["image_id"] for i in images})
        side = evidence["sidecar"] or {}
        expect = self.expect_id or side.get("image_id")
        ev = {**evidence, "image_ids": ids, "expected_id": expect}
        if side and side.get("sha256") != evidence["sha256"]:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "文件 sha256 与保存时不同：文件在复制中损坏或被替换",
                    "the file's sha256 differs from the one "
                    "recorded at save time: damaged or replaced in transit",
                ),
                **ev,
            )
        if expect and expect not in ids:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "加载后的镜像 id {a} 与保存前 {b} 不同",
                    "image id after load {a} differs from before save {b}",
                    a=", ".join(short_id(i) for i in ids),
                    b=short_id(expect),
                ),
                **ev,
            )
        same = (
            tr("与保存前的 id 相同", "same id as before saving")
            if expect
            else tr("（没有说明文件可核对 id）", "(no sidecar to compare the id)")
        )
        parts = {"r": ", ".join(evidence["loaded"]), "i": ", ".join(short_id(i) for i in ids), "s": same}
        if evidence.get("already_present"):
            message = tr("本机已有 {r}（{i}），{s}", "{r} is here ({i}), {s}", **parts)
        else:
            message = tr("已加载 {r}（{i}），{s}", "loaded {r} ({i}), {s}", **parts)
        return CheckResult.passed(self.check_id, message, **ev)
