"""A CUDA + PyTorch Dockerfile generator and a Dockerfile linter (pure).

:func:`build_dockerfile` writes the image the course's 2.4.7 wanted, corrected: a matched CUDA /
wheel pair, the pinned pip route, one clean apt layer, no pip cache, a non-root user and build ARGs
a test can swap (its docstring gives the reason for each). :func:`lint_dockerfile` parses a
Dockerfile with ``dockerfile-parse`` and reports :class:`~labkit.logic.cuda_images.Finding`
objects; the course's Dockerfile yields ``apt-no-recommends``, ``apt-lists``, ``pip-cache``,
``pip-nightly``, ``cuda-mismatch``, ``root-user`` and ``debian-frontend-env``; a generated
Dockerfile yields none.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from labkit.errors import InvalidField
from labkit.findings import Finding
from labkit.i18n import tr
from labkit.logic import cuda_images as ci
from labkit.logic.docker_names import LABEL_CREATED, LABEL_STEP, validate_reference

__all__ = [
    "BUILD_ARGS",
    "CA_DIR",
    "CHECK_ID",
    "LABEL_CUDA",
    "LABEL_INDEX",
    "LABEL_PACKAGES",
    "LABEL_TORCH",
    "VERSION_FILE",
    "ImageSpec",
    "build_dockerfile",
    "lint_dockerfile",
]

CHECK_ID = "ch2.docker.build"
#: Where the build records the installed version of ``TORCH_DIST``.
VERSION_FILE = "/opt/labkit/torch-version"
#: Directory in the build context whose ``*.crt`` files become trusted CAs (``extra_ca_certs``).
CA_DIR = "labkit-ca"
#: The build arguments a generated Dockerfile declares.
BUILD_ARGS = ("BASE_IMAGE", "TORCH_INDEX_URL", "TORCH_PACKAGES", "TORCH_DIST", "USER_UID")

LABEL_TORCH = "org.labkit.torch-requested"
LABEL_CUDA = "org.labkit.cuda-requested"
LABEL_INDEX = "org.labkit.wheel-index"
LABEL_PACKAGES = "org.labkit.torch-packages"

_DEFAULT = ci.matched_pair()


# ----------------------------------------------------------------------------------------------
# Validation of spec fields (each value ends up in a Dockerfile: refuse what would break it)
# ----------------------------------------------------------------------------------------------
# Requirements are expanded unquoted in a RUN line (several packages): no <, >, *, [ ] (shell
# redirections and globs), so only ==, ~= and != pins.
_REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:(?:==|~=|!=)[A-Za-z0-9.+!_-]+)?")
_DIST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_URL = re.compile(r"(?:https?|file)://[A-Za-z0-9._~:/?#@!&+,;=%-]+\Z")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,30}\Z")
_APT = re.compile(r"[a-z0-9][a-z0-9+.-]+\Z")
_LABEL_KEY = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\Z")
_PATH = re.compile(r"/[A-Za-z0-9._/-]*\Z")
_SAFE_TEXT = re.compile(r"[^\x00-\x1f\x7f]*\Z")


def _check(ok: bool, field_: str, value: object, problem: str, fix: str) -> None:
    if not ok:
        raise InvalidField(field_, value, problem, fix)


def _validate_packages(text: str, field_: str = "torch_packages") -> str:
    words = text.split()
    _check(
        bool(words) and all(_REQUIREMENT.fullmatch(w) for w in words),
        field_,
        text,
        tr("不是以空格分隔的 pip 包要求", "is not a space-separated list of pip requirements"),
        tr("例如 torch==2.9.1 或 six==1.16.0", "e.g. torch==2.9.1 or six==1.16.0"),
    )
    return " ".join(words)


@dataclass(frozen=True)
class ImageSpec:
    """What to put in the image. Defaults are the matched pair of :func:`cuda_images.matched_pair`."""

    base_image: str = _DEFAULT.image.tag
    torch_index_url: str = _DEFAULT.index.url
    torch_packages: str = _DEFAULT.packages
    torch_dist: str = "torch"
    #: The pair recorded in labels ("what was asked"); the check compares it with what got in.
    torch_version: str = _DEFAULT.torch
    cuda: str = _DEFAULT.index.cuda
    wheel_index: str = _DEFAULT.index.name
    apt_packages: tuple[str, ...] = ("python3", "python3-pip", "ca-certificates")
    #: Non-root user to run as (``None``: stay root, which the linter warns about).
    user: str | None = "lab"
    uid: int = 1000
    workdir: str = "/workspace"
    cmd: tuple[str, ...] = ("/bin/bash",)
    #: Copy ``labkit-ca/*.crt`` from the build context into the trust store. Off by default; for
    #: networks with TLS inspection, where pip in the container otherwise fails with
    #: CERTIFICATE_VERIFY_FAILED.
    extra_ca_certs: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    title: str = "labkit CUDA + PyTorch"

    @classmethod
    def for_pair(cls, pair: ci.Pairing, **kw: Any) -> ImageSpec:
        """A spec for a :class:`~labkit.logic.cuda_images.Pairing` (other fields by keyword)."""
        return cls(
            base_image=pair.image.tag,
            torch_index_url=pair.index.url,
            torch_packages=pair.packages,
            torch_version=pair.torch,
            cuda=pair.index.cuda,
            wheel_index=pair.index.name,
            **kw,
        )

    def validate(self) -> ImageSpec:
        """Raise :class:`InvalidField` for a value that would break or inject into the Dockerfile."""
        for rule in _SPEC_RULES:
            rule(self)
        return self


def _spec_sources(spec: ImageSpec) -> None:
    """Base image, wheel index URL, packages and the distribution whose version is recorded."""
    validate_reference(spec.base_image, "base_image")
    _check(
        bool(_URL.match(spec.torch_index_url)),
        "torch_index_url",
        spec.torch_index_url,
        tr("不是 http(s) 地址", "is not an http(s) URL"),
        tr("例如 {u}", "e.g. {u}", u=_DEFAULT.index.url),
    )
    _validate_packages(spec.torch_packages)
    _check(
        bool(_DIST.match(spec.torch_dist)),
        "torch_dist",
        spec.torch_dist,
        tr("不是 pip 包名", "is not a pip distribution name"),
        tr("例如 torch", "e.g. torch"),
    )


def _spec_versions(spec: ImageSpec) -> None:
    """The recorded pair (torch version, CUDA, index name): they end up in labels."""
    for name, value in (("torch_version", spec.torch_version), ("cuda", spec.cuda)):
        _check(
            bool(re.fullmatch(r"[0-9][0-9A-Za-z.+-]{0,40}", str(value))),
            name,
            value,
            tr("不是版本号", "is not a version"),
            tr("例如 2.9.1 / 12.8", "e.g. 2.9.1 / 12.8"),
        )
    _check(
        bool(re.fullmatch(r"[a-z0-9.]{1,20}", spec.wheel_index)),
        "wheel_index",
        spec.wheel_index,
        tr("不是索引名", "is not an index name"),
        tr("例如 cu128", "e.g. cu128"),
    )


def _spec_apt(spec: ImageSpec) -> None:
    _check(
        bool(spec.apt_packages) and all(_APT.match(p) for p in spec.apt_packages),
        "apt_packages",
        list(spec.apt_packages),
        tr("含有不是 Debian 包名的项", "has an entry that is not a Debian package name"),
        tr("例如 python3 python3-pip", "e.g. python3 python3-pip"),
    )
    _check(
        "python3" in spec.apt_packages and "python3-pip" in spec.apt_packages,
        "apt_packages",
        list(spec.apt_packages),
        tr("缺少 python3 或 python3-pip", "lacks python3 or python3-pip"),
        tr("pip 安装和版本记录都需要它们", "the pip install and the version record need both"),
    )


def _spec_user(spec: ImageSpec) -> None:
    if spec.user is None:
        return
    _check(
        bool(_USER.match(spec.user)) and spec.user != "root",
        "user",
        spec.user,
        tr("不是合法的非 root 用户名", "is not a valid non-root user name"),
        tr("小写字母开头，例如 lab；要以 root 运行就传 user=None", "lower-case, e.g. lab; None for root"),
    )
    _check(
        isinstance(spec.uid, int) and not isinstance(spec.uid, bool) and 1 <= spec.uid <= 60000,
        "uid",
        spec.uid,
        tr("不在 1..60000 之间", "is not within 1..60000"),
        tr("通常与宿主机用户一致，例如 1000", "usually the host user's uid, e.g. 1000"),
    )


def _spec_runtime(spec: ImageSpec) -> None:
    """WORKDIR and CMD."""
    _check(
        bool(_PATH.match(spec.workdir)) and "//" not in spec.workdir,
        "workdir",
        spec.workdir,
        tr("不是不含空格的绝对路径", "is not an absolute path without spaces"),
        tr("例如 /workspace", "e.g. /workspace"),
    )
    _check(
        bool(spec.cmd) and all(isinstance(c, str) and c and _SAFE_TEXT.match(c) for c in spec.cmd),
        "cmd",
        list(spec.cmd),
        tr(
            "必须是非空字符串列表（不含控制字符）",
            "must be a list of non-empty strings without control characters",
        ),
        tr('例如 ["/bin/bash"]', 'e.g. ["/bin/bash"]'),
    )


def _spec_labels(spec: ImageSpec) -> None:
    for key, value in spec.labels.items():
        _check(
            isinstance(key, str) and bool(_LABEL_KEY.match(key)),
            "labels",
            key,
            tr("不是合法的标签名", "is not a valid label key"),
            tr("小写字母、数字、. 和 -，例如 org.example.course", "lower-case, digits, . and -"),
        )
        _check(
            isinstance(value, str) and bool(_SAFE_TEXT.match(value)),
            "labels",
            value,
            tr("标签值不能含换行等控制字符", "label values cannot contain newlines or control characters"),
            tr("用一行文字", "use a single line"),
        )
    _check(
        bool(_SAFE_TEXT.match(spec.title)),
        "title",
        spec.title,
        tr("不能含控制字符", "cannot contain control characters"),
        "",
    )


#: The spec's rules, in the order a student fills the form in.
_SPEC_RULES = (_spec_sources, _spec_versions, _spec_apt, _spec_user, _spec_runtime, _spec_labels)


def _quote(value: str) -> str:
    """A double-quoted Dockerfile word: ``\\``, ``"`` and ``$`` escaped (no variable expansion)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _label_lines(spec: ImageSpec) -> list[str]:
    labels: dict[str, str] = {
        LABEL_CREATED: "true",
        LABEL_STEP: CHECK_ID,
        LABEL_TORCH: spec.torch_version,
        LABEL_CUDA: spec.cuda,
        LABEL_INDEX: spec.wheel_index,
        "org.opencontainers.image.title": spec.title,
        "org.opencontainers.image.description": (
            f"PyTorch {spec.torch_version} ({spec.wheel_index}) on CUDA {spec.cuda}, pip route"
        ),
        "org.opencontainers.image.vendor": "labkit",
        **dict(spec.labels),
    }
    lines = [f"{k}={_quote(v)}" for k, v in labels.items()]
    # Expanded at build time, so the image says what was really built from (a swapped base, a stand-in).
    lines.append('org.opencontainers.image.base.name="${BASE_IMAGE}"')
    lines.append(f'{LABEL_PACKAGES}="${{TORCH_PACKAGES}}"')
    return lines


