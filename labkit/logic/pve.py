"""Proxmox VE guest configuration files (``/etc/pve/qemu-server/<vmid>.conf``), edited safely.

The course disables KVM for a VM with ``echo "kvm: no" >> /etc/pve/qemu-server/100.conf``. That
works on a fresh VM and silently misbehaves otherwise, because of the file format (described above
:func:`sections`). :func:`set_option` replaces the key in the main section or inserts it at the
end of the main section (before the first ``[section]``), touching no other line. On a real PVE
host the supported way is ``qm set 100 --kvm 0`` (it also takes the config lock); the file edit is
what the course teaches and what :class:`labkit.steps.pve.SetPveOption` does on a copy.
"""

from __future__ import annotations

import difflib
import re

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "BOOLEAN_KEYS",
    "CONF_DIR",
    "SAMPLE_CONF",
    "VMID_MAX",
    "VMID_MIN",
    "append_lands_in",
    "conf_path",
    "get_option",
    "in_conf_dir",
    "naive_append",
    "other_lines_unchanged",
    "qm_destroy_commands",
    "qm_set_argv",
    "qm_status_argv",
    "sample_conf",
    "sections",
    "seed_append_warnings",
    "set_option",
    "unified_diff",
    "validate_key",
    "validate_value",
    "validate_vmid",
]

CONF_DIR = "/etc/pve/qemu-server"
VMID_MIN = 100
VMID_MAX = 999_999_999

#: Keys whose values PVE checks as booleans (``1|on|yes|true`` / ``0|off|no|false``).
BOOLEAN_KEYS = frozenset(
    {"kvm", "acpi", "onboot", "tablet", "template", "protection", "localtime", "numa", "reboot", "freeze"}
)
_TRUE = ("1", "on", "yes", "true")
_FALSE = ("0", "off", "no", "false")
#: Keys PVE manages itself or that have another representation.
_RESERVED = frozenset({"digest", "snapshots", "pending", "snapstate", "delete", "description"})

_KEY_RE = re.compile(r"[a-z][a-z_\-]*\d*")
_HEADER_RE = re.compile(r"^\[([^\]]*)\]\s*$")


def validate_vmid(vmid: object) -> int:
    """A PVE guest id: an integer from 100 to 999 999 999 (``qm``'s own range)."""
    value: int | None = None
    if isinstance(vmid, int) and not isinstance(vmid, bool):
        value = vmid
    elif isinstance(vmid, str) and vmid.strip().isascii() and vmid.strip().isdigit():
        value = int(vmid.strip())
    if value is None or not VMID_MIN <= value <= VMID_MAX:
        raise InvalidField(
            "vmid",
            vmid,
            tr("不是 PVE 虚拟机编号", "is not a PVE guest id"),
            tr("100 到 999999999 之间的整数，例如 100", "a whole number from 100 to 999999999, e.g. 100"),
        )
    return value


def conf_path(vmid: object) -> str:
    """``/etc/pve/qemu-server/<vmid>.conf``."""
    return f"{CONF_DIR}/{validate_vmid(vmid)}.conf"


def in_conf_dir(path: str) -> bool:
    """True for a path under :data:`CONF_DIR` (a real PVE host's configs: never a practice copy)."""
    norm = "/" + "/".join(part for part in path.replace("\\", "/").split("/") if part not in ("", "."))
    return norm == CONF_DIR or norm.startswith(CONF_DIR + "/")


def validate_key(key: object) -> str:
    """A configuration key as PVE's parser reads it (``[a-z][a-z_-]*\\d*``), not one PVE reserves."""
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise InvalidField(
            "key",
            key,
            tr("不是 PVE 配置项名", "is not a PVE option name"),
            tr("小写字母开头，例如 kvm、cores、memory", "lowercase letters first, e.g. kvm, cores, memory"),
        )
    if key in _RESERVED:
        fix = (
            tr("描述写在文件开头的 # 行里", "the description lives in the # lines at the top")
            if key == "description"
            else tr("这个键由 PVE 自己维护", "PVE maintains this key itself")
        )
        raise InvalidField("key", key, tr("不能这样修改", "cannot be set this way"), fix)
    return key


def validate_value(key: str, value: object) -> str:
    """One line of text; for boolean keys one of PVE's boolean spellings."""
    if isinstance(value, bool):
        value = "1" if value else "0"
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\n\r\x00"):
        raise InvalidField(
            "value", value, tr("不是一行非空文字", "is not one non-empty line"), tr("例如 0", "e.g. 0")
        )
    value = value.strip()
    if key in BOOLEAN_KEYS and value.lower() not in _TRUE + _FALSE:
        raise InvalidField(
            "value",
            value,
            tr("{k} 是布尔项", "{k} is a boolean option", k=key),
            tr("用 0/1、no/yes、off/on 或 false/true", "use 0/1, no/yes, off/on or false/true"),
        )
    return value


