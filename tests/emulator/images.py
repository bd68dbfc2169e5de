"""Test double (vendor emulator): image generation in OpenAI's and Google's wire formats.

Routes: OpenAI ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart), Imagen on Vertex AI
``POST /v1beta1/publishers/google/models/{model}:predict`` (what google-genai sends in Vertex mode), and image output
on Gemini ``:generateContent`` (``gemini_image_content``, called by the generateContent route when the request asks
for ``IMAGE`` output). Each is as strict as the vendor: the path and API version, the credential header, the
required fields, the values each model family accepts; anything else is the vendor's 400.

The scenario comes from the ``x-emulator-scenario`` header, else the model name (as for text): ``text`` (or any
success scenario) draws real images of the asked size and format whose colour depends on the prompt; status faults
(``fault-429`` with Retry-After, ``fault-500`` ...) answer the vendor's error; ``content-filter`` is the vendor's
policy refusal (OpenAI 400 ``moderation_blocked`` / ``content_policy_violation``, Imagen ``raiFilteredReason``,
Gemini ``finishReason: IMAGE_SAFETY``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from quart import Quart, Response, request

from tests.emulator.render_gemini import gemini_error
from tests.emulator.render_images import (
    DALL_E_KEYS,
    EDIT_KEYS,
    GEMINI_POLICY_MESSAGE,
    GEMINI_RATIOS,
    GPT_IMAGE_KEYS,
    IMAGEN_POLICY_REASON,
    POLICY_MESSAGE,
    Refused,
    b64,
    check_openai,
    check_predict,
    draw,
    gemini_prompt,
    openai_images,
)
from tests.emulator.render_openai import openai_error
from tests.emulator.scenario import Fault, Scenario
from tests.emulator.wire import ErrorReply

if TYPE_CHECKING:
    from tests.emulator.app import EmulatorState

__all__ = ["gemini_image_content", "register_image_routes", "wants_image"]

#: Never recorded (the request log must not hold credentials, even fake ones).
_SECRET_HEADERS: Final = frozenset(("authorization", "x-api-key", "x-goog-api-key"))


def _json(reply: ErrorReply) -> Response:
    return Response(json.dumps(reply.body), status=reply.status, headers=reply.headers, mimetype="application/json")


def _ok(body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), mimetype="application/json")


def _openai_refusal(message: str, param: str | None = None, code: str | None = None) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return _json(ErrorReply(400, {"error": error}))


def _google_refusal(message: str, code: int = 400, status: str = "INVALID_ARGUMENT") -> Response:
    return _json(ErrorReply(code, {"error": {"code": code, "message": message, "status": status}}))


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS}


async def _fault_reply(scenario: Scenario, render: Any) -> Response | None:
    """The scripted fault's answer (``None``: serve the scenario). A stall delays, then serves."""
    fault = scenario.fault
    if fault is None:
        return None
    if fault.is_status:
        return _json(render(fault))
    if fault.kind == "stall":
        await asyncio.sleep(fault.stall_s)
        return None
    return _json(render(Fault("server_error")))  # no stream to break: the closest whole-response failure


def _openai_policy(model: str) -> Response:
    code = "content_policy_violation" if model.startswith("dall-e") else "moderation_blocked"
    return _openai_refusal(POLICY_MESSAGE, None, code)


