"""POST /api/v1/images/generations through the real app and container (fake vendor, the embedded media store):
images come back as URLs the caller can fetch, errors are 4xx envelopes naming the field."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image
from quart.typing import TestClientProtocol

from tests.support.app import auth_headers

PATH = "/api/v1/images/generations"


async def generate(client: TestClientProtocol, subject: str = "alice", **body: Any) -> tuple[int, dict[str, Any]]:
    payload = {"model": "fake/image", "prompt": "a lighthouse", **body}
    response = await client.post(PATH, json=payload, headers=auth_headers(subject))
    return response.status_code, await response.get_json()


async def test_generates_a_png_whose_url_serves_it(client: TestClientProtocol) -> None:
    """The envelope lists the image with its media id, URL, type and size; the URL serves that PNG to its owner
    and is a 404 for anyone else."""
    status, body = await generate(client, size="512x512")
    assert status == 200, body
    data = body["data"]
    assert data["model"] == "fake/image"
    [image] = data["images"]
    assert image["url"] == f"/api/v1/media/{image['media_id']}"
    assert (image["mime_type"], image["width"], image["height"]) == ("image/png", 512, 512)
    assert image["b64_json"] is None
    assert image["revised_prompt"] is None
    assert data["usage"] == {"images": 1, "cost_usd": 0.01, "input_tokens": 0, "output_tokens": 0}
    assert body["meta"]["extra"]["model"] == "fake/image"

    fetched = await client.get(image["url"], headers=auth_headers("alice"))
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/png"
    picture = Image.open(io.BytesIO(await fetched.get_data(as_text=False)))
    assert (picture.format, picture.size) == ("PNG", (512, 512))

    stranger = await client.get(image["url"], headers=auth_headers("mallory"))
    assert stranger.status_code == 404


async def test_n_images_with_b64_in_the_asked_format(client: TestClientProtocol) -> None:
    """``n`` images by alias, in the asked format, with their bytes inline when ``include_b64`` is set."""
    status, body = await generate(client, model="fake-image", n=2, output_format="jpeg", include_b64=True)
    assert status == 200, body
    images = body["data"]["images"]
    assert len(images) == 2
    for image in images:
        assert image["mime_type"] == "image/jpeg"
        picture = Image.open(io.BytesIO(base64.b64decode(image["b64_json"])))
        assert (picture.format, picture.size) == ("JPEG", (1024, 1024))
        fetched = await client.get(image["url"], headers=auth_headers("alice"))
        assert await fetched.get_data(as_text=False) == base64.b64decode(image["b64_json"])
    assert body["data"]["usage"]["images"] == 2


async def test_an_edit_takes_base64_input_images(client: TestClientProtocol) -> None:
    """``input_images`` (base64) make the request an edit; a broken one is a 422 naming its index."""
    source = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 200, 30)).save(source, format="PNG")
    encoded = base64.b64encode(source.getvalue()).decode()
    status, body = await generate(client, input_images=[{"b64_json": encoded, "mime_type": "image/png"}])
    assert status == 200, body
    assert (body["data"]["images"][0]["width"], body["data"]["images"][0]["height"]) == (64, 32)
    status, body = await generate(client, input_images=[{"b64_json": "not base64!", "mime_type": "image/png"}])
    assert status == 422, body
    assert body["data"]["errors"][0]["loc"] == "input_images[0].b64_json"


async def test_a_model_without_the_image_capability_is_a_422_naming_it(client: TestClientProtocol) -> None:
    """A chat model is refused with ``capability_error`` naming the model."""
    status, body = await generate(client, model="fake/echo")
    assert status == 422, body
    assert body["data"]["error"] == "capability_error"
    assert "fake/echo" in body["message"]


async def test_a_size_or_count_the_model_does_not_take_is_a_422_naming_the_allowed_values(
    client: TestClientProtocol,
) -> None:
    """Size, quality and ``n`` are checked against the model's entry; the error names the field and what it takes."""
    status, body = await generate(client, size="333x333")
    assert status == 422, body
    assert body["data"]["errors"] == [{"loc": "size", "msg": body["data"]["errors"][0]["msg"]}]
    assert "1024x1024" in body["data"]["errors"][0]["msg"]
    status, body = await generate(client, quality="ultra")
    assert status == 422, body
    assert body["data"]["errors"][0]["loc"] == "quality"
    status, body = await generate(client, n=11)
    assert status == 422, body
    assert body["data"]["errors"][0]["loc"] == "n"


async def test_a_misspelt_field_is_a_422_naming_it(client: TestClientProtocol) -> None:
    """The body is strict: an unknown key is named."""
    status, body = await generate(client, sizes="512x512")
    assert status == 422, body
    assert "sizes" in str(body["data"]["errors"])


async def test_a_policy_refusal_is_a_422_with_the_vendors_reason(client: TestClientProtocol) -> None:
    """A content-policy refusal is ``content_policy`` (422) on the prompt, with the vendor's reason."""
    status, body = await generate(client, metadata={"fake_error": "content_policy"})
    assert status == 422, body
    assert body["data"]["error"] == "content_policy"
    assert body["data"]["errors"][0]["loc"] == "prompt"
    assert "content policy" in body["data"]["errors"][0]["msg"]


async def test_a_rate_limit_then_success_is_retried_server_side(client: TestClientProtocol) -> None:
    """A vendor 429 once is retried by the server: the client sees 200 and ``meta.extra.retries == 1``."""
    metadata = {"fake_error": "rate_limited", "fake_retry_after": "0", "fake_fail_times": "1", "fake_key": "once"}
    status, body = await generate(client, metadata=metadata)
    assert status == 200, body
    assert body["meta"]["extra"]["retries"] == 1


async def test_the_route_is_in_the_openapi_document(client: TestClientProtocol) -> None:
    """The OpenAPI document describes the route with its request body."""
    spec = await (await client.get("/openapi.json")).get_json()
    operation = spec["paths"][PATH]["post"]
    assert "images" in operation["tags"]
    assert "requestBody" in operation