def _head(spec: ImageSpec) -> list[str]:
    """Comments, the swappable build ARGs, FROM and the labels."""
    return [
        f"# Generated by labkit ({CHECK_ID}): PyTorch {spec.torch_version} from {spec.wheel_index} "
        f"on CUDA {spec.cuda}, the pip route.",
        "# No '# syntax=' line: BuildKit would try to pull the Dockerfile frontend from a registry.",
        "# Tests swap BASE_IMAGE for a local base and TORCH_PACKAGES for a tiny stand-in (--build-arg).",
        f"ARG BASE_IMAGE={spec.base_image}",
        "FROM ${BASE_IMAGE}",
        "",
        "ARG BASE_IMAGE",
        f"ARG TORCH_INDEX_URL={spec.torch_index_url}",
        f'ARG TORCH_PACKAGES="{spec.torch_packages}"',
        f"ARG TORCH_DIST={spec.torch_dist}",
        f"ARG USER_UID={spec.uid}",
        "# Only for this build's apt-get; an ENV would stay set in every container.",
        "ARG DEBIAN_FRONTEND=noninteractive",
        "",
        "LABEL " + " \\\n      ".join(_label_lines(spec)),
        "",
    ]


def _system_packages(spec: ImageSpec) -> list[str]:
    """Optional extra CAs, then one apt layer: update + install + clean."""
    out: list[str] = []
    ca_steps = ""
    if spec.extra_ca_certs:
        out += [
            "# Extra CA certificates for networks with TLS inspection (off by default).",
            f"COPY {CA_DIR}/ /usr/local/share/ca-certificates/labkit/",
        ]
        ca_steps = " \\\n && update-ca-certificates"
    return [
        *out,
        "# One layer: update + install + clean, so the package lists are never stale nor kept.",
        "RUN apt-get update \\",
        f" && apt-get install -y --no-install-recommends {' '.join(spec.apt_packages)}{ca_steps} \\",
        " && rm -rf /var/lib/apt/lists/*",
        "",
    ]


