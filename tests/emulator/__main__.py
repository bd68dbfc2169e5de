"""Test double (vendor emulator), standalone: `python -m tests.emulator --port 8900` for manual runs and benches."""

from __future__ import annotations

import argparse
import asyncio

from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.emulator.app import EmulatorState, create_emulator_app
from tests.emulator.scenario import SCENARIOS


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument(
        "--default-scenario", default="text", help="scenario for model names that are not scenarios ('' for 404)"
    )
    args = parser.parse_args(argv)
    config = Config()
    config.bind = [f"{args.host}:{args.port}"]
    config.accesslog = None
    state = EmulatorState(default_scenario=args.default_scenario or None)
    print(f"vendor emulator on http://{args.host}:{args.port}  scenarios (model names): {', '.join(SCENARIOS)}")
    print(f"other model names get: {state.default_scenario or '404'}", flush=True)
    asyncio.run(serve(create_emulator_app(state), config))


if __name__ == "__main__":
    main()
