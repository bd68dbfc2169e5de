"""Test double (vendor emulator): Veo's long-running operation protocol on Vertex AI, as google-genai speaks it.

google-genai (3.x) generates videos in Vertex AI mode only; with an API key alone ("express mode") it sends:

- submit: ``POST /v1beta1/publishers/google/models/{model}:predictLongRunning`` with ``{"instances": [{"prompt",
  "image"?}], "parameters": {...}}``, answered with the operation's ``{"name": "projects/.../operations/{id}"}``;
- poll: ``POST /v1beta1/{name up to /operations}:fetchPredictOperation`` with ``{"operationName": name}``, answered
  with the operation: ``{"name"}`` while it runs, then ``{"name", "done": true, "response": {"videos":
  [{"bytesBase64Encoded", "mimeType"}]}}``: the video itself (the download) comes inline in the finished operation,
  or ``{"done": true, "error": {"code", "message"}}`` when it failed.

As strict as the vendor: the API version, the credential header, one instance with a prompt, known parameters with
the values Veo takes, an operation name that exists and matches the path; anything else is Google's 400/404. The
scenario comes from the ``x-emulator-scenario`` header, else the model name: a success scenario makes a real MP4
(H.264) of the asked length; status faults (``fault-429`` with its ``RetryInfo``, ``fault-500`` ...) answer the
submission; ``fault-mid-stream`` fails the operation; ``content-filter`` filters the video (RAI); ``fault-truncated``
cuts the first answer carrying the video short (a download cut off mid-way). An operation is done at its
``DONE_AFTER_POLLS``-th poll.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from attrs import define
from quart import Quart, Response, request

from adapters.fake.video import render_mp4
from tests.emulator.render_gemini import gemini_error
from tests.emulator.scenario import Fault, Scenario
from tests.emulator.wire import ErrorReply

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = ["DONE_AFTER_POLLS", "PROJECT_PREFIX", "register_video_routes"]

DONE_AFTER_POLLS: Final = 2
PROJECT_PREFIX: Final = "projects/switchyard-emulator/locations/us-central1"
_VERSIONS: Final = ("v1", "v1beta1")
_PARAMETERS: Final = frozenset(
    {
        "sampleCount",
        "durationSeconds",
        "aspectRatio",
        "resolution",
        "seed",
        "negativePrompt",
        "generateAudio",
        "personGeneration",
        "enhancePrompt",
        "storageUri",
        "fps",
        "compressionQuality",
        "resizeMode",
    }
)
_SIZES: Final = {"16:9": (256, 144), "9:16": (144, 256)}  # small on purpose: the emulator encodes for real
_FILTERED: Final = "The video was filtered because it may violate the usage guidelines (emulator)."
_SECRET_HEADERS: Final = frozenset(("authorization", "x-api-key", "x-goog-api-key"))


@define
class _Operation:
    name: str
    model: str
    scenario: Scenario
    prompt: str
    parameters: dict[str, Any]
    polls: int = 0
    cuts_left: int = 0


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _json(reply: ErrorReply) -> Response:
    return Response(json.dumps(reply.body), status=reply.status, headers=reply.headers, mimetype="application/json")


def _refusal(message: str, code: int = 400, status: str = "INVALID_ARGUMENT") -> Response:
    return _json(ErrorReply(code, {"error": {"code": code, "message": message, "status": status}}))


def _check_submit(body: Any) -> tuple[str, dict[str, Any]]:
    """(prompt, parameters) of a valid ``:predictLongRunning`` body."""
    if not isinstance(body, dict):
        raise _Refused("Invalid JSON payload received.")
    unknown = sorted(set(body) - {"instances", "parameters"})
    if unknown:
        raise _Refused(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise _Refused("instances must hold exactly one instance.")
    instance = instances[0]
    prompt = instance.get("prompt")
    image = instance.get("image")
    if not (isinstance(prompt, str) and prompt.strip()) and image is None:
        raise _Refused("A prompt or an image is required.")
    if image is not None:
        if not isinstance(image, dict) or image.get("mimeType") not in ("image/png", "image/jpeg"):
            raise _Refused("image.mimeType must be image/png or image/jpeg.")
        try:
            base64.b64decode(str(image.get("bytesBase64Encoded", "")), validate=True)
        except binascii.Error:
            raise _Refused("image.bytesBase64Encoded is not valid base64.") from None
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _Refused("parameters must be an object.")
    unknown = sorted(set(parameters) - _PARAMETERS)
    if unknown:
        raise _Refused(f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'parameters'.")
    for key, allowed in (
        ("durationSeconds", (4, 6, 8)),
        ("aspectRatio", ("16:9", "9:16")),
        ("resolution", ("720p", "1080p")),
        ("sampleCount", (1, 2, 3, 4)),
    ):
        if key in parameters and parameters[key] not in allowed:
            raise _Refused(f"Unsupported {key}: {parameters[key]!r}. Supported: {', '.join(map(str, allowed))}.")
    if "generateAudio" in parameters and not isinstance(parameters["generateAudio"], bool):
        raise _Refused("generateAudio must be a boolean.")
    return str(prompt or ""), parameters


def _video(operation: _Operation) -> dict[str, Any]:
    parameters = operation.parameters
    size = _SIZES[str(parameters.get("aspectRatio", "16:9"))]
    seed = parameters.get("seed")
    data = render_mp4(
        operation.prompt,
        seed=int(seed) if isinstance(seed, int) else None,
        duration_s=int(parameters.get("durationSeconds", 8)),
        size=size,
        audio=bool(parameters.get("generateAudio", False)),
    )
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": "video/mp4"}


def _finished(operation: _Operation) -> dict[str, Any]:
    scenario = operation.scenario
    if scenario.fault is not None and scenario.fault.kind == "mid_stream_error":
        return {"name": operation.name, "done": True, "error": {"code": 13, "message": "Internal error encountered."}}
    response: dict[str, Any] = {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"}
    if scenario.finish == "content_filter":
        response.update({"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [_FILTERED]})
    else:
        count = int(operation.parameters.get("sampleCount", 1))
        response["videos"] = [_video(operation)] * count
    return {"name": operation.name, "done": True, "response": response}


async def _cut(payload: bytes) -> AsyncIterator[bytes]:
    yield payload[: len(payload) // 2]  # then the body ends before its Content-Length: the connection drops


def register_video_routes(app: Quart, state: EmulatorState) -> None:
    """Add Veo's ``:predictLongRunning`` and ``:fetchPredictOperation`` routes to the emulator app."""
    from tests.emulator.app import RecordedRequest

    operations: dict[str, _Operation] = {}

    def record(api: str, model: str, body: Any) -> None:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}
        state.requests.append(RecordedRequest(api, model, body if isinstance(body, dict) else {}, headers))

    def authorized() -> bool:
        return bool(request.headers.get("x-goog-api-key") or request.headers.get("authorization"))

    @app.post("/<version>/publishers/google/models/<model>:predictLongRunning")
    async def veo_submit(version: str, model: str) -> Response:
        body = await request.get_json(force=True, silent=True)
        record("veo_submit", model, body)
        if not authorized():
            return _json(gemini_error(Fault("unauthorized")))
        if version not in _VERSIONS:
            return _refusal(f"API version {version!r} does not serve this method.", 404, "NOT_FOUND")
        try:
            prompt, parameters = _check_submit(body)
        except _Refused as refused:
            return _refusal(refused.message)
        scenario = state.resolve(request.headers.get("x-emulator-scenario") or model)
        if scenario is None:
            return _refusal(f"Publisher model {model!r} was not found.", 404, "NOT_FOUND")
        if scenario.fault is not None and scenario.fault.is_status:
            return _json(gemini_error(scenario.fault))
        name = f"{PROJECT_PREFIX}/publishers/google/models/{model}/operations/{uuid.uuid4()}"
        cuts = 1 if scenario.fault is not None and scenario.fault.kind == "truncated" else 0
        operations[name] = _Operation(name, model, scenario, prompt, dict(parameters), cuts_left=cuts)
        return Response(json.dumps({"name": name}), mimetype="application/json")

    @app.post(
        "/<version>/projects/<project>/locations/<location>/publishers/google/models/<model>:fetchPredictOperation"
    )
    async def veo_operation(version: str, project: str, location: str, model: str) -> Response:
        body = await request.get_json(force=True, silent=True)
        record("veo_operation", model, body)
        if not authorized():
            return _json(gemini_error(Fault("unauthorized")))
        if version not in _VERSIONS:
            return _refusal(f"API version {version!r} does not serve this method.", 404, "NOT_FOUND")
        name = body.get("operationName") if isinstance(body, Mapping) else None
        prefix = f"projects/{project}/locations/{location}/publishers/google/models/{model}/operations/"
        if not isinstance(name, str) or not name.startswith(prefix):
            return _refusal("operationName must name an operation of the model in the path.")
        operation = operations.get(name)
        if operation is None:
            return _refusal(f"Operation {name!r} was not found.", 404, "NOT_FOUND")
        operation.polls += 1
        if operation.polls < DONE_AFTER_POLLS:
            return Response(json.dumps({"name": name}), mimetype="application/json")
        payload = json.dumps(_finished(operation)).encode()
        if operation.cuts_left > 0:
            operation.cuts_left -= 1
            headers = {"content-type": "application/json", "content-length": str(len(payload))}
            return Response(_cut(payload), headers=headers)
        return Response(payload, mimetype="application/json")