def _pip_layer() -> list[str]:
    """The pip route, the cache not kept, and the installed version recorded.

    PEP 668: Debian 12 and Ubuntu 24.04 mark their system Python "externally managed", so a plain
    ``pip install`` stops with ``externally-managed-environment``. Ubuntu 22.04 (pip 22.0) has no
    marker and its pip has no ``--break-system-packages`` option at all (it fails with "no such
    option"). The generated file therefore sets ``PIP_BREAK_SYSTEM_PACKAGES=1`` for the one pip
    command: pip ≥ 23.0.1 (the pip of every PEP 668 distro) honours it, older pip ignores unknown
    ``PIP_*`` variables, so the same Dockerfile builds on either base — which matters because
    ``BASE_IMAGE`` is swappable. Inside a single-purpose container there is no system tool the pip
    packages could break.
    """
    return [
        "# PIP_BREAK_SYSTEM_PACKAGES: PEP 668 bases (Debian 12, Ubuntu 24.04) need it, older pip ignores it.",
        "# The installed version is recorded so the image can be checked against what was asked.",
        "RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir"
        ' --index-url "${TORCH_INDEX_URL}" ${TORCH_PACKAGES} \\',
        f" && mkdir -p {VERSION_FILE.rsplit('/', 1)[0]} \\",
        ' && python3 -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"'
        f' "${{TORCH_DIST}}" > {VERSION_FILE}',
        "",
    ]


