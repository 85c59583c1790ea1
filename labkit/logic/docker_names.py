"""Pure Docker vocabulary: labels, image references, container names, engine messages, archives.

Nothing here talks to the engine. The steps (:mod:`labkit.steps.docker`) and the client
boundary (:mod:`labkit.steps.docker.engine`) call these functions, so the rules students trip over
(an upper-case image name, a ``.zip`` handed to ``docker load``, "port is already allocated") are
tested on plain strings and bytes, without a daemon.

Labels
    Every container and image labkit creates carries ``org.labkit.created=true`` and
    ``org.labkit.step=<check id>``. Cleanup lists exactly the objects with the first label and never
    touches anything else, unlike the course's ``docker rmi $(docker images -q)``.

Image references
    :func:`parse_reference` follows the grammar of ``github.com/distribution/reference`` (the code
    the engine itself uses), so labkit rejects a bad name *before* a build has run for minutes.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import api_note, tr

__all__ = [
    "ARCHIVE_KINDS",
    "LABEL_CREATED",
    "LABEL_OBJECT",
    "LABEL_REF",
    "LABEL_STEP",
    "LABKIT_FILTER",
    "LOCAL_BASES",
    "NUKE_COMMANDS",
    "NUKE_PHRASE",
    "SIDECAR_SUFFIX",
    "DockerObject",
    "EngineProblem",
    "ImageReference",
    "archive_kind",
    "bare_id",
    "classify_engine_error",
    "container_object",
    "created_record",
    "image_object",
    "is_labkit_object",
    "labkit_labels",
    "looks_like_labkits_image",
    "make_sidecar",
    "own_tags",
    "parse_created_records",
    "parse_load_output",
    "parse_reference",
    "parse_sidecar",
    "port_owner_command",
    "select_labkit",
    "short_id",
    "suggest_reference",
    "validate_container_name",
    "validate_reference",
]

#: Label on every object labkit creates; the value is always "true".
LABEL_CREATED = "org.labkit.created"
#: Label naming the check id of the step that created the object (e.g. "ch2.docker.commit").
LABEL_STEP = "org.labkit.step"
#: ``image:<random hex>`` or ``container:<random hex>``: which object labkit labelled (see select_labkit).
LABEL_OBJECT = "org.labkit.object"
#: The image reference labkit tagged, so cleanup removes that tag and leaves tags a student added.
LABEL_REF = "org.labkit.ref"
#: The filter cleanup uses: ``client.containers.list(all=True, filters=LABKIT_FILTER)``.
LABKIT_FILTER: Mapping[str, str] = MappingProxyType({"label": f"{LABEL_CREATED}=true"})

#: Local base images labkit can build without a registry (kind → image reference).
LOCAL_BASES: Mapping[str, str] = MappingProxyType(
    {
        "busybox": "labkit/busybox:local",
        "debian": "labkit/debian:bookworm-local",
    }
)

#: Sidecar written beside a saved image: ``ailab.tar.gz`` → ``ailab.tar.gz.labkit.json``.
SIDECAR_SUFFIX = ".labkit.json"

#: What a student must type, exactly, before labkit deletes every container and image.
NUKE_PHRASE = "DELETE ALL"
#: The course's 2.4.6 commands, shown as TEXT only (labkit never runs a shell).
NUKE_COMMANDS: tuple[str, ...] = (
    "docker stop $(docker ps -aq)",
    "docker rm $(docker ps -aq)",
    "docker rmi -f $(docker images -q)",
)


def labkit_labels(step: str, *, kind: str = "image", ref: str = "", **extra: str) -> dict[str, str]:
    """The labels of an object created by check ``step``.

    ``kind`` is ``"image"`` or ``"container"``: it goes, with a fresh random id, into
    ``org.labkit.object`` (see :func:`select_labkit`: labels are *inherited* by images built FROM a
    labkit image and by containers run from one, and this is how cleanup tells them apart).
    ``ref`` is the image reference labkit tagged (cleanup removes that tag, not others a student
    added). Extra keys go under ``org.labkit.`` with ``_`` turned into ``-``.
    """
    if not step:
        raise InvalidField(
            "step",
            step,
            tr("为空", "is empty"),
            tr("给出检查 id，例如 ch2.docker.commit", "pass the check id, e.g. ch2.docker.commit"),
        )
    if kind not in ("image", "container"):
        raise InvalidField(
            "kind",
            kind,
            tr("不是对象种类", "is not an object kind"),
            tr("用 image 或 container", "use image or container"),
        )
    labels = {LABEL_CREATED: "true", LABEL_STEP: step, LABEL_OBJECT: f"{kind}:{uuid.uuid4().hex}"}
    if ref:
        labels[LABEL_REF] = ref
    for key, value in extra.items():
        labels[f"org.labkit.{key.replace('_', '-')}"] = str(value)
    return labels


def is_labkit_object(labels: Mapping[str, str] | None, kind: str | None = None) -> bool:
    """True when ``labels`` carry labkit's mark (and, with ``kind``, its object kind).

    Without ``kind`` this is only the inherited-or-not mark; :func:`select_labkit` decides
    ownership.
    """
    labels = labels or {}
    if labels.get(LABEL_CREATED) != "true":
        return False
    return kind is None or labels.get(LABEL_OBJECT, "").startswith(f"{kind}:")


@dataclass(frozen=True)
class DockerObject:
    """A container or image as cleanup sees it (filled from the engine's list / inspect data)."""

    kind: str  # "container" | "image"
    id: str
    names: tuple[str, ...] = ()  # container name, or image tags
    labels: Mapping[str, str] = field(default_factory=dict)
    layers: int = 0  # images: len(RootFS.Layers)
    created: str = ""  # ISO time (sorts chronologically)
    state: str = ""  # containers: running / exited / created

    def describe(self) -> str:
        name = ", ".join(self.names) if self.names else "<none>"
        extra = f" ({self.state})" if self.state else ""
        kind = tr("镜像", "image") if self.kind == "image" else tr("容器", "container")
        return f"{kind} {short_id(self.id)} {name}{extra}"


def created_record(object_id: str, labels: Mapping[str, str]) -> str:
    """One line of labkit's record of the objects it created (see :func:`select_labkit`)."""
    return json.dumps({"id": bare_id(object_id), "object": labels.get(LABEL_OBJECT, "")}) + "\n"


def parse_created_records(text: str) -> frozenset[tuple[str, str]]:
    """``(bare id, org.labkit.object)`` pairs of a record; a line that does not parse (a torn or
    hand-edited line) is skipped: it can only make cleanup keep an object, never remove one."""
    pairs: set[tuple[str, str]] = set()
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        oid, obj = item.get("id"), item.get("object")
        if isinstance(oid, str) and isinstance(obj, str) and oid and obj:
            pairs.add((bare_id(oid), obj))
    return frozenset(pairs)


def bare_id(object_id: str) -> str:
    """``sha256:0123…`` → ``0123…`` (containers have no prefix; images do)."""
    return object_id.split(":", 1)[-1]


def select_labkit(
    objects: Iterable[DockerObject], created: Collection[tuple[str, str]]
) -> tuple[list[DockerObject], list[DockerObject]]:
    """Split objects into (created by labkit, only *look* like it), the newest first.

    Labels are inherited: a container run from a labkit image carries the image's labels, and so
    does an image a student builds ``FROM labkit/busybox:local``, ``org.labkit.object`` included;
    once labkit's own image is gone nothing in the engine tells the two apart. So an object is
    labkit's only when it carries labkit's label for its own kind AND ``created`` (labkit's record
    of what it made, ``(bare id, org.labkit.object)`` pairs, see :func:`created_record`) names it
    with that very label. Everything else that carries the labels is a look-alike, never removed.
    """
    ours: list[DockerObject] = []
    lookalike: list[DockerObject] = []
    made = set(created)
    for obj in objects:
        if not is_labkit_object(obj.labels):
            continue
        if is_labkit_object(obj.labels, obj.kind) and (bare_id(obj.id), obj.labels[LABEL_OBJECT]) in made:
            ours.append(obj)
        else:
            lookalike.append(obj)
    # containers first (they pin images), then images newest first (children before parents)
    ours = [o for o in ours if o.kind == "container"] + sorted(
        (o for o in ours if o.kind == "image"), key=lambda o: o.created, reverse=True
    )
    return ours, lookalike


def looks_like_labkits_image(image: DockerObject, labelled: Iterable[DockerObject]) -> bool:
    """The weaker test, for decisions that delete nothing (moving labkit's own tag off an image):
    ``image`` carries labkit's image label and is the ancestor (fewest layers, then the oldest)
    among the ``labelled`` images sharing its ``org.labkit.object``. It is fooled once that
    ancestor is gone, which is why removal needs :func:`select_labkit`'s record."""
    if image.kind != "image" or not is_labkit_object(image.labels, "image"):
        return False
    mark = image.labels[LABEL_OBJECT]
    group = [o for o in labelled if o.kind == "image" and o.labels.get(LABEL_OBJECT) == mark] or [image]
    first = min(group, key=lambda o: (o.layers, o.created, o.id))
    return first.id == image.id


def container_object(attrs: Mapping[str, Any]) -> DockerObject:
    """A container as cleanup sees it, from its inspect / list data (``Container.attrs``)."""
    config = attrs.get("Config") or {}
    return DockerObject(
        kind="container",
        id=attrs.get("Id", ""),
        names=(str(attrs.get("Name", "")).lstrip("/"),),
        labels=dict(config.get("Labels") or {}),
        created=str(attrs.get("Created", "")),
        state=str((attrs.get("State") or {}).get("Status", "")),
    )


def image_object(attrs: Mapping[str, Any]) -> DockerObject:
    """An image as cleanup sees it, from its inspect data (``Image.attrs``)."""
    config = attrs.get("Config") or {}
    return DockerObject(
        kind="image",
        id=attrs.get("Id", ""),
        names=tuple(attrs.get("RepoTags") or ()),
        labels=dict(config.get("Labels") or {}),
        layers=len((attrs.get("RootFS") or {}).get("Layers") or []),
        created=str(attrs.get("Created", "")),
    )


def own_tags(obj: DockerObject) -> list[str]:
    """The tags labkit gave an image (its ``org.labkit.ref``), normalised as the engine lists them.

    Cleanup removes these and leaves a tag a student added (which then keeps the image)."""
    ref = obj.labels.get(LABEL_REF, "")
    if not ref:
        return list(obj.names)
    try:
        parsed = parse_reference(ref)
    except InvalidField:
        return []
    full = f"{parsed.name}:{parsed.tag_or_latest}"
    return [t for t in obj.names if t in (ref, full)]


def short_id(object_id: str) -> str:
    """``sha256:0123456789abcdef…`` → ``0123456789ab`` (the 12 characters ``docker ps`` shows)."""
    return object_id.split(":", 1)[-1][:12]


# ----------------------------------------------------------------------------------------------
# Image references (distribution/reference grammar)
# ----------------------------------------------------------------------------------------------
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*\Z")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?\Z")
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z")
_NAME_MAX = 255


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference; ``str()`` gives it back in canonical form."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def tag_or_latest(self) -> str:
        return self.tag or ("" if self.digest else "latest")

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _tag_problem(tag: str) -> str | None:
    if _TAG.match(tag):
        return None
    if not tag:
        return tr("标签为空（冒号后没有内容）", "has an empty tag (nothing after ':')")
    return tr(
        "标签 {t!r} 不合法（最多 128 个字符：字母、数字、_ . -，不能以 . 或 - 开头）",
        "has an invalid tag {t!r} (up to 128 letters, digits, _ . -; not starting with . or -)",
        t=tag,
    )


