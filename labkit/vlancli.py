"""``labkit vlan …``: the instructor's side of chapter 3's virtual LAN.

``labkit vlan matrix REPORT.json [--out matrix.png] [--csv F]`` draws who reached whom
(``ch3.zt.reach`` facts; :mod:`labkit.grading.vlan_matrix`).

``labkit vlan authorize --network NWID --from-grades report.json [--controller central|local]
[--url URL] [--token-file F] [--home DIR] [--apply]`` authorizes the ZeroTier node ids that the
students' graded notebooks recorded (``facts.node`` of ``ch3.zt.status`` / ``ch3.zt.join`` /
``ch3.zt.reach`` in ``labkit grade``'s ``report.json``). A dry run by default: it prints, per
student, the node and what would happen (would authorize / already authorized / not a member
yet: a node is on the controller only after it tried to join); ``--apply`` authorizes.

Token: Central's from ``--token-file``, else the variable ``ZEROTIER_CENTRAL_TOKEN``, else a
masked prompt on a terminal; a self-hosted (embedded) controller's from ``--token-file``, else
``<home>/authtoken.secret`` of the controller node (``--home``, default
``/var/lib/zerotier-one``, whose ``zerotier-one.port`` also gives the URL). The token is never
printed, logged or saved. Exit status: 0 done (or dry run), 1 the controller refused or failed,
2 bad arguments or an unreadable report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from labkit.errors import LabkitError
from labkit.i18n import option_labels, tr, use_labels, use_lang

__all__ = ["add_arguments", "authorize", "cli", "read_report"]

#: A report for a few hundred students is a few MB; refuse anything far larger.
MAX_REPORT_BYTES = 256 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="vlan_action", metavar="ACTION")
    sub.required = True
    a = sub.add_parser(
        "authorize",
        help="authorize the ZeroTier node ids recorded in students' graded notebooks (dry run by default)",
        description="authorize on a ZeroTier controller the node ids that `labkit grade` recorded in "
        "report.json; a dry run unless --apply; exit 0 done, 1 controller failure, 2 bad arguments",
    )
    a.add_argument("--network", required=True, metavar="NWID", help="the network id (16 hex digits)")
    a.add_argument(
        "--from-grades",
        required=True,
        type=Path,
        metavar="REPORT",
        help="report.json written by labkit grade",
    )
    a.add_argument(
        "--controller",
        choices=("central", "local"),
        default="local",
        help="ZeroTier Central (api.zerotier.com) or a self-hosted controller on this machine (default)",
    )
    a.add_argument("--url", default=None, help="controller base URL (default: Central's, or the local port)")
    a.add_argument(
        "--token-file", default=None, metavar="F", help="file holding the token (never printed or stored)"
    )
    a.add_argument(
        "--home",
        default=None,
        metavar="DIR",
        help="local: the controller node's zerotier-one folder (default /var/lib/zerotier-one)",
    )
    a.add_argument("--apply", action="store_true", help="really authorize (default: dry run)")
    a.add_argument("--lang", choices=("zh", "en"), default=None, help="message language")
    m = sub.add_parser(
        "matrix",
        help="draw the class reachability matrix (who reached whom over the virtual LAN) from report.json",
        description="the class reachability matrix from the ch3.zt.reach results that `labkit grade` "
        "kept in report.json: a PNG, a CSV and a text table; exit 0 done, 2 unusable report or output",
    )
    from labkit.grading.vlan_matrix import add_matrix_arguments

    add_matrix_arguments(m)


def read_report(path: Path) -> Any:
    """``report.json`` parsed, or :class:`LabkitError` saying why it cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise LabkitError(
            tr("读不了 {p}：{e}", "cannot read {p}: {e}", p=path, e=exc.strerror or exc)
        ) from None
    if len(data) > MAX_REPORT_BYTES:
        raise LabkitError(tr("{p}：文件太大", "{p}: file too large", p=path))
    try:
        report = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        report = None
    if not isinstance(report, dict) or report.get("tool") != "labkit grade":
        raise LabkitError(
            tr(
                "{p} 不是 labkit grade 写出的 report.json",
                "{p} is not a report.json written by labkit grade",
                p=path,
            )
        )
    return report