def _eol(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def _lines(text: str, keepends: bool = False) -> list[str]:
    """Split at line feeds only, like PVE's parser (``str.splitlines`` also splits at U+2028 etc.)."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
        return [p + "\n" for p in parts] if keepends else parts
    if keepends:
        return [p + "\n" for p in parts[:-1]] + parts[-1:]
    return parts


# The file format, as parsed by ``PVE::QemuServer::parse_vm_config``, and why appending misbehaves:
#
# * The file is sections. The *main* section (the current configuration) comes first; then optional
#   ``[PENDING]`` (changes waiting for a reboot), ``[special:cloudinit]`` and one ``[<name>]``
#   section per snapshot. Appending lands in whatever section is last – after a snapshot exists,
#   the new line edits the *snapshot*, not the VM.
# * Within a section a key may appear once; if it appears twice the last one wins. Appending a
#   second ``kvm:`` after an existing ``kvm: 1`` works by accident (last wins) and leaves a
#   contradictory file; PVE rewrites it (sorted keys, ``kvm: 0``) the next time it saves the config.
# * ``#`` lines are the VM's *description* (URL-encoded, shown in the web UI's Notes), not
#   comments to be dropped; blank lines are ignored. A file not ending in a newline makes ``>>``
#   glue the new text onto its last line.
def sections(conf_text: str) -> list[tuple[str, int, int]]:
    """``(name, first_line, end_line)`` per section; the main section is named ``""``.

    Line numbers index the file's lines (split at line feeds); ``end_line`` is exclusive.
    """
    lines = _lines(conf_text)
    out: list[tuple[str, int, int]] = []
    name, start = "", 0
    for i, line in enumerate(lines):
        m = _HEADER_RE.match(line)
        if m:
            out.append((name, start, i))
            name, start = m[1], i + 1
    out.append((name, start, len(lines)))
    return out


def _key_match(line: str, key: str) -> re.Match[str] | None:
    return re.match(rf"^{re.escape(key)}:\s*(.*?)\s*$", line.rstrip("\r\n"))


def get_option(conf_text: str, key: str, section: str = "") -> str | None:
    """The value of ``key`` in ``section`` (main by default); the last occurrence wins, like PVE."""
    lines = _lines(conf_text)
    value = None
    for name, start, end in sections(conf_text):
        if name != section:
            continue
        for line in lines[start:end]:
            m = _key_match(line, key)
            if m:
                value = m[1]
    return value


def set_option(conf_text: str, key: str, value: object) -> str:
    """``conf_text`` with ``key: value`` set in the main section; every other line untouched.

    An existing ``key:`` line of the main section is rewritten in place (all of them, if the file
    has duplicates); otherwise the line goes after the last non-blank line of the main section,
    i.e. before the first ``[section]``. Line endings and the presence or absence of a final
    newline are kept.
    """
    if not isinstance(conf_text, str):
        raise InvalidField("conf_text", type(conf_text).__name__, tr("不是文本", "is not text"), "")
    key = validate_key(key)
    value = validate_value(key, value)
    new = f"{key}: {value}"
    lines = _lines(conf_text, keepends=True)
    _, _, main_end = sections(conf_text)[0]
    hits = [i for i in range(main_end) if _key_match(lines[i], key)]
    if hits:
        for i in hits:
            lines[i] = new + _eol(lines[i])
        return "".join(lines)
    last = max((i for i in range(main_end) if lines[i].strip()), default=-1)
    at = last + 1
    eol = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    if at == len(lines) and lines and not _eol(lines[-1]):
        lines[-1] += eol  # the old last line gets the newline it lacked; the new one goes without
        lines.append(new)
    else:
        lines.insert(at, new + eol)
    return "".join(lines)


def naive_append(conf_text: str, key: str, value: str) -> str:
    """What the course's ``echo "key: value" >> file`` produces (for comparison, never written)."""
    return conf_text + f"{key}: {value}\n"


def append_lands_in(conf_text: str) -> str:
    """The section a line appended to the file ends up in: ``""`` (main), ``PENDING``, a snapshot …"""
    return sections(conf_text)[-1][0]


def seed_append_warnings(conf_text: str, key: str) -> list[str]:
    """Why ``echo "<key>: ..." >> file`` would be wrong for this particular file (empty if harmless)."""
    out = []
    target = append_lands_in(conf_text)
    if target:
        out.append(
            tr(
                "追加的行会落在 [{s}] 段里，改的是{what}，不是虚拟机当前配置",
                "the appended line would land in section [{s}] – {what}, not the VM's current configuration",
                s=target,
                what=tr("待生效的更改", "the pending changes")
                if target.upper() == "PENDING"
                else tr("快照的配置", "the snapshot's configuration"),
            )
        )
    elif get_option(conf_text, key) is not None:
        out.append(
            tr(
                "主配置里已有 {k}: 行；追加会出现两个 {k}，只靠“最后一个生效”才对",
                "the main section already has a {k}: line; appending makes two, correct only because "
                "the last one happens to win",
                k=key,
            )
        )
    if conf_text and not conf_text.endswith("\n"):
        out.append(
            tr(
                "文件末尾没有换行，追加的文字会接在最后一行后面，把两行粘成一行",
                "the file does not end with a newline, so the appended text would be glued onto the "
                "last line",
            )
        )
    return out


def _without_key_in_main(conf_text: str, key: str) -> list[str]:
    lines = _lines(conf_text)
    _, _, main_end = sections(conf_text)[0]
    return [ln for i, ln in enumerate(lines) if not (i < main_end and _key_match(ln, key))]


def other_lines_unchanged(old: str, new: str, key: str) -> bool:
    """True when ``new`` differs from ``old`` only in main-section ``key:`` lines."""
    return _without_key_in_main(old, key) == _without_key_in_main(new, key)


def unified_diff(old: str, new: str, name: str = "conf") -> str:
    """A ``diff -u`` of two versions, for evidence."""
    return "".join(
        difflib.unified_diff(
            _lines(old, keepends=True), _lines(new, keepends=True), f"a/{name}", f"b/{name}", n=1
        )
    )


# ---------------------------------------------------------------------------------------------
# qm command lines
# ---------------------------------------------------------------------------------------------
def qm_status_argv(vmid: object) -> list[str]:
    """``qm status <id>``: read-only; exits non-zero with "does not exist" for a destroyed guest."""
    return ["qm", "status", str(validate_vmid(vmid))]


def qm_destroy_commands(vmid: object, purge: object = False) -> list[list[str]]:
    """``qm stop <id>`` then ``qm destroy <id> [--purge 1]`` (purge: also from backup/HA jobs)."""
    vm = str(validate_vmid(vmid))
    if not isinstance(purge, bool):
        raise InvalidField("purge", purge, tr("不是 True/False", "is not True/False"), "True / False")
    return [["qm", "stop", vm], ["qm", "destroy", vm, *(["--purge", "1"] if purge else [])]]


def qm_set_argv(vmid: object, key: str, value: object) -> list[str]:
    """``qm set <id> --<key> <value>``, the supported way on a PVE host (booleans as 0/1)."""
    key = validate_key(key)
    text = validate_value(key, value)
    if key in BOOLEAN_KEYS:
        text = "0" if text.lower() in _FALSE else "1"
    return ["qm", "set", str(validate_vmid(vmid)), f"--{key}", text]


#: A realistic ``100.conf``: a two-line description, ``kvm: 1``, one snapshot and a pending change.
SAMPLE_CONF = """\
#Ubuntu 24.04 server for the Hadoop lab
#owner%3A student, created in class
boot: order=scsi0;ide2;net0
cores: 2
cpu: x86-64-v2-AES
ide2: local:iso/ubuntu-24.04-live-server-amd64.iso,media=cdrom,size=2690412K
kvm: 1
memory: 4096
meta: creation-qemu=8.1.5,ctime=1714030000
name: hadoop-{vmid}
net0: virtio=BC:24:11:5E:7A:01,bridge=vmbr0,firewall=1
numa: 0
ostype: l26
parent: clean-install
scsi0: local-lvm:vm-{vmid}-disk-0,iothread=1,size=32G
scsihw: virtio-scsi-single
smbios1: uuid=5b0c8c5e-2f1e-4b39-9d39-2b6f0f6f3a10
sockets: 1
vmgenid: 0c1f3b36-9f0e-4a7e-8e55-77f1e4f0c2a1

[PENDING]
memory: 8192

[clean-install]
#fresh install, before Hadoop
boot: order=scsi0;ide2;net0
cores: 2
cpu: x86-64-v2-AES
ide2: local:iso/ubuntu-24.04-live-server-amd64.iso,media=cdrom,size=2690412K
kvm: 1
memory: 4096
meta: creation-qemu=8.1.5,ctime=1714030000
name: hadoop-{vmid}
net0: virtio=BC:24:11:5E:7A:01,bridge=vmbr0,firewall=1
numa: 0
ostype: l26
scsi0: local-lvm:vm-{vmid}-disk-0,iothread=1,size=32G
scsihw: virtio-scsi-single
smbios1: uuid=5b0c8c5e-2f1e-4b39-9d39-2b6f0f6f3a10
snaptime: 1714031000
sockets: 1
vmgenid: 0c1f3b36-9f0e-4a7e-8e55-77f1e4f0c2a1
"""


def sample_conf(vmid: object = 100) -> str:
    """:data:`SAMPLE_CONF` for guest ``vmid`` – a stand-in to practise on where there is no PVE host."""
    return SAMPLE_CONF.format(vmid=validate_vmid(vmid))
