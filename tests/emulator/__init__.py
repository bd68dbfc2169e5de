"""Test double: a loopback vendor emulator speaking the OpenAI (Chat Completions, Responses), Anthropic Messages and
Gemini generateContent wire formats, with scripted faults. Start it with ``running_emulator()`` in a test or
``python -m tests.emulator --port 8900`` by hand; choose the scenario by model name (see ``scenario.SCENARIOS``)."""

from __future__ import annotations

from tests.emulator.app import EmulatorState, RecordedRequest, create_emulator_app
from tests.emulator.scenario import SCENARIOS, Fault, FaultKind, Scenario, ScriptedToolCall, ScriptedUsage
from tests.emulator.server import RunningEmulator, running_emulator

__all__ = [
    "SCENARIOS",
    "EmulatorState",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "RunningEmulator",
    "Scenario",
    "ScriptedToolCall",
    "ScriptedUsage",
    "create_emulator_app",
    "running_emulator",
]
