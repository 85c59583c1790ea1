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
    #: keys written twice in one mapping (YAML keeps the last; kubectl refuses the file)
    duplicates: tuple[Path, ...] = ()

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


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int], budget: list[int], dupes: list[Path]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(
            tr("节点太多（超过 {n}，是否滥用了别名？）", "too many nodes (over {n}; aliases?)", n=MAX_NODES)
        )
    if len(path) > MAX_DEPTH:
        raise _TooBig(tr("嵌套太深（超过 {n} 层）", "nested too deeply (over {n} levels)", n=MAX_DEPTH))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            if name in seen and name != "<<":
                dupes.append((*path, name))
                lines[(*path, name)] = key.start_mark.line + 1
            seen.add(name)
            lines.setdefault((*path, name), key.start_mark.line + 1)
            _walk(value, (*path, name), lines, budget, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, budget, dupes)


def _problem_text(problem: str) -> str:
    """PyYAML's most common complaints in the course language (others quoted as they are)."""
    known = {
        "mapping values are not allowed": tr(
            "这里不能出现 key: value（常见原因：冒号后少了空格，或缩进不对）",
            "mapping values are not allowed here (often: no space after a colon, or wrong indentation)",
        ),
        "could not find expected ':'": tr("找不到应有的冒号 ':'", "could not find the expected ':'"),
        "did not find expected key": tr(
            "缩进不对：这里应是一个键", "wrong indentation: a key was expected here"
        ),
        "did not find expected '-' indicator": tr(
            "缩进不对：这里应是列表项 '-'", "wrong indentation: a list item '-' was expected here"
        ),
        "did not find expected node content": tr("这里缺少内容", "content is missing here"),
        "did not find expected ',' or '}'": tr("缺少 ',' 或 '}'", "a ',' or '}' is missing"),
        "did not find expected ',' or ']'": tr("缺少 ',' 或 ']'", "a ',' or ']' is missing"),
        "found character": tr(
            "这里的字符不能开始一个值（Tab 缩进？YAML 只能用空格缩进）",
            "a character here cannot start a value (a tab? YAML indents with spaces only)",
        ),
        "found unexpected end of stream": tr(
            "文件意外结束（引号没有闭合？）", "the file ends unexpectedly (an unclosed quote?)"
        ),
        "found undefined alias": tr("引用了未定义的别名", "an undefined alias is used"),
    }
    for english, text in known.items():
        if problem.startswith(english):
            return text
    return tr("'{p}'", "{p}", p=problem)


def _yaml_message(exc: yaml.YAMLError) -> tuple[str, int | None]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = _problem_text(getattr(exc, "problem", None) or str(exc))
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
            dupes: list[Path] = []
            _walk(node, (), lines, budget, dupes)
            data = _Constructor().construct_document(node)
            if data is not None:
                docs.append(Document(index, node.start_mark.line + 1, data, lines, tuple(dupes)))
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
