"""Test double (vendor emulator): the OpenAI Realtime conversation session's objects and their checks, as strict as
the vendor: the session object (``session.created``/``session.updated``) and what a ``session.update`` may change,
the conversation items a client may create, a response's parameters and its ``usage``.

A refused value raises ``Refused`` with the vendor's message, code and ``param`` (the dotted path of the field).
"""

from __future__ import annotations

from typing import Any, Final

from tests.emulator.render_live import OPENAI_LIVE_MODELS, Refused

__all__ = [
    "OPENAI_REALTIME_MODELS",
    "RATE",
    "check_item",
    "check_keys",
    "check_response",
    "default_session",
    "response_usage",
    "updated_session",
]

RATE: Final = 24_000
#: The conversation models a realtime session takes (the SDK's list).
OPENAI_REALTIME_MODELS: Final = frozenset(
    (
        "gpt-realtime",
        "gpt-realtime-1.5",
        "gpt-realtime-2",
        "gpt-realtime-2.1",
        "gpt-realtime-2.1-mini",
        "gpt-realtime-2025-08-28",
        "gpt-4o-realtime-preview",
        "gpt-4o-realtime-preview-2024-10-01",
        "gpt-4o-realtime-preview-2024-12-17",
        "gpt-4o-realtime-preview-2025-06-03",
        "gpt-4o-mini-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
        "gpt-realtime-mini-2025-12-15",
        "gpt-audio-1.5",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-10-06",
        "gpt-audio-mini-2025-12-15",
    )
)
_VOICES: Final = frozenset(("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"))
_SESSION_KEYS: Final = frozenset(
    (
        "type",
        "model",
        "audio",
        "include",
        "instructions",
        "max_output_tokens",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
        "tracing",
        "truncation",
    )
)
_INPUT_KEYS: Final = frozenset(("format", "transcription", "turn_detection", "noise_reduction"))
_OUTPUT_KEYS: Final = frozenset(("format", "voice", "speed"))
_TRANSCRIPTION_KEYS: Final = frozenset(("model", "language", "prompt", "delay", "keywords", "languages"))
_VAD_KEYS: Final = frozenset(
    (
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "idle_timeout_ms",
        "create_response",
        "interrupt_response",
        "eagerness",
    )
)
_TOOL_KEYS: Final = frozenset(("type", "name", "description", "parameters"))
_ITEM_KEYS: Final = frozenset(
    ("id", "type", "object", "status", "role", "content", "call_id", "output", "name", "arguments")
)
_CONTENT_KEYS: Final = frozenset(("type", "text", "audio", "transcript"))
_RESPONSE_KEYS: Final = frozenset(
    (
        "audio",
        "conversation",
        "input",
        "instructions",
        "max_output_tokens",
        "metadata",
        "output_modalities",
        "prompt",
        "tool_choice",
        "tools",
    )
)


def check_keys(value: object, allowed: frozenset[str], prefix: str) -> dict[str, Any]:
    """``value`` as an object holding only ``allowed`` keys (``prefix``: its path, for the refusal)."""
    if not isinstance(value, dict):
        raise Refused(f"Invalid type for '{prefix}': expected an object.", code="invalid_type", param=prefix)
    for key in value:
        if key not in allowed:
            param = f"{prefix}.{key}"
            raise Refused(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param)
    return value


def check_response(value: object) -> None:
    """A ``response.create``'s ``response`` parameters."""
    check_keys(value, _RESPONSE_KEYS, "response")


def default_session(session_id: str, model: str) -> dict[str, Any]:
    """The session object ``session.created`` carries: the vendor's defaults."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "truncation": "auto",
        "include": None,
        "expires_at": 1_900_000_000,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "alloy", "speed": 1.0},
        },
    }


def updated_session(current: dict[str, Any], value: object, *, spoke: bool) -> dict[str, Any]:
    """``current`` with a ``session.update``'s ``session`` applied (only the fields present change); ``spoke``: the
    model's audio went out already, so the voice is fixed."""
    session = check_keys(value, _SESSION_KEYS, "session")
    if session.get("type") != "realtime":
        if "type" not in session:
            raise Refused(
                "Missing required parameter: 'session.type'.", code="missing_required_parameter", param="session.type"
            )
        raise Refused(
            "This is a realtime session (model in the URL): session.type must be 'realtime'.", param="session.type"
        )
    if "model" in session and session["model"] != current["model"]:
        raise Refused("The session's model cannot be changed.", param="session.model")
    modalities = session.get("output_modalities")
    if modalities is not None and modalities not in (["audio"], ["text"]):
        raise Refused(
            "Invalid 'session.output_modalities': use ['audio'] or ['text'].", param="session.output_modalities"
        )
    if "tools" in session:
        _check_tools(session["tools"])
    audio = check_keys(session.get("audio", {}), frozenset(("input", "output")), "session.audio")
    audio_input = _input(current["audio"]["input"], audio.get("input", {}))
    audio_output = _output(current["audio"]["output"], audio.get("output", {}), spoke=spoke)
    changed = {key: value for key, value in session.items() if key != "audio"}
    return {
        **current,
        **changed,
        "audio": {
            "input": {**current["audio"]["input"], **audio_input},
            "output": {**current["audio"]["output"], **audio_output},
        },
    }


