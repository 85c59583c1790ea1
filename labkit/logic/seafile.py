"""Seafile as a SaaS example (course 4.4): a docker-compose project from a form's fields.

The project is the one Seafile documents for its ``seafileltd/seafile-mc`` image (Seafile 11):
``db`` (MariaDB), ``memcached`` and ``seafile``, with the image's own variables (``DB_HOST``,
``DB_ROOT_PASSWD``, ``SEAFILE_ADMIN_EMAIL``, ``SEAFILE_ADMIN_PASSWORD``,
``SEAFILE_SERVER_HOSTNAME``, ``SEAFILE_SERVER_LETSENCRYPT``, ``TIME_ZONE``) and MariaDB's
``MYSQL_ROOT_PASSWORD``.

Passwords never appear in the compose text: it says ``${SEAFILE_DB_ROOT_PASSWORD}`` and
``${SEAFILE_ADMIN_PASSWORD}``, and the values live in a ``.env`` file (mode 0600) beside it, which
the compose tool reads with ``--env-file``. So the compose file can be shown in a notebook, and
``config -q`` (validate, print nothing) keeps them out of logs too.

Pure: :func:`spec_findings` (fields → findings naming the field), :func:`build_spec`,
:func:`compose_text`, :func:`env_text` / :func:`parse_env`, the compose argv builders for
Debian's ``docker-compose`` v1 and ``docker compose`` v2, :func:`parse_config_errors` (the tool's
complaint → findings), :func:`volume_findings` (a compose file's bind mounts must stay inside the
work folder), :func:`mask`.
"""

from __future__ import annotations

import posixpath
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.errors import InvalidField
from labkit.findings import Finding, first_error
from labkit.i18n import tr

__all__ = [
    "COMPOSE_NAME",
    "DEFAULT_IMAGES",
    "ENV_NAME",
    "PROJECT",
    "SECRET_VARS",
    "SERVICES",
    "SeafileSpec",
    "build_spec",
    "compose_argv",
    "compose_text",
    "config_argv",
    "down_argv",
    "env_text",
    "health_ok",
    "inside",
    "mask",
    "missing_secrets",
    "new_secrets",
    "parse_config_errors",
    "parse_env",
    "port_findings",
    "pull_argv",
    "spec_findings",
    "up_argv",
    "volume_findings",
]

PROJECT = "labkit-seafile"
COMPOSE_NAME = "docker-compose.yml"
ENV_NAME = ".env"
SERVICES = ("db", "memcached", "seafile")
#: The compose file's variables holding passwords (values only in the 0600 ``.env``).
SECRET_VARS = ("SEAFILE_DB_ROOT_PASSWORD", "SEAFILE_ADMIN_PASSWORD")
DEFAULT_IMAGES = {
    "seafile_image": "seafileltd/seafile-mc:11.0-latest",
    "db_image": "mariadb:10.11",
    "memcached_image": "memcached:1.6.18",
}

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_EMAIL = re.compile(rf"[A-Za-z0-9._%+\-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")
_IMAGE = re.compile(r"[a-z0-9]+(?:[._\-/][a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})?")
_TZ = re.compile(r"[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)*")
_ENV_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


@dataclass(frozen=True)
class SeafileSpec:
    """The form's fields, validated (:func:`build_spec`); ``folder`` is the absolute work folder."""

    folder: str
    hostname: str
    http_port: int
    admin_email: str
    data_dir: str
    seafile_image: str
    db_image: str
    memcached_image: str
    time_zone: str

    @property
    def project_dir(self) -> str:
        """Where the compose file and its ``.env`` live: ``<folder>/seafile``."""
        return posixpath.join(self.folder, "seafile")

    @property
    def compose_path(self) -> str:
        return posixpath.join(self.project_dir, COMPOSE_NAME)

    @property
    def env_path(self) -> str:
        return posixpath.join(self.project_dir, ENV_NAME)

    @property
    def data_path(self) -> str:
        """The data folder, absolute (inside :attr:`folder`, checked by :func:`spec_findings`)."""
        return posixpath.normpath(posixpath.join(self.folder, self.data_dir))

    @property
    def images(self) -> tuple[str, str, str]:
        return (self.db_image, self.memcached_image, self.seafile_image)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"


def inside(folder: str, path: str) -> bool:
    """``path`` (absolute or relative to ``folder``) lies strictly inside ``folder``."""
    full = posixpath.normpath(posixpath.join(folder, path))
    root = posixpath.normpath(folder)
    return full != root and full.startswith(root.rstrip("/") + "/")