def _token(controller: str, token_file: str | None, stdin: TextIO) -> Any:
    """A prompted Central token when neither a file nor the variable gives one and stdin is a
    terminal (masked: :func:`getpass.getpass`); ``None`` lets the step find it."""
    from labkit.logic.zt_controller import TOKEN_ENV, Secret

    if controller != "central" or token_file or os.environ.get(TOKEN_ENV, "").strip():
        return None
    if not stdin.isatty():
        return None  # the step says where a token goes
    import getpass

    value = getpass.getpass(
        tr("ZeroTier Central API 令牌（不回显）：", "ZeroTier Central API token (hidden): ")
    )
    return Secret(value)


def _table(evidence: dict[str, Any], shared: dict[str, list[str]], out: TextIO) -> None:
    names = {
        "would_authorize": tr("将授权", "would authorize"),
        "authorized": tr("已授权（本次）", "authorized now"),
        "already_authorized": tr("本来已授权", "already authorized"),
        "not_member": tr("还不是成员（需先 join）", "not a member yet (must join first)"),
        "failed": tr("授权失败", "FAILED"),
    }
    rows = [(tr("学生", "student"), tr("节点", "node"), tr("操作", "action"), tr("地址", "addresses"))]
    for act in evidence.get("actions", []):
        label = act["label"] + (" *" if act["node"] in shared else "")
        rows.append((label, act["node"], names.get(act["action"], act["action"]), ",".join(act["addresses"])))
    widths = [max(_width(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        cells = (c + " " * (w - _width(c)) for c, w in zip(r[:3], widths, strict=True))
        print("  ".join(cells) + "  " + r[3], file=out)


def _width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two), so the Chinese table lines up."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def authorize(
    *,
    network: str,
    from_grades: Path,
    controller: str = "local",
    url: str | None = None,
    token_file: str | None = None,
    home: str | None = None,
    apply: bool = False,
    token: Any = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Authorize the node ids of ``from_grades`` on the controller; print the table; exit status."""
    from labkit.grading.facts import nodes_from_report
    from labkit.logic.zerotier import validate_network_id
    from labkit.steps.zt_controller import AuthorizeMembers, local_controller_url

    out, err = out or sys.stdout, err or sys.stderr
    prog = "labkit vlan authorize"
    try:
        network = validate_network_id(network)
        report = read_report(from_grades)
        if controller == "local" and not url:
            url = local_controller_url(home or "/var/lib/zerotier-one")
        found = nodes_from_report(report, network)
        for note in found.notes:
            print(f"{prog}: {note}", file=err)
        by_node = found.by_node()
        if not by_node:
            print(
                tr(
                    "报告里没有已识别学生的节点 ID（ch3.zt.join / ch3.zt.status 的 facts）；没有可授权的",
                    "no node ids of identified students in the report (facts of ch3.zt.join / "
                    "ch3.zt.status); nothing to authorize",
                ),
                file=out,
            )
            return 0
        step = AuthorizeMembers(
            network,
            {node: ", ".join(students) for node, students in by_node.items()},
            apply=apply,
            controller=controller,
            url=url,
            token=token,
            token_file=token_file,
            home=home,
        )
        step.secret()  # no token anywhere: a bad invocation, said before anything is asked
    except LabkitError as exc:
        print(f"{prog}: {exc}", file=err)
        return 2
    result = step.execute("live")
    if result.status == "error":
        print(f"{prog}: {result.message}", file=err)
        return 1
    _table(result.evidence, found.shared, out)
    print(result.message, file=out)
    return 0 if result.status == "pass" else 1


def cli(args: argparse.Namespace) -> int:
    with use_lang(args.lang), use_labels(option_labels(vars(args))):
        if args.vlan_action == "authorize":
            try:
                token = _token(args.controller, args.token_file, sys.stdin)
            except LabkitError as exc:
                print(f"labkit vlan authorize: {exc}", file=sys.stderr)
                return 2
            except (EOFError, KeyboardInterrupt):
                print("labkit vlan authorize: " + tr("已取消", "cancelled"), file=sys.stderr)
                return 2
            return authorize(
                network=args.network,
                from_grades=args.from_grades,
                controller=args.controller,
                url=args.url,
                token_file=args.token_file,
                home=args.home,
                apply=args.apply,
                token=token,
            )
        if args.vlan_action == "matrix":
            from labkit.grading.vlan_matrix import matrix_cli

            return matrix_cli(args)
        return 2  # pragma: no cover - argparse requires an action
