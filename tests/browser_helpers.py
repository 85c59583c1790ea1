"""A real JupyterLab server and a real Chromium page, for tests/test_browser.py.

Why a browser at all: the kernel-side tests (tests/test_ui.py) prove what the panels *send*; only a
real frontend proves that ipywidgets render them, that a click reaches the kernel, and that the
display-handle update of a background thread lands in the cell's outputs that JupyterLab saves.

Rules these helpers keep: the server listens on 127.0.0.1 only, with a random token; its config,
data, runtime and workspace directories are temporary (nothing of the user's ``~/.jupyter`` leaks
in or is written); JupyterLab fetches no news and checks no updates; the browser is the system
Chromium driven by Playwright (``playwright install`` is never needed).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labkit.plotfont import CJK_FONTS

CHECK_MIME = "application/vnd.labkit.check+json"

#: Flags that let Chromium run headless as root in a container without touching the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: JupyterLab user settings: render every cell (the default "contentVisibility" windowing skips
#: off-screen cells, which would make counts and full-page screenshots depend on scrolling), and no
#: toasts asking to fetch news (the page must not reach the internet, and a toast would cover cells).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def browser_or_fail() -> tuple[Any, str]:
    """``(playwright.sync_api.sync_playwright, chromium path)``; fail (or skip) when missing.

    CI installs both (``scripts/bootstrap.sh test``), so a missing browser is a broken test setup and
    fails loudly. ``LABKIT_NO_BROWSER=1`` is the explicit way to skip these tests on a machine that
    cannot have a browser; ``LABKIT_CHROMIUM`` names another Chromium-based binary.
    """
    if os.environ.get("LABKIT_NO_BROWSER") == "1":
        pytest.skip("LABKIT_NO_BROWSER=1: browser tests skipped on request")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Python package 'playwright' is missing: run `scripts/bootstrap.sh test` (or "
            "`.venv/bin/pip install -e '.[test]'`); never `playwright install`. Set LABKIT_NO_BROWSER=1 "
            "to skip the browser tests.",
            pytrace=False,
        )
    chromium = os.environ.get("LABKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not (Path(chromium).is_file() and os.access(chromium, os.X_OK)):
        pytest.fail(
            f"no Chromium at {chromium!r}: run `scripts/bootstrap.sh test` (apt-get install chromium), or "
            "point LABKIT_CHROMIUM at a Chromium/Chrome binary. Set LABKIT_NO_BROWSER=1 to skip the "
            "browser tests.",
            pytrace=False,
        )
    return sync_playwright, chromium


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab`` (its own process group) serving ``root``."""

    proc: subprocess.Popen
    port: int
    token: str
    root: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            f"{self.base}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


