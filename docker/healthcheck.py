"""Container HEALTHCHECK probe: exit 0 when the service answers 200 on its readiness path.

    python -I /opt/healthcheck.py PORT_VARIABLE DEFAULT_PORT [PATH]

The port comes from the service's own variable (e.g. CLASSIFIER_PORT), so a port changed
with the environment is probed where the server listens. Standard library only: it runs in
every Python image, with or without curl. Any answer other than 200 (503 while the model
loads), a refused connection or a timeout is unhealthy (exit 1).
"""

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    port = os.environ.get(argv[1]) or argv[2]
    path = argv[3] if len(argv) == 4 else "/readyz"
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(
            url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT_S", "2"))
        ) as reply:
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"healthcheck {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