def _user_and_cmd(spec: ImageSpec) -> list[str]:
    out: list[str] = []
    if spec.user is not None:
        out += [
            "# A non-root user. --non-unique: ubuntu:24.04 already has user 'ubuntu' with uid 1000.",
            f'RUN useradd --create-home --non-unique --uid "${{USER_UID}}" --shell /bin/sh {spec.user} \\',
            f" && mkdir -p {spec.workdir} && chown {spec.user} {spec.workdir}",
            f"USER {spec.user}",
        ]
    return [*out, f"WORKDIR {spec.workdir}", "CMD " + json.dumps(list(spec.cmd), ensure_ascii=False), ""]


def build_dockerfile(spec: ImageSpec | None = None) -> str:
    """The Dockerfile text for ``spec`` (validated first).

    What it corrects in the course's 2.4.7, and why:

    * the base image and the wheel index are a *matched* pair from :mod:`labkit.logic.cuda_images`
      (the course pairs a CUDA 12.5 base with cu124 nightly wheels);
    * the pip route, pinned (the course's conda route no longer exists for PyTorch);
    * one ``apt-get update && apt-get install -y --no-install-recommends … && rm -rf
      /var/lib/apt/lists/*`` layer: an ``update`` in its own layer is cached and later installs use
      stale lists; recommends and lists only add megabytes;
    * ``pip install --no-cache-dir``: the wheel cache would stay in the layer (torch: ~2.5 GB twice);
    * an optional non-root user (default ``lab``): a container process running as root is root on
      the host's files it can reach;
    * no ``# syntax=`` line: with BuildKit it makes the build pull ``docker/dockerfile`` from a
      registry, which fails offline (measured here, see FINDINGS);
    * everything a test must swap is a build ``ARG``: ``BASE_IMAGE`` (a local base instead of
      ``nvidia/cuda``, since no registry is reachable), ``TORCH_INDEX_URL``, ``TORCH_PACKAGES`` (a
      tiny stand-in instead of 2.5 GB of torch) and ``TORCH_DIST`` (whose version to record);
    * the installed version is recorded at build time in ``/opt/labkit/torch-version`` (read with
      ``importlib.metadata``, so a stand-in package works the same), so the check can compare what
      was asked with what got in;
    * ``PIP_BREAK_SYSTEM_PACKAGES=1`` on the pip command, for PEP 668 bases (see :func:`_pip_layer`).
    """
    spec = (spec or ImageSpec()).validate()
    return "\n".join([*_head(spec), *_system_packages(spec), *_pip_layer(), *_user_and_cmd(spec)])