def _name_problem(name: str) -> str | None:
    if not name:
        return tr("没有镜像名", "has no repository name")
    if len(name) > _NAME_MAX:
        return tr("名字超过 {n} 个字符", "name is longer than {n} characters", n=_NAME_MAX)
    return None


def _path_problem(path: str) -> str | None:
    for comp in path.split("/"):
        if not comp:
            return tr("含有空的路径段（//）", "has an empty path component (//)")
        if not _PATH_COMPONENT.match(comp):
            if comp.lower() != comp and _PATH_COMPONENT.match(comp.lower()):
                return tr("仓库名必须全部小写", "repository name must be lowercase")
            return tr(
                "路径段 {c!r} 含有不允许的字符", "path component {c!r} has characters not allowed", c=comp
            )
    return None


def _split_domain(name: str) -> tuple[str, str]:
    """(registry domain, path): the first component is a domain when it has ``.``/``:`` or is
    ``localhost``.

    Docker's parser also takes an upper-case first component for a registry host, so
    ``Labkit/busybox`` would be pulled from a host called ``Labkit`` and fail as "does not exist";
    a registry host without a dot or a port is not something a student means, so such a name is
    read as a repository path and refused as not lower case.
    """
    first, sep, remainder = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost"):
        return first, remainder
    return "", name


