"""Which Debian/Ubuntu package provides each executable the course runs (pure data).

Used by the runner (a missing executable becomes :class:`~labkit.errors.ToolMissing` naming its
package), by ``labkit doctor`` (the exact install command) and by the steps that tell a student
what to install.
"""

from __future__ import annotations

__all__ = ["TOOL_PACKAGES"]

#: Executable → Debian/Ubuntu package that provides it (or the official route where apt has none).
TOOL_PACKAGES: dict[str, str] = {
    "qemu-img": "qemu-utils",
    "qemu-io": "qemu-utils",
    "qemu-system-aarch64": "qemu-system-arm",
    "qemu-system-arm": "qemu-system-arm",
    "qemu-system-x86_64": "qemu-system-x86",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "docker": "docker.io",
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "kubectl": "kubernetes-client",
    "microk8s": "snap: sudo snap install microk8s --classic",
    "zerotier-cli": "zerotier-one",
    "virsh": "libvirt-clients",
    "nvidia-smi": "nvidia-utils (driver package)",
}