def _input(current: dict[str, Any], value: object) -> dict[str, Any]:
    audio_input = dict(check_keys(value, _INPUT_KEYS, "session.audio.input"))
    if "format" in audio_input:
        _check_format(audio_input["format"], "session.audio.input.format")
    transcription = audio_input.get("transcription")
    if transcription is not None:
        check_keys(transcription, _TRANSCRIPTION_KEYS, "session.audio.input.transcription")
        if transcription.get("model") not in OPENAI_LIVE_MODELS:
            raise Refused(
                f"Invalid value: '{transcription.get('model')}'. Supported values are: "
                + ", ".join(f"'{m}'" for m in sorted(OPENAI_LIVE_MODELS)),
                param="session.audio.input.transcription.model",
            )
    if audio_input.get("turn_detection") is not None:
        detection = check_keys(audio_input["turn_detection"], _VAD_KEYS, "session.audio.input.turn_detection")
        if detection.get("type") not in ("server_vad", "semantic_vad"):
            raise Refused(
                f"Invalid value: '{detection.get('type')}'. Supported values are: 'server_vad', 'semantic_vad'.",
                param="session.audio.input.turn_detection.type",
            )
        defaults = current["turn_detection"] or {"create_response": True, "interrupt_response": True}
        audio_input["turn_detection"] = {**defaults, **detection}
    return audio_input


def _output(current: dict[str, Any], value: object, *, spoke: bool) -> dict[str, Any]:
    audio_output = check_keys(value, _OUTPUT_KEYS, "session.audio.output")
    if "format" in audio_output:
        _check_format(audio_output["format"], "session.audio.output.format")
    if "voice" in audio_output:
        voice = audio_output["voice"]
        custom = isinstance(voice, dict) and isinstance(voice.get("id"), str)
        if not custom and voice not in _VOICES:
            raise Refused(
                f"Invalid value: '{voice}'. Supported values are: " + ", ".join(f"'{v}'" for v in sorted(_VOICES)),
                param="session.audio.output.voice",
            )
        if spoke and voice != current["voice"]:
            raise Refused(
                "Cannot update a conversation's voice if assistant audio is present.",
                code="cannot_update_voice",
                param="session.audio.output.voice",
            )
    return audio_output


def _check_format(value: object, param: str) -> None:
    audio_format = check_keys(value, frozenset(("type", "rate")), param)
    if audio_format.get("type") != "audio/pcm":
        raise Refused("The emulator takes audio/pcm only.", param=f"{param}.type")
    if audio_format.get("rate", RATE) != RATE:
        raise Refused(f"Invalid '{param}.rate': only 24000 is supported.", param=f"{param}.rate")


def _check_tools(tools: object) -> None:
    if not isinstance(tools, list):
        raise Refused(
            "Invalid type for 'session.tools': expected an array.", code="invalid_type", param="session.tools"
        )
    for index, tool in enumerate(tools):
        param = f"session.tools[{index}]"
        checked = check_keys(tool, _TOOL_KEYS, param)
        if checked.get("type") != "function":
            raise Refused("The emulator takes function tools only.", param=f"{param}.type")
        if not isinstance(checked.get("name"), str) or not checked["name"]:
            raise Refused(
                f"Missing required parameter: '{param}.name'.", code="missing_required_parameter", param=f"{param}.name"
            )
        if "parameters" in checked and not isinstance(checked["parameters"], dict):
            raise Refused(f"Invalid '{param}.parameters': expected a JSON schema object.", param=f"{param}.parameters")


def check_item(value: object, calls: set[str]) -> dict[str, Any]:
    """A ``conversation.item.create``'s item: a user or system message of ``input_text``, or the output of a function
    call the model made (one of ``calls``)."""
    item = dict(check_keys(value, _ITEM_KEYS, "item"))
    kind = item.get("type")
    if kind == "message":
        if item.get("role") not in ("user", "system"):
            raise Refused("The emulator takes user and system messages only.", param="item.role")
        content = item.get("content")
        if not isinstance(content, list) or not content:
            raise Refused(
                "Missing required parameter: 'item.content'.", code="missing_required_parameter", param="item.content"
            )
        for index, part in enumerate(content):
            param = f"item.content[{index}]"
            checked = check_keys(part, _CONTENT_KEYS, param)
            if checked.get("type") != "input_text" or not isinstance(checked.get("text"), str):
                raise Refused("The emulator takes input_text content only.", param=f"{param}.type")
    elif kind == "function_call_output":
        if not isinstance(item.get("output"), str):
            raise Refused(
                "Missing required parameter: 'item.output'.", code="missing_required_parameter", param="item.output"
            )
        if item.get("call_id") not in calls:
            raise Refused(f"Tool call ID '{item.get('call_id')}' not found in conversation.", param="item.call_id")
    else:
        raise Refused(
            f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call_output'.", param="item.type"
        )
    return item


def response_usage(*, text_in: int, audio_in: int, text_out: int, audio_out: int) -> dict[str, Any]:
    """A ``response.done``'s ``usage``: input tokens include the conversation's audio, output ones the answer's."""
    cached = {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}
    return {
        "total_tokens": text_in + audio_in + text_out + audio_out,
        "input_tokens": text_in + audio_in,
        "output_tokens": text_out + audio_out,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": cached,
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }
