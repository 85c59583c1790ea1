"""The build context on disk: read the Dockerfile, measure the context, write the generated one.

Everything here touches the filesystem. Only :func:`read_dockerfile` (one small file) is called from
``plan``; the rest runs in ``run`` (panels re-plan on every keystroke). The context is measured
with the SDK's own ``.dockerignore`` matcher, i.e. exactly the files the engine would receive,
*before* they are sent: a student who builds in their home directory otherwise uploads gigabytes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit import files
from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic import dockerfile as dfl

__all__ = [
    "HOST_CA_DIR",
    "ContextSize",
    "context_size",
    "host_extra_ca_files",
    "read_dockerfile",
    "write_generated",
]

#: Where Debian / Ubuntu keep locally added CA certificates (the TLS-inspection ones live here).
HOST_CA_DIR = "/usr/local/share/ca-certificates"

ContextSize = dict[str, Any]
"""``{"bytes": n, "files": n, "largest": [(path, bytes), …], "dockerignore": bool}``."""


def _dockerignore(context: Path) -> list[str]:
    """The patterns of ``.dockerignore`` as the SDK reads them (blank lines and # comments dropped)."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_size(context: str | os.PathLike[str], dockerfile: str = "Dockerfile") -> ContextSize:
    """Bytes and files the engine would receive for ``context`` (``.dockerignore`` honoured)."""
    from docker.utils.build import exclude_paths  # the SDK's own matcher: the same files it sends

    root = Path(context)
    patterns = _dockerignore(root)
    total = count = 0
    largest: list[tuple[str, int]] = []
    for rel in exclude_paths(str(root), patterns, dockerfile=dockerfile):
        try:
            st = os.lstat(root / rel)
        except OSError:
            continue
        if not os.path.isfile(root / rel) or os.path.islink(root / rel):
            continue
        total += st.st_size
        count += 1
        largest.append((rel, st.st_size))
        if len(largest) > 20:
            largest.sort(key=lambda x: -x[1])
            del largest[5:]
    largest.sort(key=lambda x: -x[1])
    return {"bytes": total, "files": count, "largest": largest[:5], "dockerignore": bool(patterns)}


def host_extra_ca_files(directory: str = HOST_CA_DIR) -> list[Path]:
    """The host's locally added CA certificates (``*.crt``), for networks with TLS inspection."""
    d = Path(directory)
    return sorted(p for p in d.glob("*.crt") if p.is_file()) if d.is_dir() else []


def write_generated(
    path: Path,
    text: str,
    context: Path,
    *,
    overwrite: bool,
    extra_ca: bool,
    ca_files: Sequence[Path] = (),
) -> list[str]:
    """Write the generated Dockerfile (when it differs) and, for ``extra_ca``, copy the CA files
    into ``labkit-ca/`` of the context. Returns what was done, one line each, for the student."""
    done: list[str] = []
    if not path.exists() or path.read_text(encoding="utf-8", errors="replace") != text:
        files.write_atomic(path, text, overwrite=overwrite)
        done.append(tr("已写入 {p}", "wrote {p}", p=path))
    if not extra_ca:
        return done
    sources = list(ca_files) or host_extra_ca_files()
    if not sources:
        raise InvalidField(
            "extra_ca_files",
            [],
            tr("没有可复制的 CA 证书", "no CA certificate to copy"),
            tr(
                "把 *.crt 放进 {h}，或传 extra_ca_files=[…]；不需要就用 extra_ca_certs=False",
                "put *.crt files in {h} or pass extra_ca_files=[…]; or set extra_ca_certs=False",
                h=HOST_CA_DIR,
            ),
        )
    ca_dir = context / dfl.CA_DIR
    ca_dir.mkdir(exist_ok=True)
    for src in sources:
        name = src.name if src.name.endswith(".crt") else src.name + ".crt"
        shutil.copyfile(src, ca_dir / name)
    return done


def read_dockerfile(path: Path, context: Path) -> str:
    """The Dockerfile's text; a missing one names the path and spots ``Dockerfile.txt`` & co."""
    if path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    near = sorted(
        p.name for p in context.iterdir() if p.name.lower().startswith("dockerfile") and p.name != path.name
    )
    fix = tr(
        "文件名必须正好是 Dockerfile（没有扩展名），放在构建上下文目录里；或用 dockerfile= 指定文件",
        "the file must be named exactly Dockerfile (no extension) in the context directory, or "
        "name it with dockerfile=",
    )
    if near:
        fix += tr(
            "。这里有 {n}：是编辑器加了扩展名吗？",
            ". Found {n} here: did an editor add an extension?",
            n=", ".join(near),
        )
    fix += tr(
        "；也可以传 spec=ImageSpec() 让 labkit 生成一个",
        "; or pass spec=ImageSpec() to have labkit generate one",
    )
    missing = not path.exists()
    raise InvalidField(
        "dockerfile",
        str(path),
        tr("不存在" if missing else "不是普通文件", "not found" if missing else "is not a file"),
        fix,
    )