def _port_finding(value: object) -> list[Finding]:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        msg = tr("不是端口号（1–65535）", "is not a port number (1–65535)")
        return [Finding("http_port", "error", msg, tr("例如 8000", "e.g. 8000"), code="port.invalid")]
    if value < 1024:
        msg = tr(
            "是特权端口（< 1024），容易与系统服务冲突",
            "is a privileged port (< 1024); it may clash with system services",
        )
        return [Finding("http_port", "warning", msg, tr("例如 8000", "e.g. 8000"), code="port.privileged")]
    return []


def _text_finding(
    field: str, value: object, rx: re.Pattern[str], problem: str, example: str
) -> list[Finding]:
    if isinstance(value, str) and rx.fullmatch(value) and len(value) <= 253:
        return []
    msg = problem
    return [Finding(field, "error", msg, tr("例如 {e}", "e.g. {e}", e=example), code=f"{field}.invalid")]


def _data_dir_finding(folder: object, data_dir: object) -> list[Finding]:
    ok = isinstance(data_dir, str) and data_dir.strip() and "\x00" not in data_dir and "$" not in data_dir
    if ok and isinstance(folder, str) and inside(folder, data_dir.strip()):  # type: ignore[union-attr]
        return []
    msg = tr("不在工作文件夹 {f} 里面", "is not inside the work folder {f}", f=folder)
    fix = tr(
        "写工作文件夹里的相对路径，例如 seafile-data（数据库和文件都放在这里）",
        "use a path relative to the work folder, e.g. seafile-data (database and files live there)",
    )
    return [Finding("data_dir", "error", msg, fix, code="data_dir.outside")]


def spec_findings(fields: Mapping[str, Any]) -> list[Finding]:
    """Every rule on the fields; each finding names its field."""
    out = _port_finding(fields.get("http_port"))
    out += _text_finding(
        "hostname",
        fields.get("hostname"),
        _HOSTNAME,
        tr("不是主机名", "is not a host name"),
        "seafile.local",
    )
    out += _text_finding(
        "admin_email",
        fields.get("admin_email"),
        _EMAIL,
        tr("不是电子邮件地址", "is not an email address"),
        "admin@example.com",
    )
    out += _data_dir_finding(fields.get("folder"), fields.get("data_dir"))
    for key, default in DEFAULT_IMAGES.items():
        out += _text_finding(
            key, fields.get(key), _IMAGE, tr("不是镜像名:标签", "is not an image name:tag"), default
        )
    out += _text_finding(
        "time_zone",
        fields.get("time_zone"),
        _TZ,
        tr("不是时区名", "is not a time zone name"),
        "Asia/Shanghai",
    )
    return out


def build_spec(
    folder: str,
    *,
    hostname: object = "seafile.local",
    http_port: object = 8000,
    admin_email: object = "admin@example.com",
    data_dir: object = "seafile-data",
    seafile_image: object = DEFAULT_IMAGES["seafile_image"],
    db_image: object = DEFAULT_IMAGES["db_image"],
    memcached_image: object = DEFAULT_IMAGES["memcached_image"],
    time_zone: object = "Asia/Shanghai",
) -> SeafileSpec:
    """The validated spec; the first ``error`` finding becomes :class:`InvalidField` (its field)."""
    fields = dict(
        folder=folder,
        hostname=hostname,
        http_port=http_port,
        admin_email=admin_email,
        data_dir=data_dir,
        seafile_image=seafile_image,
        db_image=db_image,
        memcached_image=memcached_image,
        time_zone=time_zone,
    )
    bad = first_error(spec_findings(fields))
    if bad is not None:
        raise InvalidField(bad.field, fields.get(bad.field), bad.message, bad.fix)
    return SeafileSpec(
        folder=posixpath.normpath(folder),
        hostname=str(hostname),
        http_port=int(str(http_port).strip()),
        admin_email=str(admin_email),
        data_dir=str(data_dir).strip(),
        seafile_image=str(seafile_image),
        db_image=str(db_image),
        memcached_image=str(memcached_image),
        time_zone=str(time_zone),
    )


def _q(value: str) -> str:
    """A YAML double-quoted scalar (the values are validated; quoting keeps ``:`` and ``@`` safe)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compose_text(spec: SeafileSpec) -> str:
    """The compose file: three services, bind mounts under the data folder, ``${VAR}`` secrets."""
    db, shared = posixpath.join(spec.data_path, "db"), posixpath.join(spec.data_path, "shared")
    return f"""\
