"""Reading students' Kubernetes YAML: bounded, multi-document, with the line of every field.

Pure (text in, documents out). One parse (libyaml when present): the node tree is walked once to
enforce the bounds (size, documents, depth, nodes visited, so an alias bomb stops early) and to
record the line of each field path, then each document is constructed from its nodes. A syntax
error ends the stream there: the documents before it are kept, the error says which document and
line it is in (:class:`YamlProblem`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from labkit.i18n import tr

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_DOCS",
    "MAX_NODES",
    "Document",
    "YamlProblem",
    "format_path",
    "read_documents",
]

MAX_BYTES = 1 << 20
MAX_DOCS = 500
MAX_DEPTH = 64
MAX_NODES = 200_000

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """One non-empty document of a stream: its 1-based position, first line, data and field lines."""

    index: int
    line: int
    data: Any
    lines: dict[Path, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return self.line


@dataclass(frozen=True)
class YamlProblem:
    """Why the stream could not be read (from document ``index`` on): the message names the line."""

    index: int
    message: str
    line: int | None = None


def format_path(path: Path) -> str:
    """``("spec", "containers", 0, "image")`` → ``spec.containers[0].image``; keys with ``.`` or
    ``/`` (label keys) are quoted: ``metadata.labels["app.kubernetes.io/name"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif any(c in str(part) for c in "./[] ") or not str(part):
            out += f'["{part}"]'
        else:
            out += ("." if out else "") + str(part)
    return out


class _Constructor(SafeConstructor):
    """SafeConstructor that reads a lone ``=`` as a string (PyYAML's ``value`` tag)."""


_Constructor.add_constructor("tag:yaml.org,2002:value", SafeConstructor.construct_yaml_str)


class _TooBig(Exception):
    pass


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(
            tr("节点太多（超过 {n}，是否滥用了别名？）", "too many nodes (over {n}; aliases?)", n=MAX_NODES)
        )
    if len(path) > MAX_DEPTH:
        raise _TooBig(tr("嵌套太深（超过 {n} 层）", "nested too deeply (over {n} levels)", n=MAX_DEPTH))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            lines.setdefault((*path, name), key.start_mark.line + 1)
            _walk(value, (*path, name), lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, budget)


def _yaml_message(exc: yaml.YAMLError) -> tuple[str, int | None]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return tr("不是合法的 YAML：{p}", "not valid YAML: {p}", p=problem), None
    line = mark.line + 1
    return (
        tr(
            "不是合法的 YAML（第 {l} 行第 {c} 列）：{p}",
            "not valid YAML (line {l}, column {c}): {p}",
            l=line,
            c=mark.column + 1,
            p=problem,
        ),
        line,
    )


def read_documents(text: str) -> tuple[list[Document], YamlProblem | None]:
    """The non-empty documents of ``text`` and the problem that stopped reading (``None``: none)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return [], YamlProblem(
            1,
            tr(
                "文件太大（{s} 字节，最多 {m}）",
                "file too large ({s} bytes, at most {m})",
                s=size,
                m=MAX_BYTES,
            ),
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs: list[Document] = []
    budget = [MAX_NODES]
    index = 0
    try:
        for node in yaml.compose_all(text, Loader=loader):
            index += 1
            if index > MAX_DOCS:
                return docs, YamlProblem(
                    index, tr("文档太多（最多 {n} 个）", "too many documents (at most {n})", n=MAX_DOCS)
                )
            if node is None:
                continue
            lines: dict[Path, int] = {}
            _walk(node, (), lines, budget)
            data = _Constructor().construct_document(node)
            if data is not None:
                docs.append(Document(index, node.start_mark.line + 1, data, lines))
    except _TooBig as exc:
        return docs, YamlProblem(index, str(exc))
    except yaml.YAMLError as exc:
        message, line = _yaml_message(exc)
        return docs, YamlProblem(index + 1 if _is_parse_error(exc) else index, message, line)
    except (RecursionError, ValueError, TypeError) as exc:  # e.g. an unhashable mapping key
        return docs, YamlProblem(max(index, 1), tr("无法读取 YAML：{e}", "cannot read the YAML: {e}", e=exc))
    return docs, None


def _is_parse_error(exc: yaml.YAMLError) -> bool:
    """A scanner/parser error happens while the next document is being composed."""
    return isinstance(exc, yaml.scanner.ScannerError | yaml.parser.ParserError | yaml.composer.ComposerError)