def parse_reference(ref: str, field: str = "image") -> ImageReference:
    """Parse ``[domain/]path[:tag][@digest]`` or raise :class:`InvalidField` saying what is wrong.

    Rules (distribution/reference): path components are lower-case letters and digits joined by
    ``.``, ``_``, ``__`` or dashes; the first component is a registry domain when it contains ``.``
    or ``:`` or is ``localhost``; a tag is ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``; the name is at
    most 255 characters.
    """
    fix = tr(
        "只用小写字母、数字和 . _ - 分隔，例如 {s}",
        "use lower-case letters, digits and . _ - separators, e.g. {s}",
        s=suggest_reference(ref) if isinstance(ref, str) else "labkit/ailab:latest",
    )
    if not isinstance(ref, str) or not ref:
        raise InvalidField(field, ref, tr("为空", "is empty"), fix)
    if ref != ref.strip() or any(c.isspace() for c in ref):
        raise InvalidField(field, ref, tr("含有空白字符", "contains whitespace"), fix)
    rest, _, digest = ref.partition("@")
    if "@" in ref and not _DIGEST.match(digest):
        raise InvalidField(
            field,
            ref,
            tr("摘要不合法", "has an invalid digest"),
            tr("摘要形如 sha256:<64 位十六进制>", "a digest looks like sha256:<64 hex digits>"),
        )
    tag = ""
    if rest.rfind(":") > rest.rfind("/"):
        rest, _, tag = rest.rpartition(":")
        problem = _tag_problem(tag)
        if problem:
            raise InvalidField(field, ref, problem, fix)
    problem = _name_problem(rest)
    if problem:
        raise InvalidField(field, ref, problem, fix)
    domain, path = _split_domain(rest)
    if domain and not _DOMAIN.match(domain):
        raise InvalidField(
            field,
            ref,
            tr("仓库地址 {d!r} 不合法", "has an invalid registry host {d!r}", d=domain),
            tr(
                "仓库名必须小写；若要用私有仓库，写成 host[:port]/name",
                "repository names must be lower-case; for a private registry write host[:port]/name",
            ),
        )
    problem = _path_problem(path)
    if problem:
        raise InvalidField(field, ref, problem, fix)
    return ImageReference(domain, path, tag, digest)