# Seafile (SaaS example, course 4.4), generated by labkit. Passwords: ${{VAR}} from .env (0600).
version: "2.4"
services:
  db:
    image: {_q(spec.db_image)}
    environment:
      MYSQL_ROOT_PASSWORD: "${{SEAFILE_DB_ROOT_PASSWORD}}"
      MYSQL_LOG_CONSOLE: "true"
      MARIADB_AUTO_UPGRADE: "1"
    volumes:
      - {_q(db + ":/var/lib/mysql")}
    restart: unless-stopped
  memcached:
    image: {_q(spec.memcached_image)}
    entrypoint: ["memcached", "-m", "256"]
    restart: unless-stopped
  seafile:
    image: {_q(spec.seafile_image)}
    ports:
      - {_q(f"{spec.http_port}:80")}
    volumes:
      - {_q(shared + ":/shared")}
    environment:
      DB_HOST: "db"
      DB_ROOT_PASSWD: "${{SEAFILE_DB_ROOT_PASSWORD}}"
      TIME_ZONE: {_q(spec.time_zone)}
      SEAFILE_ADMIN_EMAIL: {_q(spec.admin_email)}
      SEAFILE_ADMIN_PASSWORD: "${{SEAFILE_ADMIN_PASSWORD}}"
      SEAFILE_SERVER_LETSENCRYPT: "false"
      SEAFILE_SERVER_HOSTNAME: {_q(spec.hostname)}
    depends_on:
      - db
      - memcached
    restart: unless-stopped
"""


def new_secrets() -> dict[str, str]:
    """Fresh random passwords for :data:`SECRET_VARS` (URL-safe: no quoting problems in ``.env``)."""
    return {name: secrets.token_urlsafe(24) for name in SECRET_VARS}


def env_text(values: Mapping[str, str]) -> str:
    """The ``.env`` file (``NAME=value`` lines)."""
    return "".join(f"{k}={values[k]}\n" for k in SECRET_VARS)


def parse_env(text: str) -> dict[str, str]:
    """``NAME=value`` lines of an ``.env`` file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _ENV_LINE.fullmatch(line.strip())
        if m and not line.lstrip().startswith("#"):
            out[m[1]] = m[2]
    return out


def missing_secrets(values: Mapping[str, str]) -> list[str]:
    return [k for k in SECRET_VARS if not values.get(k)]