def start_lab(root: Path, home: Path, timeout: float = 60.0) -> LabServer:
    """Start JupyterLab on a free 127.0.0.1 port and wait until ``/api/status`` answers.

    The server runs on this interpreter (the .venv), so the ``python3`` kernelspec – whose argv
    starts with plain ``python`` – resolves to this interpreter too. ``LABKIT_LANG`` is removed so
    the kernel shows the course's default language (Chinese).
    """
    for sub in ("config", "data", "runtime"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for rel, value in LAB_SETTINGS.items():
        p = home / "config" / "lab" / "user-settings" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_LANG"}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    port, token = free_port(), secrets.token_hex(24)
    log = home / "jupyter.log"
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",  # CI and containers run as root
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LabServer(proc, port, token, root, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if server.api("status") is not None:
                return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            stop_lab(server)
            raise RuntimeError(
                f"jupyter lab did not answer /api/status in {timeout:.0f} s:\n{server.log_tail()}"
            )
        time.sleep(0.2)


def stop_lab(server: LabServer) -> None:
    """Shut the server down with its kernels; then make sure its whole process group is gone.

    Kernels run in their own sessions, so killing the server's group alone could orphan them:
    first ask the server to shut down (it stops all its kernels), then SIGTERM / SIGKILL the group.
    """
    with contextlib.suppress(Exception):
        server.api("shutdown", method="POST")
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(15)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if server.proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(10)


# -- notebook files ---------------------------------------------------------------------------
def set_parameters(nb: dict[str, Any], **values: Any) -> None:
    """Rewrite the assignments of the cell tagged ``parameters`` (what papermill would inject)."""
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            lines = "".join(cell["source"]).splitlines()
            for name, value in values.items():
                idx = [i for i, line in enumerate(lines) if line.split("=")[0].strip() == name]
                assert idx, f"parameter {name!r} not in the parameters cell"
                comment = lines[idx[0]].partition("#")[2]
                lines[idx[0]] = f"{name} = {value!r}" + (f"  #{comment}" if comment else "")
            cell["source"] = "\n".join(lines)
            return
    raise AssertionError("no cell tagged 'parameters'")


def code_notebook(*sources: str) -> dict[str, Any]:
    """A minimal nbformat-4 notebook with one code cell per source, on the ``python3`` kernel."""
    return {
        "cells": [
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s}
            for s in sources
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def checks_in(cell: dict[str, Any]) -> list[dict[str, Any]]:
    """The labkit check payloads among a saved cell's outputs."""
    return [o["data"][CHECK_MIME] for o in cell.get("outputs", []) if CHECK_MIME in o.get("data", {})]


# -- the page ---------------------------------------------------------------------------------
#: JavaScript run in the page: the notebook panel that is open, once its file and kernel are ready.
_READY_JS = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  if (!panel || !panel.sessionContext) { throw new Error('no notebook panel is open'); }
  await panel.context.ready;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) { throw new Error('the notebook has no kernel'); }
  return kernel.name;
}"""

_KERNEL_IDLE_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = panel && panel.sessionContext && panel.sessionContext.session &&
            panel.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""


def open_notebook(page: Any, server: LabServer, name: str, timeout_ms: int = 60_000) -> str:
    """Open ``name`` in JupyterLab; returns the kernel name once the kernel is connected and idle.

    ``reset`` starts from an empty workspace, so notebooks of earlier tests are not reopened.
    """
    page.goto(server.url(f"lab/tree/{name}") + "&reset", wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(
        "(n) => { const a = window.jupyterapp; const w = a && a.shell && a.shell.currentWidget;"
        " return !!w && !!w.context && w.context.path === n; }",
        arg=name,
        timeout=timeout_ms,
    )
    kernel = page.evaluate(_READY_JS)
    wait_idle(page, timeout_ms)
    return kernel


def wait_idle(page: Any, timeout_ms: int = 60_000) -> None:
    page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout_ms, polling=100)


def command(page: Any, name: str, timeout_ms: int = 120_000) -> Any:
    """Execute a JupyterLab command (``notebook:run-all-cells``, ``docmanager:save``) and await it."""
    return page.evaluate(
        """async ([name, ms]) => {
          const timer = new Promise((_, rej) => setTimeout(() => rej(new Error(name + ' timed out')), ms));
          return await Promise.race([window.jupyterapp.commands.execute(name), timer]);
        }""",
        [name, timeout_ms],
    )


def restart_and_run_all(page: Any, timeout_ms: int = 240_000) -> None:
    """ "Restart Kernel and Run All Cells…" as a student does it: the command, then the dialog's
    "Restart" button; returns once every cell ran and the kernel is idle again."""
    page.evaluate(
        "() => { window.__labkitRestartRunAll ="
        " window.jupyterapp.commands.execute('notebook:restart-run-all'); }"
    )
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.evaluate(
        """async (ms) => {
          const late = () => new Error('restart-run-all timed out');
          const timer = new Promise((_, rej) => setTimeout(() => rej(late()), ms));
          return await Promise.race([window.__labkitRestartRunAll, timer]);
        }""",
        timeout_ms,
    )
    wait_idle(page, timeout_ms)


def show_notebook(page: Any, width: int = 1280, max_height: int = 3000) -> None:
    """Scroll the notebook to its top and grow the viewport to its height (at most ``max_height``).

    JupyterLab scrolls the notebook inside a fixed-size app shell, so a ``full_page`` screenshot
    only shows one viewport: growing the viewport is what shows more cells. The cap keeps it cheap
    (the whole chapter-1 notebook is ~50,000 px tall after a run; relaying that out takes seconds).
    """
    height = page.evaluate(
        """() => {
          const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
          if (!s) { return document.body.scrollHeight; }
          s.scrollTop = 0;
          return s.scrollHeight;
        }"""
    )
    page.set_viewport_size({"width": width, "height": max(900, min(max_height, int(height) + 200))})


#: Families with Simplified Chinese glyphs (labkit.plotfont.CJK_FONTS, plus other CJK cuts).
CJK_FAMILIES = (*CJK_FONTS, "Noto Sans CJK JP", "Noto Sans CJK TC")


def rendered_fonts(page: Any, locator: Any) -> dict[str, int]:
    """Family → glyph count of the fonts Chromium really drew ``locator``'s text with.

    Asks the DevTools protocol (``CSS.getPlatformFontsForNode``), which reports the platform
    fonts after fallback: an empty box (tofu) is counted under the font that drew the box, never
    under a CJK font.
    """
    marker = f"probe-{secrets.token_hex(4)}"
    locator.evaluate("(el, m) => el.setAttribute('data-labkit-probe', m)", marker)
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": f"[data-labkit-probe='{marker}']"})
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    finally:
        cdp.detach()
    return {f["familyName"]: f["glyphCount"] for f in fonts}


def glyph_width_ratio(locator: Any, text: str) -> float:
    """Width of ``text`` in ``locator``'s computed font over the width of as many missing glyphs.

    Characters of Unicode's private use area have no glyph in any system font, so they are drawn as
    the box a missing glyph gets. A CJK glyph is one em wide, a box about 0.6 em: a ratio near 1
    means ``text`` was drawn as boxes.
    """
    return locator.evaluate(
        """(el, text) => {
          const c = document.createElement('canvas').getContext('2d');
          c.font = getComputedStyle(el).font;
          const boxes = String.fromCharCode(...Array.from(text, (_, i) => 0xE000 + i));
          return c.measureText(text).width / c.measureText(boxes).width;
        }""",
        text,
    )
