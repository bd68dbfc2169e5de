"""Test double (vendor emulator): what a Gemini Live ``setup`` message may hold, checked as the API's JSON parser does.

The API reads protobuf JSON, which takes a field by its lowerCamel JSON name or its proto (snake_case) name, and
google-genai sends both (``generationConfig.speechConfig.voice_config.prebuilt_voice_config``): every key is read in
either spelling, and an unknown one is refused as the API refuses it ("Unknown name ... Cannot find field").
Free-form values (a function's JSON schema, call arguments, responses) are not field names and are left alone.
"""

from __future__ import annotations

import re
from typing import Any, Final

from attrs import frozen

from tests.emulator.speech import GEMINI_VOICES

__all__ = ["LIVE_MODELS", "LiveRefused", "LiveSetup", "camel", "fields", "read_setup"]

#: The Live API models the emulator serves (Gemini API names, without ``models/``).
LIVE_MODELS: Final = frozenset(
    (
        "gemini-live-2.5-flash-preview",
        "gemini-live-2.5-flash",
        "gemini-2.0-flash-live-001",
        "gemini-2.5-flash-native-audio-latest",
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-2.5-flash-preview-native-audio-dialog",
    )
)
_SETUP: Final = frozenset(
    (
        "model", "generationConfig", "systemInstruction", "tools", "realtimeInputConfig", "sessionResumption",
        "contextWindowCompression", "inputAudioTranscription", "outputAudioTranscription", "proactivity",
        "historyConfig", "avatarConfig", "safetySettings",
    )
)  # fmt: skip
_GENERATION: Final = frozenset(
    (
        "responseModalities", "temperature", "topP", "topK", "maxOutputTokens", "seed", "speechConfig",
        "thinkingConfig", "mediaResolution", "enableAffectiveDialog", "candidateCount", "presencePenalty",
        "frequencyPenalty",
    )
)  # fmt: skip
_SPEECH: Final = frozenset(("voiceConfig", "languageCode", "multiSpeakerVoiceConfig"))
_VOICE: Final = frozenset(("prebuiltVoiceConfig",))
_PREBUILT: Final = frozenset(("voiceName",))
_REALTIME_INPUT: Final = frozenset(("automaticActivityDetection", "activityHandling", "turnCoverage"))
_ACTIVITY_DETECTION: Final = frozenset(
    ("disabled", "startOfSpeechSensitivity", "endOfSpeechSensitivity", "prefixPaddingMs", "silenceDurationMs")
)
_TOOL: Final = frozenset(("functionDeclarations", "googleSearch", "codeExecution", "urlContext"))
_FUNCTION: Final = frozenset(
    ("name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior")
)
_CONTENT: Final = frozenset(("parts", "role"))
_PART: Final = frozenset(("text",))
_TRANSCRIPTION: Final = frozenset(("languageCodes",))
_FUNCTION_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
_DEFAULT_SILENCE_MS: Final = 500


