"""Peer benchmark: the processes under test, each started on a free loopback port and stopped afterwards.

- the fake upstream (``benchmarks.peers.upstream``), shared by every leg;
- LiteLLM's proxy from its own environment (``.tools/peers/litellm``, see ``litellm_env``), one uvicorn worker,
  a master key (auth on), no database (its spend tracking needs PostgreSQL), the model list pointed at the upstream;
- ``switchyard serve`` with the default local settings (JWT auth, metrics, the SQLite usage ledger) plus JSON logs at
  INFO, the built-in ``openai/gpt-4o-mini`` and a catalog entry for the paced stream, both pointed at the upstream.

Every server writes its log to a file in the run's temporary folder, so log I/O is paid the same way by each.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
from attrs import frozen

from benchmarks.peers.upstream import STREAM_MODEL
from tests.support.app import TEST_SECRET, mint
from tests.support.server import free_port, running_server

__all__ = ["UPSTREAM_KEY", "Running", "litellm_proxy", "switchyard", "upstream"]

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_KEY = "sk-bench-upstream"
LITELLM_KEY = "sk-bench-litellm-master"


@frozen
class Running:
    """A started server: base URL, root pid, the bearer token its clients send, and where it logs."""

    base_url: str
    pid: int
    token: str
    log_path: Path


@contextlib.contextmanager
def _process(
    command: Sequence[str], env: Mapping[str, str], health_url: str, log_path: Path, timeout_s: float = 180.0
) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health_url, timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not answer {health_url}:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def upstream(folder: Path) -> Iterator[Running]:
    """The fake OpenAI upstream."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "benchmarks.peers.upstream", "--port", str(port)]
    with _process(command, os.environ, f"{url}/health", folder / "upstream.log") as process:
        yield Running(url, process.pid, UPSTREAM_KEY, folder / "upstream.log")


_LITELLM_CONFIG = """model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{api}", api_key: "{key}"}}
  - model_name: {stream}
    litellm_params: {{model: openai/{stream}, api_base: "{api}", api_key: "{key}"}}
general_settings:
  master_key: "{master}"
"""


@contextlib.contextmanager
def litellm_proxy(folder: Path, litellm: Path, upstream_url: str) -> Iterator[Running]:
    """LiteLLM's proxy (the ``litellm`` script of its own environment), one worker."""
    config = folder / "litellm.yaml"
    config.write_text(
        _LITELLM_CONFIG.format(api=f"{upstream_url}/v1", key=UPSTREAM_KEY, stream=STREAM_MODEL, master=LITELLM_KEY)
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # the bundled price map: no fetch from the internet at start
        "LITELLM_TELEMETRY": "False",
    }
    env.pop("DATABASE_URL", None)  # no database: LiteLLM would otherwise try Prisma and PostgreSQL
    command = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    with _process(command, env, f"{url}/health/liveliness", folder / "litellm.log") as process:
        yield Running(url, process.pid, LITELLM_KEY, folder / "litellm.log")


_CATALOG = f"""
[[models]]
id = "{STREAM_MODEL}"
provider = "openai"
api = "chat"
capabilities = ["text"]
"""


@contextlib.contextmanager
def switchyard(folder: Path, upstream_url: str, workers: int = 1) -> Iterator[Running]:
    """``switchyard serve`` with ``workers`` workers; the token is a JWT signed with the server's secret."""
    data = folder / f"switchyard-{workers}w"
    data.mkdir(exist_ok=True)
    catalog = data / "catalog.toml"
    catalog.write_text(_CATALOG)
    env = {
        "SWITCHYARD_ENV": "local",
        "SWITCHYARD_APP_DATA_DIR": str(data),
        "SWITCHYARD_AUTH_JWT_SECRET": TEST_SECRET.reveal(),
        "SWITCHYARD_LOGGING_LEVEL": "INFO",
        "SWITCHYARD_LOGGING_FORMAT": "json",
        "SWITCHYARD_HTTP_WORKERS": str(workers),
        "SWITCHYARD_PROVIDERS_OPENAI_API_KEY": UPSTREAM_KEY,
        "SWITCHYARD_PROVIDERS_OPENAI_BASE_URL": f"{upstream_url}/v1",
        "SWITCHYARD_PROVIDERS_CATALOG_PATH": str(catalog),
    }
    with running_server(data, env, timeout_s=180.0) as server:
        yield Running(server.base_url, server.process.pid, mint("bench", ttl_s=6 * 3600), server.log_path)
