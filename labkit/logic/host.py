"""Facts about the host, as plain data, and the pure rules that judge them.

:class:`HostFacts` is filled in by :func:`labkit.steps.host.collect_host_facts` (which probes the
machine) and consumed by pure code here and elsewhere (VM command validation, sizing advice), so
that code can be tested with hand-made facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["HostFacts", "ToolInfo"]


@dataclass(frozen=True)
class ToolInfo:
    """An executable the course uses: where it is and what version it reports."""

    name: str
    path: str | None = None
    version: str | None = None
    package: str | None = None  # Debian/Ubuntu package that provides it
    detail: str = ""  # e.g. "daemon not running", "permission denied on /var/run/docker.sock"

    @property
    def present(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class HostFacts:
    """What this machine offers the course. Every field has a harmless default for tests."""

    os_name: str = "Linux"
    os_pretty: str = ""
    arch: str = "x86_64"
    cores: int = 2
    memory_bytes: int = 8 * 2**30
    disk_free_bytes: int = 50 * 2**30
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    kvm_device: bool = False
    kvm_usable: bool = False
    kvm_reason: str = "not probed"
    is_root: bool = False
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def virt_flags(self) -> list[str]:
        """Hardware virtualization CPU flags present (Intel ``vmx`` / AMD ``svm``)."""
        return sorted(self.cpu_flags & {"vmx", "svm"})

    def tool(self, name: str) -> ToolInfo:
        return self.tools.get(name, ToolInfo(name))
