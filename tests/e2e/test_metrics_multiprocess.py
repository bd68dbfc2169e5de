"""`switchyard serve --workers 2`: one /metrics page aggregates every worker (prometheus-client multiprocess mode)."""

from __future__ import annotations

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


@pytest.mark.slow
def test_metrics_aggregate_across_workers(tmp_path: Path) -> None:
    """Requests answered by either worker all show up on the page, whichever worker serves the scrape."""
    folder = tmp_path / "data" / "prometheus-multiproc"
    env = {"SWITCHYARD_HTTP_WORKERS": "2", "SWITCHYARD_APP_DATA_DIR": str(tmp_path / "data")}
    with running_server(tmp_path, env, timeout_s=60) as server, httpx.Client(base_url=server.base_url) as client:
        # running_server polled /health until a worker answered: count from the page, not from zero.
        before = _health_count(client.get("/metrics").text)
        for _ in range(30):
            # A fresh connection each time, so both workers get a share of the requests.
            assert httpx.get(f"{server.base_url}/health", timeout=5.0).status_code == 200
        pages = [client.get("/metrics").text for _ in range(4)]
        # Each worker keeps its values in files named by its pid: two workers, two pids.
        pids = {path.stem.rsplit("_", 1)[-1] for path in folder.glob("*.db")}
    assert len(pids) >= 2, sorted(path.name for path in folder.glob("*"))
    assert all(_health_count(page) - before == 30 for page in pages)
