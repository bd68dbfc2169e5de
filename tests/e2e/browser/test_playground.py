"""The playground in a real browser: it streams a chat from a fake model, survives a reload mid-answer without losing
or repeating text (resuming the same stream after its last seq), stops a stream; and /docs renders its operations
with every request outside this machine blocked."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.support.app import auth_headers, mint
from tests.support.server import RunningServer, running_server

WORDS = " ".join(f"word{i}" for i in range(40))  # fake/slow echoes a word per 50 ms: two seconds of answer
ANSWER = "#transcript .message.assistant"


def _sign_in(page: Page, server: RunningServer, model: str) -> None:
    page.goto(f"{server.base_url}/playground")
    page.fill("#token", mint("alice"))
    page.click("#use-token")
    expect(page.locator("#who")).to_have_text("signed in")
    page.select_option("#model", model)


def _ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.click("#send")


def test_a_chat_streams_and_a_reload_mid_answer_resumes_the_same_stream(page: Page, server: RunningServer) -> None:
    """Reloaded after a few words, the page resumes after its last seq: the answer ends whole, each word once."""
    _sign_in(page, server, "fake/slow")
    _ask(page, WORDS)
    answer = page.locator(ANSWER).last
    expect(answer).to_have_attribute("data-state", "streaming")
    expect(answer).to_contain_text("word3")
    stream_id = answer.get_attribute("data-stream-id")
    assert stream_id is not None

    resumed: list[str] = []
    page.on("request", lambda request: resumed.append(request.headers.get("last-event-id", "")))
    page.reload()
    answer = page.locator(ANSWER).last
    expect(answer).to_have_attribute("data-state", "done", timeout=20_000)
    assert answer.locator(".text").inner_text() == WORDS
    assert any(value not in ("", "0") for value in resumed)  # resumed after a seq, not from the start
    seqs = [int(seq) for seq in page.locator("#events li[data-seq]").evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == sorted(set(seqs))  # the events after the reload: in order, none twice
    status = httpx.get(f"{server.base_url}/api/v1/streams/{stream_id}", headers=auth_headers()).json()
    assert status["data"]["status"] == "done"
    assert page.locator("#transcript .message.user").last.inner_text() == WORDS  # the conversation survived too


def test_stop_cancels_the_stream(page: Page, server: RunningServer) -> None:
    """Stop mid-answer: the stream ends `cancelled` on the server, the answer keeps what arrived, marked stopped."""
    _sign_in(page, server, "fake/slow")
    _ask(page, WORDS)
    answer = page.locator(ANSWER).last
    expect(answer).to_contain_text("word2")
    stream_id = answer.get_attribute("data-stream-id")
    page.click("#stop")
    expect(answer).to_have_attribute("data-state", "cancelled")
    assert len(answer.locator(".text").inner_text()) < len(WORDS)
    expect(page.locator("#send")).to_be_enabled()
    status = httpx.get(f"{server.base_url}/api/v1/streams/{stream_id}", headers=auth_headers()).json()
    assert status["data"]["status"] == "cancelled"


def test_usage_panel_charts_the_days(page: Page, server: RunningServer) -> None:
    """After a chat, the usage tab draws a bar per day (inline SVG) and a table row with its tokens."""
    _sign_in(page, server, "fake/echo")
    _ask(page, "count these words")
    expect(page.locator(ANSWER).last).to_have_attribute("data-state", "done")
    page.click("nav button[data-tab=usage]")
    expect(page.locator("#usage-chart svg g.day").first).to_be_visible()
    expect(page.locator("#usage-table tbody tr").first).to_be_visible()


def test_docs_render_every_operation_offline(page: Page, server: RunningServer) -> None:
    """With every request to another host aborted, /docs still renders the operations (Swagger UI from the package)."""
    blocked: list[str] = []

    def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(f"{server.base_url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock-summary-path", has_text="/api/v1/chat").count() >= 1
    assert page.locator(".opblock").count() >= 20
    assert blocked == []  # nothing even tried to leave the machine


def test_images_tab_generates_an_image(page: Page, server: RunningServer) -> None:
    """The images tab draws with an image model and shows the picture inline (base64, no second request)."""
    _sign_in(page, server, "fake/echo")
    page.click("nav button[data-tab=images]")
    page.select_option("#image-model", "fake/image")
    page.fill("#image-prompt", "a lighthouse")
    page.click("#draw")
    expect(page.locator("#gallery img")).to_have_count(1)
    assert (page.locator("#gallery img").get_attribute("src") or "").startswith("data:image/")


def test_make_run_gives_a_working_chat_with_the_development_token(
    page: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`switchyard serve` in local with no key (what `make run` starts): the page's development-token button signs
    in, and a chat streams to its end."""
    env = {"SWITCHYARD_ENV": "local", "SWITCHYARD_AUTH_JWT_SECRET": "", "SWITCHYARD_LOGGING_LEVEL": "WARNING"}
    data_dir = tmp_path_factory.mktemp("local")
    with running_server(data_dir, {**env, "SWITCHYARD_APP_DATA_DIR": str(data_dir)}) as local:
        page.goto(f"{local.base_url}/playground")
        page.click("#dev-token")
        expect(page.locator("#who")).to_have_text("signed in")
        page.select_option("#model", "fake/echo")
        _ask(page, "hello from the playground")
        answer = page.locator(ANSWER).last
        expect(answer).to_have_attribute("data-state", "done")
        assert answer.locator(".text").inner_text() == "hello from the playground"