# ----------------------------------------------------------------------------------------------
# Lint
# ----------------------------------------------------------------------------------------------
_PIP_INSTALL = re.compile(
    r"(?:^|[\s;&|(])(?:\S*/)?(?:pip3?(?:\.\d+)?|python3?(?:\.\d+)?\s+-m\s+pip)\s+install\b"
)
_CONDA_TORCH = re.compile(r"\b(?:conda|mamba|micromamba)\s+install\b[^;&|]*\bpytorch\b")
_INDEX = re.compile(r"--(?:index-url|extra-index-url)[= ]\s*\"?(\S+?)\"?(?:\s|$)")
_SYNTAX = re.compile(r"#\s*syntax\s*=", re.I)
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")
_PEP668 = re.compile(
    r"(?:ubuntu(?:2[4-9]|[3-9]\d)\.\d\d|ubuntu:(?:2[4-9]|[3-9]\d)|noble|bookworm|trixie|debian:1[2-9])"
)


def _commands(run: str) -> list[str]:
    """Split a RUN value into shell commands at ``&&``, ``||``, ``;`` and ``|`` (rough, for lint)."""
    return [c.strip() for c in re.split(r"&&|\|\||;|\|", run) if c.strip()]


def _substitute(text: str, args: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)


def _parse(text: str) -> list[dict[str, Any]]:
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError as exc:  # a declared dependency; say how to get it rather than a traceback
        raise InvalidField(
            "python package",
            "dockerfile-parse",
            tr("未安装", "is not installed"),
            "pip install dockerfile-parse",
        ) from exc
    # fileobj, not .content: setting .content writes a file named Dockerfile into the cwd.
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")), env_replace=False)
    return list(parser.structure)


@dataclass(frozen=True)
class _Run:
    """One RUN instruction and what the instructions before it set."""

    line: int
    value: str
    commands: tuple[str, ...]
    base: str  # the latest FROM ("" before any)
    pip_no_cache_env: bool  # ENV PIP_NO_CACHE_DIR=… earlier
    pep668_flag_env: bool  # ENV PIP_BREAK_SYSTEM_PACKAGES=… earlier


@dataclass
class _Scan:
    """A Dockerfile read once, for the rules: instructions, FROM images (ARG defaults expanded), RUNs."""

    items: list[dict[str, Any]]
    froms: list[tuple[int, str]] = field(default_factory=list)
    runs: list[_Run] = field(default_factory=list)
    last_user: str | None = None


def _scan(items: list[dict[str, Any]]) -> _Scan:
    scan = _Scan(items)
    args: dict[str, str] = {}
    no_cache = pep668 = False
    for item in items:
        ins, value, line = item["instruction"], item["value"], item["startline"] + 1
        if ins == "ARG":
            name, _, default = value.partition("=")
            if default and name.strip() not in args:
                args[name.strip()] = default.strip().strip('"').strip("'")
        elif ins == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]
            scan.froms.append((line, _substitute(words[0], args) if words else ""))
            scan.last_user = None
        elif ins == "USER":
            scan.last_user = value.split(":")[0].strip()
        elif ins == "ENV":
            no_cache |= bool(re.search(r"\bPIP_NO_CACHE_DIR[= ]\s*\"?(?:1|true|yes|on|off|0)", value, re.I))
            pep668 |= bool(re.search(r"\bPIP_BREAK_SYSTEM_PACKAGES[= ]", value))
        elif ins == "RUN":
            base = scan.froms[-1][1] if scan.froms else ""
            scan.runs.append(_Run(line, value, tuple(_commands(value)), base, no_cache, pep668))
    return scan


