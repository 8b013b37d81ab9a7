"""Start the design assistant's web page.

    python -m alloy_hydra.ui [--registry models] [--port 8501] [--host 127.0.0.1]

Runs `streamlit run` on alloy_hydra/webapp.py (the page) with the registry in ALLOY_HYDRA_REGISTRY; open the URL
it prints. Without published models the page says how to build the demo registry. As for the service, a host
other than 127.0.0.1 needs ALLOY_HYDRA_TOKEN, which the page then asks for before it shows anything.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import RegistryConfig

REGISTRY_ENV = "ALLOY_HYDRA_REGISTRY"  # the page reads its registry from here
TOKEN_ENV = "ALLOY_HYDRA_TOKEN"  # as the service: required beyond 127.0.0.1, asked for by the page


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.ui", description=__doc__.splitlines()[0])
    ap.add_argument("--registry", default=RegistryConfig.path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8501)
    args = ap.parse_args(argv)
    if not is_loopback(args.host) and not os.environ.get(TOKEN_ENV):
        print(f"error: serving the page on {args.host} needs a token: set {TOKEN_ENV} (or use --host 127.0.0.1)")
        return 2
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        print("the web page needs the app extras: pip install -e '.[app]'")
        return 2
    page = Path(__file__).with_name("webapp.py")
    env = {**os.environ, REGISTRY_ENV: str(Path(args.registry).resolve())}
    cmd = [sys.executable, "-m", "streamlit", "run", str(page), "--server.address", args.host]
    cmd += ["--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    os.execvpe(cmd[0], cmd, env)  # streamlit replaces this process: stopping it stops the page, no orphan
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
