"""Container health check: exit 0 when the service answers ``/healthz`` with 200.

Usage: ``python healthcheck.py PORT_VARIABLE DEFAULT_PORT [PATH]``. The port is read from
the named environment variable (``METRICS_PORT``, ``GATEWAY_PORT``, ``INTAKE_PORT``) so that
an operator who moves the service moves its health check with it. Standard library only:
the slim image has no curl, and the check must not depend on the project's own imports.
"""

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    port_variable, default_port = argv[1], argv[2]
    path = argv[3] if len(argv) > 3 else "/healthz"
    port = os.environ.get(port_variable) or default_port
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