def _finding(code: str, severity: str, line: int | None, message: str, fix: str = "") -> Finding:
    return Finding("Dockerfile", severity, message, fix, code=code, line=line)  # type: ignore[arg-type]


# -- rules on the whole file --------------------------------------------------------------------
def _syntax_directive(scan: _Scan) -> list[Finding]:
    """Parser directives are comments before the first instruction; BuildKit honours ``# syntax=``."""
    out = []
    for item in scan.items:
        if item["instruction"] != "COMMENT":
            break
        if _SYNTAX.match(item["content"].strip()):
            message = tr(
                "'# syntax=' 让 BuildKit 从镜像仓库拉取 Dockerfile 前端；离线或无仓库时构建直接失败",
                "'# syntax=' makes BuildKit pull the Dockerfile frontend from a registry; the build "
                "fails offline or without a registry",
            )
            fix = tr("删掉这一行：内置前端已支持所需语法", "delete the line: the built-in frontend suffices")
            out.append(_finding("syntax-directive", "error", item["startline"] + 1, message, fix))
    return out


def _latest_tag(scan: _Scan) -> list[Finding]:
    out = []
    for line, image in scan.froms:
        if image.lower() == "scratch" or "$" in image or "@" in image:
            continue
        ref = image.split("@", 1)[0]
        tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
        if tag in ("", "latest"):
            message = tr(
                "基础镜像 {i} 没有固定版本（latest 会随时变化，构建不可复现）",
                "base image {i} is not pinned (latest moves; the build is not reproducible)",
                i=image,
            )
            fix = tr("写出具体标签，例如 {t}", "name a tag, e.g. {t}", t=_DEFAULT.image.tag)
            out.append(_finding("latest-tag", "warning", line, message, fix))
    return out


def _debian_frontend_env(scan: _Scan) -> list[Finding]:
    message = tr(
        "ENV DEBIAN_FRONTEND 会留在每个容器里，影响以后交互式使用 apt",
        "ENV DEBIAN_FRONTEND stays set in every container and affects later interactive apt",
    )
    fix = tr("改用 ARG DEBIAN_FRONTEND=noninteractive", "use ARG DEBIAN_FRONTEND=noninteractive")
    return [
        _finding("debian-frontend-env", "info", i["startline"] + 1, message, fix)
        for i in scan.items
        if i["instruction"] == "ENV" and re.search(r"\bDEBIAN_FRONTEND[= ]", i["value"])
    ]


def _add_url(scan: _Scan) -> list[Finding]:
    message = tr(
        "ADD 远程 URL：不校验内容、每次构建都可能变化，也不会被解压",
        "ADD of a URL: nothing verifies the content, it can change between builds, and it is not unpacked",
    )
    fix = tr(
        "在 RUN 里用 curl 下载并用 sha256sum -c 校验，或 COPY 本地文件",
        "download with curl in a RUN and check it with sha256sum -c, or COPY a local file",
    )
    return [
        _finding("add-url", "warning", i["startline"] + 1, message, fix)
        for i in scan.items
        if i["instruction"] == "ADD" and re.search(r"(?:^|\s)(?:https?|ftp)://", i["value"])
    ]


def _root_user(scan: _Scan) -> list[Finding]:
    if not scan.froms or scan.last_user not in (None, "root", "0"):
        return []
    message = tr(
        "镜像以 root 运行（没有 USER）：容器里的进程对挂载进来的宿主文件就是 root",
        "the image runs as root (no USER): a process in it is root on every host file mounted in",
    )
    fix = tr(
        "RUN useradd --create-home --uid 1000 lab，然后 USER lab",
        "RUN useradd --create-home --uid 1000 lab, then USER lab",
    )
    return [_finding("root-user", "warning", None, message, fix)]