class LiveRefused(Exception):
    """The server ends the session: a WebSocket close ``code`` (1007 bad payload, 1008 policy) and its reason."""

    def __init__(self, reason: str, code: int = 1007) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def camel(key: str) -> str:
    """A proto field name in its lowerCamel JSON spelling (``voice_config`` -> ``voiceConfig``)."""
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def fields(value: object, allowed: frozenset[str], where: str) -> dict[str, Any]:
    """``value`` as a message with lowerCamel keys, refused when it is not an object or holds an unknown field."""
    if not isinstance(value, dict):
        raise LiveRefused(f"Invalid JSON payload received. Expected an object at '{where}'.")
    read: dict[str, Any] = {}
    for key, item in value.items():
        name = camel(str(key))
        if name not in allowed:
            raise LiveRefused(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.")
        read[name] = item
    return read


@frozen
class LiveSetup:
    """What the emulator keeps of an accepted ``setup``."""

    model: str
    voice: str | None
    automatic_activity: bool
    silence_ms: int
    input_transcription: bool
    output_transcription: bool
    tools: tuple[str, ...]


def _generation(value: object) -> str | None:
    config = fields(value, _GENERATION, "setup.generation_config")
    modalities = config.get("responseModalities", ["AUDIO"])
    if modalities != ["AUDIO"]:
        raise LiveRefused("The emulator's live models answer in audio only: response_modalities must be [AUDIO].")
    temperature = config.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
        raise LiveRefused("* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]")
    if "speechConfig" not in config:
        return None
    speech = fields(config["speechConfig"], _SPEECH, "setup.generation_config.speech_config")
    voice = fields(speech.get("voiceConfig", {}), _VOICE, "setup.generation_config.speech_config.voice_config")
    prebuilt = fields(voice.get("prebuiltVoiceConfig", {}), _PREBUILT, "...voice_config.prebuilt_voice_config")
    name = prebuilt.get("voiceName")
    if name is not None and name not in GEMINI_VOICES:
        raise LiveRefused(f"Voice {name!r} is not a prebuilt voice.")
    return str(name) if name is not None else None


def _tools(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise LiveRefused("Invalid JSON payload received. Expected a list at 'setup.tools'.")
    names: list[str] = []
    for index, tool in enumerate(value):
        read = fields(tool, _TOOL, f"setup.tools[{index}]")
        for number, declaration in enumerate(read.get("functionDeclarations") or []):
            function = fields(declaration, _FUNCTION, f"setup.tools[{index}].function_declarations[{number}]")
            name = function.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                raise LiveRefused(
                    f"* BidiGenerateContentRequest.setup.tools[{index}].function_declarations[{number}].name: "
                    "Invalid function name. Must start with a letter or an underscore and be at most 64 characters."
                )
            if "parameters" in function and "parametersJsonSchema" in function:
                raise LiveRefused("parameters and parameters_json_schema cannot both be set.")
            names.append(name)
    return tuple(names)


def read_setup(message: dict[str, Any], version: str) -> LiveSetup:
    """The ``setup`` of a session's first message, or the refusal that closes the session."""
    if set(message) != {"setup"}:
        raise LiveRefused("Request contains an invalid argument: the first message must be a setup.")
    setup = fields(message["setup"], _SETUP, "setup")
    model = setup.get("model")
    name = model.removeprefix("models/") if isinstance(model, str) and model.startswith("models/") else None
    if name not in LIVE_MODELS:
        raise LiveRefused(
            f"{model} is not found for API version {version}, or is not supported for bidiGenerateContent. "
            "Call ListModels to see the list of available models and their supported methods.",
            code=1008,
        )
    assert name is not None
    voice = _generation(setup["generationConfig"]) if "generationConfig" in setup else None
    if "systemInstruction" in setup:
        instruction = fields(setup["systemInstruction"], _CONTENT, "setup.system_instruction")
        for index, part in enumerate(instruction.get("parts") or []):
            fields(part, _PART, f"setup.system_instruction.parts[{index}]")
    realtime = fields(setup.get("realtimeInputConfig", {}), _REALTIME_INPUT, "setup.realtime_input_config")
    detection = fields(
        realtime.get("automaticActivityDetection", {}),
        _ACTIVITY_DETECTION,
        "setup.realtime_input_config.automatic_activity_detection",
    )
    for key in ("inputAudioTranscription", "outputAudioTranscription"):
        if key in setup:
            fields(setup[key], _TRANSCRIPTION, f"setup.{key}")
    return LiveSetup(
        model=name,
        voice=voice,
        automatic_activity=not detection.get("disabled", False),
        silence_ms=int(detection.get("silenceDurationMs", _DEFAULT_SILENCE_MS)),
        input_transcription="inputAudioTranscription" in setup,
        output_transcription="outputAudioTranscription" in setup,
        tools=_tools(setup["tools"]) if "tools" in setup else (),
    )