def mask(text: str, values: Sequence[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (for tool output kept as evidence)."""
    for value in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


# ---------------------------------------------------------------------------------------------
# Compose command lines: Debian's docker-compose v1 first, docker compose v2 as the alternative
# ---------------------------------------------------------------------------------------------
def compose_argv(spec: SeafileSpec, *, v2: bool = False) -> list[str]:
    """The common prefix: project name, the ``.env`` file and the compose file."""
    tool = ["docker", "compose"] if v2 else ["docker-compose"]
    return [*tool, "-p", PROJECT, "--env-file", spec.env_path, "-f", spec.compose_path]


def config_argv(spec: SeafileSpec, *, v2: bool = False) -> list[str]:
    """``config -q``: parse, interpolate and validate; print nothing (so no password) on success."""
    return [*compose_argv(spec, v2=v2), "config", "-q"]


def up_argv(spec: SeafileSpec, *, v2: bool = False) -> list[str]:
    return [*compose_argv(spec, v2=v2), "up", "-d"]


def down_argv(spec: SeafileSpec, *, v2: bool = False) -> list[str]:
    """``down``: stop and remove the containers and the network; the data folder stays."""
    return [*compose_argv(spec, v2=v2), "down"]


def pull_argv(image: str) -> list[str]:
    """What to run where a registry is reachable and an image is missing."""
    return ["docker", "pull", image]


_SERVICE_PATH = re.compile(r"services\.([A-Za-z0-9_\-]+)(?:\.([A-Za-z_]+))?")
_OPTION_IN_SERVICE = re.compile(r'"([A-Za-z_]+)" option in service "([A-Za-z0-9_\-]+)"')
_FILE_LINE = re.compile(r"line (\d+)")
#: ``yaml.parser.ParserError: `` before the YAML complaint: a Python class name, not for the student.
_PY_ERROR = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*Error:\s*")
_FIX = ("按提示改正 docker-compose.yml 后再检查", "fix docker-compose.yml as the tool says, then check again")


def _service_field(text: str) -> str | None:
    m = _OPTION_IN_SERVICE.search(text)
    if m:
        return f"services.{m[2]}.{m[1]}"
    m = _SERVICE_PATH.search(text)
    if m:
        return f"services.{m[1]}" + (f".{m[2]}" if m[2] else "")
    return None


def parse_config_errors(output: str) -> list[Finding]:
    """The compose tool's complaint (v1 or v2, with or without ``ERROR:``) → findings.

    A line naming a service option (``Unsupported config option for services.db: 'restrt'``,
    ``Invalid interpolation format for "environment" option in service "seafile"``) becomes a
    finding on that field (``services.db``, ``services.seafile.environment``); anything else (a
    YAML error) is one finding on ``compose`` with the tool's own words and its line number.
    """
    fix = tr(*_FIX)
    out: list[Finding] = []
    rest: list[str] = []
    for raw in output.splitlines():
        text = _PY_ERROR.sub("", raw.strip().removeprefix("ERROR:").strip())
        if not text or text.lower().startswith(("the compose file", "for more on the compose file")):
            continue
        where = _service_field(text)
        if where is None:
            rest.append(text)
            continue
        out.append(Finding(where, "error", text, fix, code="compose.invalid"))
    if rest or not out:
        text = " ".join(rest) or tr("compose 工具拒绝了这个文件", "the compose tool rejected the file")
        line = _FILE_LINE.search(text)
        out.append(
            Finding(
                "compose", "error", text, fix, code="compose.invalid", line=int(line[1]) if line else None
            )
        )
    return out


def _host_side(entry: Any) -> str | None:
    """The host path of a volume entry (short ``host:container[:mode]`` or long form), if a bind."""
    if isinstance(entry, Mapping):
        return (
            str(entry.get("source")) if entry.get("type", "bind") == "bind" and entry.get("source") else None
        )
    if not isinstance(entry, str) or ":" not in entry:
        return None
    host = entry.split(":", 1)[0]
    return host if host.startswith(("/", ".", "~")) else None


def _port_number(entry: Any) -> object:
    """The published (host) port of a ``ports`` entry, as written (``None`` when there is none)."""
    if isinstance(entry, Mapping):
        return entry.get("published")
    parts = str(entry).split("/", 1)[0].split(":")
    return parts[-2] if len(parts) >= 2 else None


def port_findings(compose: Mapping[str, Any]) -> list[Finding]:
    """Each published port must be a port number (docker-compose 1.29's ``config`` lets 80000 by)."""
    out: list[Finding] = []
    services = compose.get("services") if isinstance(compose, Mapping) else None
    for name, service in (services or {}).items():
        for i, entry in enumerate((service or {}).get("ports") or []):
            value = _port_number(entry)
            text = str(value).strip()
            if value is None or (text.isdigit() and 1 <= int(text) <= 65535):
                continue
            msg = tr("{v} 不是端口号（1–65535）", "{v} is not a port number (1–65535)", v=value)
            fix = tr("例如 8000:80", "e.g. 8000:80")
            out.append(Finding(f"services.{name}.ports[{i}]", "error", msg, fix, code="port.invalid"))
    return out


def volume_findings(compose: Mapping[str, Any], folder: str, project_dir: str) -> list[Finding]:
    """Each bind mount of a compose file (as parsed) must lie inside the work folder.

    Relative paths count from ``project_dir`` (the compose file's folder), as the tool reads them.
    """
    out: list[Finding] = []
    services = compose.get("services") if isinstance(compose, Mapping) else None
    for name, service in (services or {}).items():
        for i, entry in enumerate((service or {}).get("volumes") or []):
            host = _host_side(entry)
            if host is None:
                continue
            full = posixpath.normpath(posixpath.join(project_dir, host))
            if host.startswith("~") or not inside(folder, full):
                msg = tr(
                    "挂载 {h} 不在工作文件夹 {f} 里",
                    "bind mount {h} is outside the work folder {f}",
                    h=host,
                    f=folder,
                )
                fix = tr(
                    "放到工作文件夹里，例如 seafile-data/…",
                    "keep it inside the work folder, e.g. seafile-data/…",
                )
                out.append(Finding(f"services.{name}.volumes[{i}]", "error", msg, fix, code="volume.outside"))
    return out


def health_ok(status: int, location: str) -> bool:
    """Seafile's web answers ``/`` with 200 or a redirect to its login page."""
    return status == 200 or (status in (301, 302, 303, 307, 308) and "login" in location)