def _cuda_pairing(scan: _Scan) -> list[Finding]:
    """The CUDA of the base vs the CUDA of the wheels (course: 12.5 base, cu124 nightly wheels)."""
    cuda_bases = [image for _line, image in scan.froms if "nvidia/cuda:" in image]
    if not cuda_bases:
        return []
    out = []
    for run in scan.runs:
        for c in run.commands:
            m = _INDEX.search(c) if _PIP_INSTALL.search(" " + c) else None
            if m is None:
                continue
            try:
                pair = ci.check_pair(cuda_bases[-1], m.group(1))
            except InvalidField:
                continue
            keep = ("cuda-mismatch", "unknown-tag")
            out += [replace(f, field="Dockerfile", line=run.line) for f in pair if f.code in keep]
    return out


# -- rules on one RUN ---------------------------------------------------------------------------
_APT_UPDATE = re.compile(r"(?:\S*/)?apt(?:-get)?\s+(?:\S+\s+)*update\b")
_APT_INSTALL = re.compile(r"(?:\S*/)?apt(?:-get)?\s+(?:-\S+\s+)*install\b")


def _apt_installs(run: _Run) -> list[list[str]]:
    """The words of each ``apt-get install`` command of a RUN."""
    out = []
    for c in run.commands:
        if _APT_INSTALL.match(c):
            balanced = c.count('"') % 2 == 0 and c.count("'") % 2 == 0
            out.append(shlex.split(c) if balanced else c.split())
    return out


def _apt_update_alone(run: _Run) -> list[Finding]:
    if not any(_APT_UPDATE.match(c) for c in run.commands) or _apt_installs(run):
        return []
    message = tr(
        "apt-get update 单独成层：这一层会被缓存，之后的 install 用的是过期的软件包列表",
        "apt-get update in a layer of its own is cached, so later installs use stale package lists",
    )
    fix = tr(
        "合成一条：RUN apt-get update && apt-get install -y --no-install-recommends … && "
        "rm -rf /var/lib/apt/lists/*",
        "combine: RUN apt-get update && apt-get install -y --no-install-recommends … && "
        "rm -rf /var/lib/apt/lists/*",
    )
    return [_finding("apt-update-alone", "error", run.line, message, fix)]


def _apt_no_yes(run: _Run) -> list[Finding]:
    yes = re.compile(r"-y|--yes|--assume-yes|-qy|-yq|-[a-z]*y[a-z]*")
    message = tr(
        "apt-get install 没有 -y：构建时无人回答 [Y/n]，安装会中止",
        "apt-get install without -y aborts at [Y/n]",
    )
    return [
        _finding("apt-no-yes", "error", run.line, message, tr("加上 -y", "add -y"))
        for words in _apt_installs(run)
        if not any(yes.fullmatch(w) for w in words)
    ]


def _apt_recommends(run: _Run) -> list[Finding]:
    message = tr(
        "apt-get install 没有 --no-install-recommends：推荐包会让镜像大上百 MB",
        "apt-get install without --no-install-recommends pulls in recommended packages (often 100+ MB)",
    )
    fix = tr("加上 --no-install-recommends", "add --no-install-recommends")
    return [
        _finding("apt-no-recommends", "warning", run.line, message, fix)
        for words in _apt_installs(run)
        if "--no-install-recommends" not in words
    ]


def _apt_lists(run: _Run) -> list[Finding]:
    if not _apt_installs(run) or re.search(r"rm\s+-(?:rf|fr|r)\s+/var/lib/apt/lists", run.value):
        return []
    message = tr(
        "同一层没有删除 /var/lib/apt/lists/*：几十 MB 的软件包列表留在镜像里",
        "the same layer does not remove /var/lib/apt/lists/*: tens of MB of package lists stay in the image",
    )
    fix = tr(
        "在这条 RUN 末尾加 && rm -rf /var/lib/apt/lists/*", "end the RUN with && rm -rf /var/lib/apt/lists/*"
    )
    return [_finding("apt-lists", "warning", run.line, message, fix)]