def validate_reference(ref: str, field: str = "image") -> str:
    """Return ``ref`` unchanged if it is a valid image reference, else raise :class:`InvalidField`."""
    parse_reference(ref, field)
    return ref


def suggest_reference(ref: str) -> str:
    """A valid reference close to ``ref`` (lower-cased, bad characters turned into ``-``)."""
    text = (ref or "").strip()
    name, tag = text, ""
    if ":" in text.rsplit("/", 1)[-1]:
        name, tag = text.rsplit(":", 1)
    parts = []
    for comp in name.lower().split("/"):
        comp = re.sub(r"[^a-z0-9._-]+", "-", comp)
        comp = re.sub(r"[._-]*([._-])[._-]*", r"\1", comp).strip("._-")
        if comp:
            parts.append(comp)
    tag = re.sub(r"[^\w.-]+", "-", tag, flags=re.ASCII).lstrip(".-")[:128]
    out = "/".join(parts) or "labkit/image"
    return f"{out}:{tag or 'latest'}"


_CONTAINER_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")


def validate_container_name(name: str, field: str = "name") -> str:
    """Docker's rule ``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` (so at least two characters)."""
    if not isinstance(name, str) or not _CONTAINER_NAME.match(name):
        raise InvalidField(
            field,
            name,
            tr("不是合法的容器名", "is not a valid container name"),
            tr(
                "至少 2 个字符，以字母或数字开头，只含字母、数字、_ . -，例如 ailab",
                "at least 2 characters, starting with a letter or digit, then letters, digits, _ . -; "
                "e.g. ailab",
            ),
        )
    return name.lstrip("/")


