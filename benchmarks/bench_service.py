"""The service's speed and behaviour under load (issue 21 goals on a 2-core machine: /predict of 1000 cards
<= 0.5 s; /design p50 <= 10 s at the default budget; a burst of concurrent /design requests all answered 200 or
503, none lost, no other status).

    python benchmarks/bench_service.py [--registry models] [--repeats 5] [--designs 10] [--burst 30]

Starts `python -m alloy_hydra.service` on a free 127.0.0.1 port over the registry (build it first with
`python -m alloy_hydra.registry demo`), then times requests from a local client. Prints min / median / p95.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACTION_PLAN = {"target_YS": 260, "target_UTS": 320, "target_EL": 12, "alloy_family": "AA5xxx", "casting": "DC"}
ACTION_PLAN["max_cost"] = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cards(n: int) -> list[dict]:
    import pandas as pd

    demo = pd.read_csv(ROOT / "alloy_hydra" / "data" / "demo_cards.csv", dtype=str, keep_default_na=False)
    return pd.concat([demo] * (n // len(demo) + 1)).head(n).to_dict("records")


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return f"min {xs[0]:.3f} s, median {statistics.median(xs):.3f} s, p95 {p95:.3f} s (n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", default=str(ROOT / "models"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--designs", type=int, default=10)
    ap.add_argument("--burst", type=int, default=30)
    a = ap.parse_args()
    import httpx

    if not (Path(a.registry) / "index.json").exists():
        sys.exit(f"{a.registry} has no registry: python -m alloy_hydra.registry demo")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "alloy_hydra.service", "--registry", a.registry, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=5).json()["ready"]:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = httpx.Client(base_url=url, timeout=600)
        print("models:", client.get("/health").json()["models"])
        client.post("/predict", json={"cards": cards(1)})  # first use loads the versions
        for n in (1, 1000):
            body = {"cards": cards(n)}
            print(f"/predict {n:>4} cards: {summary(timed(lambda b=body: client.post('/predict', json=b), a.repeats))}")
        times, statuses = [], []
        for _ in range(a.designs):
            t0 = time.perf_counter()
            r = client.post("/design", json=ACTION_PLAN)
            times.append(time.perf_counter() - t0)
            statuses.append(r.status_code)
        print(f"/design (NSGA-II 100 x 200, one at a time): {summary(times)}; statuses {sorted(set(statuses))}")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.burst) as pool:
            codes = list(pool.map(lambda _: client.post("/design", json=ACTION_PLAN).status_code, range(a.burst)))
        wall = time.perf_counter() - t0
        counts = {c: codes.count(c) for c in sorted(set(codes))}
        lost = a.burst - len(codes)
        other = sum(v for c, v in counts.items() if c not in (200, 503))
        print(f"burst of {a.burst} concurrent /design: {counts} in {wall:.1f} s; lost {lost}; other statuses {other}")
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