def _conda_pytorch(run: _Run) -> list[Finding]:
    out = []
    for c in run.commands:
        if not _CONDA_TORCH.search(c):
            continue
        try:
            fix = ci.pip_route(c)[0][0].fix
        except InvalidField:
            fix = tr(
                "改用 pip 和 download.pytorch.org 的 wheel 索引", "use pip and a download.pytorch.org index"
            )
        message = tr(
            "PyTorch 已不再发布 conda 包（pytorch/pytorch#138506，2.5 是最后一版）",
            "PyTorch no longer publishes conda packages (pytorch/pytorch#138506; 2.5 was the last)",
        )
        out.append(_finding("conda-pytorch", "error", run.line, message, fix))
    return out


def _pip_commands(run: _Run) -> list[str]:
    return [c for c in run.commands if _PIP_INSTALL.search(" " + c)]


def _pip_cache(run: _Run) -> list[Finding]:
    message = tr(
        "pip install 没有 --no-cache-dir：下载的 wheel 缓存留在这一层（torch 约 2.5 GB）",
        "pip install without --no-cache-dir keeps the downloaded wheels in the layer (torch: ~2.5 GB)",
    )
    fix = tr("加上 --no-cache-dir", "add --no-cache-dir")
    return [
        _finding("pip-cache", "warning", run.line, message, fix)
        for c in _pip_commands(run)
        if "--no-cache-dir" not in c and not run.pip_no_cache_env and "PIP_NO_CACHE_DIR=" not in c
    ]


def _pip_nightly(run: _Run) -> list[Finding]:
    message = tr(
        "安装 nightly/预发布版（--pre）：每天都变，镜像无法复现",
        "installs nightly / pre-release builds (--pre): they change daily, the image cannot be rebuilt "
        "reproducibly",
    )
    fix = tr(
        "用正式版并固定版本：--index-url {u} torch=={t}",
        "pin a release: --index-url {u} torch=={t}",
        u=_DEFAULT.index.url,
        t=_DEFAULT.torch,
    )
    return [
        _finding("pip-nightly", "warning", run.line, message, fix)
        for c in _pip_commands(run)
        if re.search(r"(?:^|\s)--pre(?:\s|$)", c) or "/whl/nightly/" in c
    ]


def _pep668(run: _Run) -> list[Finding]:
    if not _PEP668.search(run.base) or "venv" in run.value:
        return []
    message = tr(
        "基础镜像 {b} 的系统 Python 受 PEP 668 保护：pip install 会报 externally-managed-environment",
        "the system Python of {b} is PEP 668 externally managed: pip install stops with "
        "externally-managed-environment",
        b=run.base,
    )
    fix = tr(
        "在这条命令前加 PIP_BREAK_SYSTEM_PACKAGES=1（或建一个 venv）",
        "prefix the command with PIP_BREAK_SYSTEM_PACKAGES=1 (or use a venv)",
    )
    flagged = ("--break-system-packages", "PIP_BREAK_SYSTEM_PACKAGES=")
    return [
        _finding("pep668", "error", run.line, message, fix)
        for c in _pip_commands(run)
        if not run.pep668_flag_env and not any(f in c for f in flagged)
    ]


_FILE_RULES = (_syntax_directive, _latest_tag, _debian_frontend_env, _add_url, _cuda_pairing)
_RUN_RULES = (
    _apt_update_alone,
    _apt_no_yes,
    _apt_recommends,
    _apt_lists,
    _conda_pytorch,
    _pip_cache,
    _pip_nightly,
    _pep668,
)


def lint_dockerfile(text: str, *, require_user: bool = True) -> list[Finding]:
    """Every rule's findings for ``text``, sorted by line. ``require_user=False`` drops ``root-user``.

    Each rule is a function returning findings (field ``Dockerfile``, a stable ``code``, the line)."""
    scan = _scan(_parse(text))
    findings = [f for rule in _FILE_RULES for f in rule(scan)]
    findings += [f for run in scan.runs for rule in _RUN_RULES for f in rule(run)]
    if require_user:
        findings += _root_user(scan)
    return sorted(findings, key=lambda f: (f.line or 10**9, f.code))