# ----------------------------------------------------------------------------------------------
# Engine messages
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineProblem:
    """What an engine / SDK error text means.

    ``kind`` is one of ``not-running``, ``permission``, ``api-version``, ``port-in-use``,
    ``name-conflict``, ``in-use``, ``not-found``, ``no-space``, ``zip``, ``bad-archive``, ``timeout``,
    ``other``. ``subject`` is the object the message names (a port, a container or image name).
    """

    kind: str
    subject: str = ""
    holder: str = ""  # for a name conflict: the id of the container that already has the name


_PORT_PATTERNS = (
    re.compile(r"Bind for [^\s]*?:(\d+) failed: port is already allocated", re.I),
    re.compile(r"listen (?:tcp|udp)[46]? [^\s]*?:(\d+): bind: address already in use", re.I),
    re.compile(r":(\d+)\D{0,40}(?:port is already allocated|address already in use)", re.I),
)
_CONFLICT = re.compile(r'container name "/?([^"]+)" is already in use by container "([0-9a-f]+)"', re.I)
_NO_SUCH = re.compile(r"no such (?:image|container|object)\s*:\s*(\S+?)(?::?\s|:?$|\"|\))", re.I)
_NOT_FOUND_REF = re.compile(r"reference does not exist|not found: manifest unknown", re.I)
_IN_USE = re.compile(
    r"(?:image is being used by|image is referenced in multiple|unable to (?:delete|remove) "
    r"[0-9a-f]+ \(must (?:be forced|force)\)).*?(?:container ([0-9a-f]{6,}))?",
    re.I,
)


def classify_engine_error(message: str) -> EngineProblem:
    """Sort an engine / SDK message into an :class:`EngineProblem` (pure; tested on real texts)."""
    text = message or ""
    low = text.lower()
    if "is too new" in low or "is too old" in low or "minimum supported api version" in low:
        return EngineProblem("api-version")
    if "permission denied" in low and (
        "docker.sock" in low or "connection aborted" in low or "connect" in low
    ):
        return EngineProblem("permission")
    if any(
        s in low
        for s in (
            "connection refused",
            "cannot connect to the docker daemon",
            "is the docker daemon running",
            "filenotfounderror",
            "error while fetching server api version",
            "connection aborted",
        )
    ):
        return EngineProblem("not-running")
    for pat in _PORT_PATTERNS:
        m = pat.search(text)
        if m:
            return EngineProblem("port-in-use", m.group(1))
    if "port is already allocated" in low or "address already in use" in low:
        return EngineProblem("port-in-use")
    m = _CONFLICT.search(text)
    if m:
        return EngineProblem("name-conflict", m.group(1), m.group(2))
    if "no space left on device" in low or "enospc" in low:
        return EngineProblem("no-space")
    if "archive/tar: invalid tar header" in low or "unexpected eof" in low or "invalid tar header" in low:
        return EngineProblem("bad-archive")
    m = _NO_SUCH.search(text)
    if m:
        return EngineProblem("not-found", m.group(1).rstrip(".,;"))
    if _NOT_FOUND_REF.search(text) or "pull access denied" in low:
        return EngineProblem("not-found")
    m = _IN_USE.search(text)
    if m:
        return EngineProblem("in-use", holder=m.group(1) or "")
    if "timed out" in low or "read timeout" in low:
        return EngineProblem("timeout")
    if "permission denied" in low:
        return EngineProblem("permission")
    return EngineProblem("other")