def _authorized_openai() -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def register_image_routes(app: Quart, state: EmulatorState) -> None:
    """Add the image routes to the emulator ``app`` over ``state``."""
    from tests.emulator.app import RecordedRequest

    def scenario_for(model: str) -> Scenario | None:
        return state.resolve(request.headers.get("x-emulator-scenario") or model)

    async def openai_call(api: str, fields: dict[str, Any], keys: frozenset[str], recorded: dict[str, Any]) -> Response:
        model = str(fields.get("model", ""))
        state.requests.append(RecordedRequest(api, model, recorded, _headers()))
        if not _authorized_openai():
            return _json(openai_error(Fault("unauthorized")))
        try:
            model, n = check_openai(fields, keys)
        except Refused as refused:
            return _openai_refusal(refused.message, refused.param, "invalid_value")
        scenario = scenario_for(model)
        if scenario is None:
            error = {"message": f"The model '{model}' does not exist.", "type": "invalid_request_error"}
            return _json(ErrorReply(404, {"error": {**error, "param": None, "code": "model_not_found"}}))
        failed = await _fault_reply(scenario, openai_error)
        if failed is not None:
            return failed
        if scenario.finish == "content_filter":
            return _openai_policy(model)
        return _ok(openai_images(fields, model, n))

    @app.post("/v1/images/generations")
    async def openai_generations() -> Response:
        if request.mimetype != "application/json":
            return _openai_refusal("Expected a JSON body (Content-Type: application/json).")
        body = await request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return _openai_refusal("We could not parse the JSON body of your request.")
        model = str(body.get("model", ""))
        keys = DALL_E_KEYS if model.startswith("dall-e") else GPT_IMAGE_KEYS
        return await openai_call("openai_images", body, keys, body)

    @app.post("/v1/images/edits")
    async def openai_edits() -> Response:
        if request.mimetype != "multipart/form-data":
            return _openai_refusal("Expected a multipart/form-data body.")
        form = await request.form
        files = await request.files
        fields: dict[str, Any] = dict(form.items())
        uploads = files.getlist("image[]") + files.getlist("image")
        recorded = {
            **fields,
            "image": [{"filename": f.filename, "content_type": f.mimetype, "size": len(f.read())} for f in uploads],
        }
        if str(fields.get("model", "")).startswith("dall-e-3"):
            return _openai_refusal("Image edits are not supported for dall-e-3.", "model", "invalid_value")
        if not uploads:
            return _openai_refusal("Missing required parameter: 'image'.", "image")
        for upload in uploads:
            if upload.mimetype not in ("image/png", "image/jpeg", "image/webp"):
                message = f"Invalid file 'image': unsupported mimetype ('{upload.mimetype}')."
                return _openai_refusal(message, "image", "invalid_value")
        return await openai_call("openai_image_edits", fields, EDIT_KEYS, recorded)

    @app.post("/<version>/publishers/google/models/<target>")
    async def imagen_predict(version: str, target: str) -> Response:
        model, _, method = target.partition(":")
        body = await request.get_json(force=True, silent=True)
        state.requests.append(RecordedRequest("imagen", model, body if isinstance(body, dict) else {}, _headers()))
        if not (request.headers.get("x-goog-api-key") or request.headers.get("authorization")):
            return _json(gemini_error(Fault("unauthorized")))
        if version not in ("v1", "v1beta1") or method != "predict":
            return _google_refusal(f"no method {method!r} at API version {version!r}", 404, "NOT_FOUND")
        if not isinstance(body, dict):
            return _google_refusal("Invalid JSON payload received.")
        try:
            prompt, count, dimensions, mime = check_predict(body)
        except Refused as refused:
            return _google_refusal(refused.message)
        scenario = scenario_for(model)
        if scenario is None:
            return _google_refusal(f"Publisher model {model!r} was not found.", 404, "NOT_FOUND")
        failed = await _fault_reply(scenario, gemini_error)
        if failed is not None:
            return failed
        parameters = body.get("parameters") or {}
        if scenario.finish == "content_filter":
            # All filtered: a reason per image when asked for one, else simply nothing (as Imagen does).
            if parameters.get("includeRaiReason"):
                return _ok({"predictions": [{"raiFilteredReason": IMAGEN_POLICY_REASON}] * count})
            return _ok({})
        output_format = mime.partition("/")[2]
        predictions = [
            {"bytesBase64Encoded": b64(draw(prompt, i, dimensions, output_format)), "mimeType": mime}
            for i in range(count)
        ]
        if parameters.get("enhancePrompt", True):  # Imagen 4 enhances prompts unless told not to
            for prediction in predictions:
                prediction["prompt"] = f"{prompt}, highly detailed, cinematic lighting"
        return _ok({"predictions": predictions})


# --- Gemini: image output on :generateContent ---------------------------------------------------------------------


def wants_image(body: Mapping[str, Any]) -> bool:
    """Whether a generateContent body asks for image output (``generationConfig.responseModalities``)."""
    config = body.get("generationConfig") or {}
    modalities = config.get("responseModalities") if isinstance(config, dict) else None
    return isinstance(modalities, list) and "IMAGE" in modalities


async def gemini_image_content(scenario: Scenario, model: str, body: Mapping[str, Any]) -> Response:
    """The generateContent answer of a Gemini image model (the route already checked auth and status faults)."""
    try:
        prompt = gemini_prompt(body)
        config = body.get("generationConfig") or {}
        ratio = str((config.get("imageConfig") or {}).get("aspectRatio", "1:1"))
        if ratio not in GEMINI_RATIOS:
            raise Refused(f"Unsupported aspect ratio: {ratio}.")
    except Refused as refused:
        return _google_refusal(refused.message)
    failed = await _fault_reply(scenario, gemini_error)
    if failed is not None:
        return failed
    usage = {"promptTokenCount": 9, "candidatesTokenCount": 1290, "totalTokenCount": 1299}
    if scenario.finish == "content_filter":
        candidate = {"finishReason": "IMAGE_SAFETY", "finishMessage": GEMINI_POLICY_MESSAGE, "index": 0}
        return _ok({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 9}, "modelVersion": model})
    seed = int(config.get("seed") or 0)
    image = draw(prompt, seed, GEMINI_RATIOS[ratio])
    part = {"inlineData": {"mimeType": "image/png", "data": b64(image)}}
    candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
    return _ok({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "img-emu"})
