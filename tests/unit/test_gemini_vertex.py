"""The Gemini vendor's Vertex AI client (Imagen and Veo): built from ``providers.gemini_vertex_*`` with a project and
location or an express-mode key, handed to the image and video providers only, refused when configured both ways,
and credentials that fail on the first call reported as a ``ProviderError`` saying so."""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.auth import exceptions as auth_errors

from adapters.gemini.images import GeminiImageProvider
from adapters.gemini.text import GeminiTextProvider
from adapters.gemini.vertex import build_vertex_client
from adapters.gemini.video import GeminiVideoProvider
from container import _vendor_table
from domain.catalog import ModelSpec
from domain.errors import ConfigurationError, ProviderError
from domain.video import VideoRequest
from ports.images import IMAGE_PORT
from ports.providers import VendorProviders
from ports.text import TEXT_PORT
from ports.video import VIDEO_PORT
from settings import Secret, load_settings

# Where google-genai would look for a project, a key or Vertex mode besides its arguments.
_SDK_ENVIRONMENT = (
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_API_VERSION",
)


def _no_adc(**_: Any) -> Any:
    raise auth_errors.DefaultCredentialsError("no Application Default Credentials here")  # type: ignore[no-untyped-call]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SDK setting from the environment, and Application Default Credentials never looked up for real (that
    may ask a metadata server on the network): a lookup fails as it does on a machine without any."""
    for name in _SDK_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("google.auth.default", _no_adc)


def _vertex(**changes: Any) -> genai.Client | None:
    options: dict[str, Any] = {"project": None, "location": "us-central1", "api_key": None, "base_url": None}
    return build_vertex_client(timeout_s=5.0, **(options | changes))


def _gemini_vendor(**settings: str) -> VendorProviders:
    """The Gemini vendor as the container builds it from ``SWITCHYARD_PROVIDERS_<settings>``."""
    environ = {"GEMINI_API_KEY": "AIza-test"} | {f"SWITCHYARD_PROVIDERS_{k.upper()}": v for k, v in settings.items()}
    [(name, build, key, base_url)] = [
        row for row in _vendor_table(load_settings(environ).providers) if row[0] == "gemini"
    ]
    assert isinstance(key, Secret)
    built: VendorProviders = build(
        name=name, api_key=key.reveal(), base_url=base_url, timeout_s=5.0, connect_timeout_s=1.0
    )
    return built


def test_a_project_and_location_make_a_vertex_client_on_application_default_credentials() -> None:
    """Project mode: Vertex, the project and location given, no key, and requests under the project's path at the
    location's endpoint (no credential looked up yet)."""
    client = _vertex(project="my-project", location="europe-west4")
    assert client is not None
    api = client._api_client
    assert (client.vertexai, api.project, api.location, api.api_key) == (True, "my-project", "europe-west4", None)
    request = api._build_request("post", "publishers/google/models/veo-3.0-generate-001:predictLongRunning", {})
    assert request.url == (
        "https://europe-west4-aiplatform.googleapis.com/v1beta1/projects/my-project/locations/europe-west4/"
        "publishers/google/models/veo-3.0-generate-001:predictLongRunning"
    )


def test_an_express_mode_key_makes_a_vertex_client_without_project_or_location() -> None:
    """Express mode: Vertex with the key in ``x-goog-api-key``, no project and no location, at the base URL set."""
    client = _vertex(api_key="vertex-key", base_url="http://127.0.0.1:9/")
    assert client is not None
    api = client._api_client
    assert (client.vertexai, api.project, api.location, api.api_key) == (True, None, None, "vertex-key")
    request = api._build_request("post", "publishers/google/models/imagen-4.0-generate-001:predict", {})
    assert request.url == "http://127.0.0.1:9/v1beta1/publishers/google/models/imagen-4.0-generate-001:predict"
    assert request.headers["x-goog-api-key"] == "vertex-key"


def test_without_vertex_settings_there_is_no_vertex_client() -> None:
    assert _vertex() is None
    assert _vertex(project="") is None


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"project": "p", "api_key": "k"}, "SWITCHYARD_PROVIDERS_GEMINI_VERTEX_API_KEY"),
        ({"project": "p", "location": ""}, "SWITCHYARD_PROVIDERS_GEMINI_VERTEX_LOCATION"),
    ],
)
def test_a_contradictory_or_incomplete_configuration_fails_at_start(changes: dict[str, str], variable: str) -> None:
    """Both a project and a key, or a project without a location: the build stops naming the variable."""
    with pytest.raises(ConfigurationError, match=variable):
        _vertex(**changes)


async def test_the_container_hands_the_vertex_client_to_imagen_and_veo_only() -> None:
    """From settings: the image and video providers get a Vertex client with the configured project and location;
    text stays on the Gemini API client."""
    vendor = _gemini_vendor(gemini_vertex_project="my-project", gemini_vertex_location="us-east5")
    try:
        images, video, text = vendor.get(IMAGE_PORT), vendor.get(VIDEO_PORT), vendor.get(TEXT_PORT)
        assert isinstance(images, GeminiImageProvider)
        assert isinstance(video, GeminiVideoProvider)
        vertex = images._imagen_client
        assert vertex is video._client
        assert (vertex.vertexai, vertex._api_client.project, vertex._api_client.location) == (
            True,
            "my-project",
            "us-east5",
        )
        assert isinstance(text, GeminiTextProvider)
        assert not text._client.vertexai
    finally:
        await vendor.close()


async def test_without_vertex_settings_imagen_and_veo_are_refused_before_any_request() -> None:
    """The Gemini API client alone: both providers keep it, and refuse (not retryable, so a fallback serves)."""
    vendor = _gemini_vendor()
    try:
        video = vendor.get(VIDEO_PORT)
        assert video is not None
        model = ModelSpec(id="veo-3.0-generate-001", provider="gemini", capabilities=frozenset({"video"}))
        with pytest.raises(ProviderError, match="needs a Vertex AI client") as refused:
            await video.submit(VideoRequest(model="gemini/veo-3.0-generate-001", prompt="a boat"), model)
        assert not refused.value.retryable
    finally:
        await vendor.close()


async def test_credentials_that_cannot_be_found_are_a_provider_error_saying_so() -> None:
    """Project mode on a machine without Application Default Credentials: the first Veo call fails as a
    non-retryable ProviderError naming the credentials (never an unexpected exception), before any request."""
    vendor = _gemini_vendor(gemini_vertex_project="my-project", gemini_vertex_base_url="http://127.0.0.1:9/")
    try:
        video = vendor.get(VIDEO_PORT)
        assert video is not None
        model = ModelSpec(id="veo-3.0-generate-001", provider="gemini", capabilities=frozenset({"video"}))
        with pytest.raises(ProviderError, match="Vertex AI credentials failed") as failed:
            await video.submit(VideoRequest(model="gemini/veo-3.0-generate-001", prompt="a boat"), model)
        assert not failed.value.retryable
        assert isinstance(failed.value.__cause__, auth_errors.DefaultCredentialsError)
    finally:
        await vendor.close()
