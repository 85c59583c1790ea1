"""One TCP connect, timed: ``python -I tcpprobe.py HOST PORT [TIMEOUT]`` prints one JSON line.

:class:`labkit.steps.reach.ReachPeers` runs this file as a command (through the runner, with the
same argv prefix as ``ping``), so the connection starts where the peer is meant to be seen from:
inside ``lab.sh``'s network namespace (``ip netns exec NS …``) as well as on a student's machine.
An in-process ``socket.connect`` would always start in the kernel's own namespace.

The time is measured around ``connect()`` only (SYN → SYN/ACK → ACK), not the interpreter's start,
so it is comparable to ping's round-trip time. Standard library only (it runs with ``-I``).

Output: ``{"connected": true, "ms": 0.412}`` or ``{"connected": false, "error": "refused"}`` with
``error`` one of ``refused``, ``timeout``, ``unreachable``, ``error``. Exit status 0 when connected,
1 when not, 2 on bad arguments.
"""

from __future__ import annotations

import errno
import json
import socket
import sys
import time


def probe(host: str, port: int, timeout: float) -> dict[str, object]:
    """Connect once to ``host:port`` and close; the connect time in ms or the kind of failure."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        t0 = time.perf_counter()
        sock.connect((host, port))
        ms = (time.perf_counter() - t0) * 1000
        return {"connected": True, "ms": round(ms, 3)}
    except ConnectionRefusedError:
        return {"connected": False, "error": "refused"}
    except TimeoutError:
        return {"connected": False, "error": "timeout"}
    except OSError as exc:
        unreachable = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL)
        return {"connected": False, "error": "unreachable" if exc.errno in unreachable else "error"}
    finally:
        sock.close()


def main(argv: list[str]) -> int:
    try:
        host, port = argv[0], int(argv[1])
        timeout = float(argv[2]) if len(argv) > 2 else 3.0
        if not 0 < port < 65536 or not 0 < timeout <= 60:
            raise ValueError
    except (IndexError, ValueError):
        print("usage: tcpprobe.py HOST PORT [TIMEOUT_S]", file=sys.stderr)
        return 2
    result = probe(host, port, timeout)
    print(json.dumps(result), flush=True)
    return 0 if result["connected"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
