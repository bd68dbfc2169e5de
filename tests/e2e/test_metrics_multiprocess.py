"""`switchyard serve --workers 2`: one /metrics page aggregates every worker (prometheus-client multiprocess mode)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import running_server


def _health_count(page: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels.get("route") == "/health"
    )


def _serving_pids(folder: Path) -> set[str]:
    # A worker writes histogram_<pid>.db once it has timed a request.
    return {path.stem.rsplit("_", 1)[-1] for path in folder.glob("histogram_*.db")}


@pytest.mark.slow
def test_metrics_aggregate_across_workers(tmp_path: Path) -> None:
    """Requests answered by either worker all show up on the page, whichever worker serves the scrape."""
    folder = tmp_path / "data" / "prometheus-multiproc"
    env = {"SWITCHYARD_HTTP_WORKERS": "2", "SWITCHYARD_APP_DATA_DIR": str(tmp_path / "data")}
    with running_server(tmp_path, env, timeout_s=60) as server, httpx.Client(base_url=server.base_url) as client:
        # running_server polled /health until a worker answered, and so does the banner's own probe: once the banner
        # is out, every startup probe is counted. Count from the page then, not from zero.
        deadline = time.monotonic() + 10
        while "listening on" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        before = _health_count(client.get("/metrics").text)
        sent = 0

        def hit(_: int) -> int:
            # A fresh connection each time, so the kernel hands connections to both workers.
            return httpx.get(f"{server.base_url}/health", timeout=5.0).status_code

        # Which worker accepts a connection is the kernel's choice: send concurrent batches until both have served
        # (bounded), instead of assuming a fixed number of requests reaches each.
        deadline = time.monotonic() + 20
        with ThreadPoolExecutor(max_workers=8) as pool:
            while sent < 30 or (len(_serving_pids(folder)) < 2 and time.monotonic() < deadline):
                assert list(pool.map(hit, range(10))) == [200] * 10
                sent += 10
        pages = [client.get("/metrics").text for _ in range(4)]
        pids = _serving_pids(folder)
    assert len(pids) >= 2, sorted(path.name for path in folder.glob("*"))
    assert all(_health_count(page) - before == sent for page in pages)
