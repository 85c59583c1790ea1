"""Talking to a running Jupyter Server over real HTTP, as a browser would (chapter 4.4).

:class:`Browser` keeps a cookie jar (``http.cookiejar``), goes to no proxy and follows no
redirect (a ``302`` after ``POST /login`` is the answer we judge). The login flow of
jupyter_server 2: ``GET /login`` sets the ``_xsrf`` cookie; ``POST /login`` with ``_xsrf`` and
``password`` answers ``302`` plus the login cookie when the password is right, ``401`` (the
login page again) when it is wrong; the API then answers ``200`` with that cookie and ``403``
without it. Writes to the API (``POST /api/kernels``, ``DELETE``) carry the ``X-XSRFToken``
header. :func:`run_in_kernel` executes code in a kernel over the kernel's websocket
(``/api/kernels/ID/channels``, the Jupyter messaging protocol as JSON, websocket-client, which
jupyter_server itself depends on).

Passwords come in as :class:`labkit.logic.jupyter_server.Password` and are revealed only into
the request body; nothing here logs, returns or raises them.
"""

from __future__ import annotations

import http.cookiejar
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from labkit.logic import jupyter_server as lj

__all__ = ["Answer", "Browser", "port_accepts", "run_in_kernel"]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kw: Any) -> None:
        return None


class Browser:
    """One visitor of ``base`` (``http://HOST:PORT/``) with its own cookies."""

    def __init__(self, base: str, timeout: float = 10) -> None:
        self.base = base
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.jar),
            _NoRedirect(),
        )

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer | None:
        """One request; ``None`` when nothing answers (refused, timed out)."""
        req = urllib.request.Request(
            urllib.parse.urljoin(self.base, path), data=data, method=method, headers=headers or {}
        )
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.jar if c.name == name), "")

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def login(self, password: lj.Password) -> dict[str, Any]:
        """``GET /login`` then ``POST /login``: the status, the outcome and where it redirected."""
        first = self.request("login")
        xsrf = self.cookie("_xsrf")
        if first is None:
            return {"status": None, "outcome": "no-answer"}
        form = urllib.parse.urlencode({"_xsrf": xsrf, "password": password.reveal()}).encode()
        answer = self.request(
            "login?next=%2Fapi%2Fstatus",
            method="POST",
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        del form
        if answer is None:
            return {"status": None, "outcome": "no-answer"}
        location = answer.headers.get("location", "")
        return {
            "status": answer.status,
            "location": location,
            "outcome": lj.login_outcome(answer.status, location),
        }

    def api(self, path: str, *, method: str = "GET", body: Any = None) -> Answer | None:
        """An API call with this visitor's cookies and its ``_xsrf`` for writes."""
        headers = {"X-XSRFToken": self.cookie("_xsrf")} if method != "GET" else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.request(path, method=method, data=data, headers=headers)


def port_accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_in_kernel(browser: Browser, kernel_id: str, code: str, timeout: float = 120) -> dict[str, Any]:
    """Execute ``code`` in the kernel over its websocket; the replies collected (``kernel_output``)."""
    import websocket  # websocket-client, a dependency of jupyter_server

    ws_base = "ws" + browser.base[len("http") :]
    session = uuid.uuid4().hex
    url = urllib.parse.urljoin(ws_base, f"api/kernels/{kernel_id}/channels?session_id={session}")
    parts = urllib.parse.urlsplit(url)
    # our own socket: straight to the server, whatever http_proxy says (websocket-client would
    # otherwise take a proxy from the environment)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=timeout)
    try:
        conn = websocket.create_connection(
            url, timeout=timeout, header=[f"Cookie: {browser.cookie_header()}"], socket=sock
        )
    except BaseException:
        sock.close()
        raise
    messages: list[dict[str, Any]] = []
    try:
        request = lj.execute_request(code, session)
        msg_id = request["header"]["msg_id"]
        conn.send(json.dumps(request))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = conn.recv()
            if isinstance(raw, bytes):  # binary frames carry buffers only: none are asked for
                continue
            messages.append(json.loads(raw))
            got = lj.kernel_output(messages, msg_id)
            if got["status"] is not None and got["idle"]:
                return got
        got = lj.kernel_output(messages, msg_id)
        got["timed_out"] = True
        return got
    finally:
        conn.close()