def port_owner_command(port: int | str) -> list[str]:
    """argv that shows which process listens on ``port`` (``ss`` from iproute2, on every Debian)."""
    return ["ss", "-ltnp", f"sport = :{port}"]


# ----------------------------------------------------------------------------------------------
# Archives (save / load)
# ----------------------------------------------------------------------------------------------
#: Archive kinds by magic bytes; ``docker load`` takes tar and tar compressed with gzip/bzip2/xz.
ARCHIVE_KINDS: Mapping[str, bool] = MappingProxyType(
    {
        "tar": True,
        "gzip": True,
        "bzip2": True,
        "xz": True,
        "zstd": False,  # only engines ≥ 23 decompress zstd; 20.10 (Debian 12) does not
        "zip": False,
        "unknown": False,
    }
)


def archive_kind(head: bytes) -> str:
    """What the first bytes (≥ 512 for tar) of a file say it is: tar, gzip, zip, ... or unknown."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "unknown"


_LOADED = re.compile(r"^Loaded image(?: ID)?: (\S+)\s*$")


def parse_load_output(lines: Iterable[str | Mapping[str, Any]]) -> list[str]:
    """Names / ids ``docker load`` reports (``Loaded image: x:y``, ``Loaded image ID: sha256:…``).

    Accepts the CLI's text lines or the engine's JSON stream items (``{"stream": "Loaded …\\n"}``);
    raises :class:`ValueError` with the engine's message for an ``errorDetail`` item.
    """
    out: list[str] = []
    for item in lines:
        if isinstance(item, Mapping):
            if "errorDetail" in item or "error" in item:
                detail = item.get("errorDetail")
                said = detail.get("message") if isinstance(detail, Mapping) else detail
                raise ValueError(str(said or item.get("error") or item))
            text = str(item.get("stream", ""))
        elif isinstance(item, str):
            text = item
        else:
            continue  # neither a line nor a stream item: nothing docker load said
        for line in text.splitlines():
            m = _LOADED.match(line.strip())
            if m and m.group(1) not in out:
                out.append(m.group(1))
    return out


def make_sidecar(
    *, image_id: str, tags: Iterable[str], sha256: str, size: int, compression: str, archive: str
) -> str:
    """JSON written beside a saved image so another machine can verify file and image id."""
    payload = {
        "format": "labkit-image-archive/1",
        "archive": archive,
        "image_id": image_id,
        "tags": sorted(tags),
        "sha256": sha256,
        "size": size,
        "compression": compression,
    }
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def parse_sidecar(text: str, field: str = "sidecar") -> dict[str, Any]:
    """Read a sidecar back; raises :class:`InvalidField` when it is not one labkit wrote."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidField(field, text[:80], tr("不是 JSON", "is not JSON"), str(exc)) from exc
    need = ("image_id", "sha256", "size")
    if (
        not isinstance(data, dict)
        or data.get("format") != "labkit-image-archive/1"
        or any(k not in data for k in need)
    ):
        raise InvalidField(
            field,
            text[:80],
            tr("不是 labkit 写的镜像说明文件", "is not an image sidecar written by labkit"),
            tr("用「保存并压缩镜像」重新保存镜像", "save the image again with “Save and compress an image”")
            + api_note("SaveImage"),
        )
    return data
