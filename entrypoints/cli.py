"""Entrypoint: the ``switchyard`` command line (serve, migrate, chat, image, embed, transcribe, models, config, token,
version).

It embeds the same container and services as the HTTP app; configuration errors end the process with one line,
not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from domain.errors import ConfigurationError, ServiceError
from settings import Settings, load_settings
from settings.loader import masked_dict

if TYPE_CHECKING:
    from quart import Quart

__all__ = ["main"]

_DEV_SECRET_VAR = "SWITCHYARD_AUTH_JWT_SECRET"  # noqa: S105 - a variable name, not a secret
_TICKET_SECRET_VAR = "SWITCHYARD_AUTH_STREAM_TICKET_SECRET"  # noqa: S105 - a variable name, not a secret


def _parse_ttl(text: str) -> float:
    """``30m``, ``1h``, ``7d`` or plain seconds; argparse reports anything else (or a non-positive TTL) in one line."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid lifetime {text!r}; use e.g. 30m, 1h, 7d or seconds") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"lifetime must be positive, got {text!r}")
    return seconds


def _needs_dev_secret(settings: Settings) -> bool:
    """Only ``local`` with no key of any kind gets a random per-start secret and a printed development token."""
    auth = settings.auth
    no_key = not auth.jwt_secret and not auth.jwks_url and not auth.public_keys  # an empty variable is no key
    return settings.app.env == "local" and auth.dev_token and no_key


def _cmd_serve(args: argparse.Namespace) -> int:
    from container import build_container
    from entrypoints.serve import announce_when_serving, hypercorn_config, serve_in_process, serve_workers

    if args.host:
        os.environ["SWITCHYARD_HTTP_HOST"] = args.host
    if args.port is not None:
        os.environ["SWITCHYARD_HTTP_PORT"] = str(args.port)
    if args.workers is not None:
        os.environ["SWITCHYARD_HTTP_WORKERS"] = str(args.workers)
    settings = load_settings()
    dev_token = None
    if _needs_dev_secret(settings):
        # A random secret per start, shared with worker processes through the environment (as Jupyter does).
        os.environ[_DEV_SECRET_VAR] = secrets.token_urlsafe(32)
        settings = load_settings()
        assert settings.auth.jwt_secret is not None
        minter = build_container(settings).token_minter()
        dev_token = minter.mint("dev", email="dev@localhost", ttl_s=7 * 86400)
    build_container(settings).jwt_verifier()  # fail fast on a short secret, unreadable keys, alg 'none'

    if settings.http.workers > 1 and not settings.auth.stream_ticket_secret and not settings.auth.jwt_secret:
        # Stream tickets need one key in every worker: a random one per start, shared through the environment.
        os.environ[_TICKET_SECRET_VAR] = secrets.token_urlsafe(32)
        settings = load_settings()

    if settings.http.workers > 1:
        from entrypoints.worker_limits import refuse_per_worker_limits

        # Limits counted per worker would allow workers x the limit: refused without Redis (see the module).
        asyncio.run(_with_container(lambda container: refuse_per_worker_limits(settings, container)))

    config = hypercorn_config(settings)  # graceful shutdown and the listen backlog: see entrypoints/serve.py
    url = f"http://{settings.http.host}:{settings.http.port}"
    banner = [f"Switchyard {_version()} ({settings.app.env}) listening on {url}  (docs: {url}/docs)"]
    banner.append(f"  playground: {url}/playground")
    if dev_token:
        banner.append(f"Development token (valid 7 days): {dev_token}")
        banner.append(f"  export TOKEN={dev_token}")
        banner.append(f'  try: curl -H "Authorization: Bearer $TOKEN" {url}/api/v1/models')
    # Printed once the server answers: not before the socket accepts, and never for a start that fails.
    announce_when_serving(settings.http.host, settings.http.port, banner)

    build_app = getattr(args, "build_app", None)  # set by ``main(build_app=...)``: the end-to-end tests' app
    if settings.http.workers > 1:
        _prepare_multiprocess_metrics(settings)  # before any worker imports prometheus_client
        return serve_workers(config, settings.http.workers, build_app)
    if build_app is not None:
        serve_in_process(build_app(), config)
        return 0

    from entrypoints.http.app import create_app, freeze_heap_after_start

    app = create_app(build_container(settings))
    freeze_heap_after_start(app)  # no full-GC walks of the start-up heap while serving
    serve_in_process(app, config)
    return 0


_MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    """Point prometheus-client's multiprocess mode at an emptied folder (``PROMETHEUS_MULTIPROC_DIR`` if set, else
    ``<app.data_dir>/prometheus-multiproc``); spawned workers inherit the variable and aggregate through it."""
    if not settings.http.metrics_enabled:
        return
    folder = Path(os.environ.get(_MULTIPROC_VAR) or settings.app.data_dir / "prometheus-multiproc")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # values of a previous run would be summed into this one
        stale.unlink()
    os.environ[_MULTIPROC_VAR] = str(folder.resolve())


def _cmd_migrate(args: argparse.Namespace) -> int:
    from container import build_container
    from ports.schema import SchemaMigrator

    container = build_container(load_settings())

    async def migrate() -> str | None:
        try:
            # The engine is an async resource, so the provider returns an awaitable here.
            migrator = await cast("Awaitable[SchemaMigrator]", container.migrator())
            if args.downgrade is not None:
                await migrator.downgrade(args.downgrade)
            else:
                await migrator.upgrade(args.revision)
            current: str | None = await migrator.current()
            return current
        finally:
            result = container.shutdown_resources()
            if result is not None:
                await result

    print(f"database schema at revision {asyncio.run(migrate()) or 'base (empty)'}")
    return 0


# The commands below run the same services as the HTTP API, in-process (no server, no HTTP).
async def _with_container(use: Callable[[Any], Awaitable[int]]) -> int:
    from container import build_container

    container = build_container(load_settings())
    try:
        return await use(container)
    finally:
        result = container.shutdown_resources()
        if result is not None:
            await result


def _cmd_models(args: argparse.Namespace) -> int:
    async def show(container: Any) -> int:
        registry = await container.provider_registry()
        for spec in registry.models(args.capability):
            window = f"{spec.context_window:,}" if spec.context_window else "-"
            print(f"{spec.qualified_id:45} {window:>10}  {', '.join(sorted(spec.capabilities))}")
        return 0

    return asyncio.run(_with_container(show))


def _chat_request(args: argparse.Namespace) -> Any:
    from domain.chat import ChatRequest, Message

    metadata = dict(item.split("=", 1) for item in args.meta or () if "=" in item)
    return ChatRequest(
        model=args.model,
        messages=[Message("user", " ".join(args.prompt))],
        system=args.system,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        fallbacks=list(args.fallback or ()),
        metadata=metadata,
    )


def _cmd_chat(args: argparse.Namespace) -> int:
    from domain.types import CustomerId
    from services.chat import ChatCaller
    from services.chat_events import Completed, done_payload, stream_event

    if args.speech:  # voiced chat (issue 12): the answer spoken as it streams, written to -o
        from entrypoints.cli_voiced import voiced_chat

        return asyncio.run(_with_container(voiced_chat(args, _chat_request(args))))

    async def talk(container: Any) -> int:
        service = await container.chat_service()
        plan = service.plan(_chat_request(args))
        caller = ChatCaller(CustomerId(args.customer), f"cli-{secrets.token_hex(6)}")
        printed = False
        try:
            async for item in service.run(plan, caller):
                event = stream_event(item)
                if args.json:
                    type_, payload = ("done", done_payload(item)) if isinstance(item, Completed) else event or ("", {})
                    if type_:
                        print(json.dumps({"type": type_, "payload": payload}), flush=True)
                elif event is not None and event[0] == "text":
                    print(event[1]["text"], end="", flush=True)
                    printed = True
                elif event is not None and event[0] == "tool_call" and event[1]["phase"] == "start":
                    print(f"[tool call {event[1]['name']}]", end=" ", flush=True)
                    printed = True
                elif isinstance(item, Completed):
                    response = item.response
                    print(flush=True)
                    cost = f"${response.cost_usd:.6f}" if response.cost_usd is not None else "no price"
                    print(
                        f"[{response.model} · {response.finish_reason} · {response.usage.input_tokens} in / "
                        f"{response.usage.output_tokens} out tokens · {cost} · {response.latency_ms:.0f} ms]",
                        file=sys.stderr,
                    )
        except ServiceError:
            if printed:
                print(flush=True)  # end the partial line before the error line on stderr
            raise
        return 0

    return asyncio.run(_with_container(talk))


def _cmd_embed(args: argparse.Namespace) -> int:
    import attrs

    from domain.embeddings import EmbeddingRequest
    from domain.types import CustomerId
    from services.attempts import Caller

    async def embed(container: Any) -> int:
        service = await container.embedding_service()
        request = EmbeddingRequest(model=args.model, input=list(args.text), dimensions=args.dimensions)
        result = await service.embed(request, Caller(CustomerId(args.customer), f"cli-{secrets.token_hex(6)}"))
        print(json.dumps({"data": attrs.asdict(result.response), "meta": result.meta}), flush=True)
        return 0

    return asyncio.run(_with_container(embed))


# --- images: switchyard image, the image service in-process; files written where -o says ---------------------------
def _image_paths(output: str | None, mime_types: Sequence[str]) -> list[Path]:
    """``-o out.png`` for one image; ``out-1.png``, ``out-2.png`` ... for several; ``image.<ext>`` by default."""
    extension = {"image/jpeg": ".jpg", "image/webp": ".webp"}.get(mime_types[0] if mime_types else "", ".png")
    path = Path(output) if output else Path(f"image{extension}")
    if len(mime_types) == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{index}{path.suffix}") for index in range(1, len(mime_types) + 1)]


def _cmd_image(args: argparse.Namespace) -> int:
    from domain.images import ImageRequest
    from domain.types import CustomerId
    from services.attempts import Caller

    async def draw(container: Any) -> int:
        service = await container.image_service()
        request = ImageRequest(
            model=args.model,
            prompt=" ".join(args.prompt),
            n=args.n,
            size=args.size,
            quality=args.quality,
            background=args.background,
            output_format=args.format,
            seed=args.seed,
            fallbacks=tuple(args.fallback or ()),
            metadata=dict(item.split("=", 1) for item in args.meta or () if "=" in item),
        )
        result = await service.generate(request, Caller(CustomerId(args.customer), f"cli-{secrets.token_hex(6)}"))
        paths = _image_paths(args.output, [image.mime_type for image in result.images])
        for path, image in zip(paths, result.images, strict=True):
            path.write_bytes(image.data)
            print(path, flush=True)
        usage = result.generation.usage
        cost = f"${usage.cost_usd:.6f}" if usage.cost_usd is not None else "no price"
        print(f"[{result.generation.model} · {usage.images} image(s) · {cost}]", file=sys.stderr)
        return 0

    return asyncio.run(_with_container(draw))


# --- speech-to-text: switchyard transcribe, the transcription service in-process ----------------------------------
_PROGRESS_FROM_BYTES = 1024 * 1024  # about a minute of compressed speech: below that, a transcript is quick


async def _progress(label: str, stream: Any) -> None:
    """Elapsed time on one rewritten line of ``stream`` until cancelled (vendors report no progress of their own)."""
    started = asyncio.get_running_loop().time()
    try:
        while True:
            elapsed = asyncio.get_running_loop().time() - started
            bar = "#" * (int(elapsed * 2) % 20 + 1)
            stream.write(f"\r{label} [{bar:<20}] {elapsed:5.1f} s")
            stream.flush()
            await asyncio.sleep(0.25)
    finally:
        stream.write("\r" + " " * (len(label) + 32) + "\r")
        stream.flush()


def _cmd_transcribe(args: argparse.Namespace) -> int:
    import attrs

    from domain.transcription import TranscriptionRequest, audio_media_type
    from domain.types import CustomerId
    from services.attempts import Caller

    path = Path(args.file)
    try:
        audio = path.read_bytes()
    except OSError as exc:
        print(f"switchyard: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2

    async def transcribe(container: Any) -> int:
        service = await container.transcription_service()
        request = TranscriptionRequest(
            model=args.model,
            audio=audio,
            filename=path.name,
            content_type=audio_media_type(None, path.name) or "application/octet-stream",
            language=args.language,
            prompt=args.prompt,
            timestamps=args.timestamps,
            fallbacks=tuple(args.fallback or ()),
        )
        caller = Caller(CustomerId(args.customer), f"cli-{secrets.token_hex(6)}")
        ticker = None
        if len(audio) >= _PROGRESS_FROM_BYTES and sys.stderr.isatty():
            ticker = asyncio.create_task(_progress(f"transcribing {path.name}", sys.stderr))
        try:
            result = await service.transcribe(request, caller)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
        response = result.response
        if args.json:
            print(json.dumps({"data": attrs.asdict(response), "meta": result.meta}), flush=True)
            return 0
        for segment in response.segments or ():
            print(f"[{segment.start_s:8.2f} -> {segment.end_s:8.2f}] {segment.text}", flush=True)
        if not response.segments:
            print(response.text, flush=True)
        cost = f"${response.usage.cost_usd:.6f}" if response.usage.cost_usd is not None else "no price"
        print(f"[{response.model} · {response.duration_s:.1f} s of audio · {cost}]", file=sys.stderr)
        return 0

    return asyncio.run(_with_container(transcribe))


def _speech_format(args: argparse.Namespace) -> str:
    """``--format``, else the output file's extension (``.ogg`` is Opus, ``.raw`` raw PCM), else MP3."""
    if args.format:
        return str(args.format)
    suffix = Path(args.output).suffix.lower().lstrip(".")
    return {"ogg": "opus", "raw": "pcm", "m4a": "aac"}.get(suffix, suffix if suffix in _SPEECH_FORMATS else "mp3")


_SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


def _cmd_speak(args: argparse.Namespace) -> int:
    from domain.speech import SpeechRequest
    from domain.types import CustomerId
    from services.attempts import Caller

    async def speak(container: Any) -> int:
        service = await container.speech_service()
        request = SpeechRequest(
            model=args.model,
            input=" ".join(args.text),
            voice=args.voice,
            format=cast(Any, _speech_format(args)),
            sample_rate=args.sample_rate,
            speed=args.speed,
            instructions=args.instructions,
        )
        stream = await service.start(request, Caller(CustomerId(args.customer), f"cli-{secrets.token_hex(6)}"))
        written = 0
        # The file is opened only once audio arrived: a refused request leaves no empty file behind.
        with open(args.output, "wb") as out:  # noqa: ASYNC230 - the CLI loop serves this one request
            async for chunk in stream.chunks():
                out.write(chunk)
                written += len(chunk)
        cost = f"${stream.cost_usd:.6f}" if stream.cost_usd is not None else "no price"
        print(
            f"[{stream.model.qualified_id} · {request.format} · {written:,} bytes · {stream.characters} characters · "
            f"{cost}] -> {args.output}",
            file=sys.stderr,
        )
        if stream.cut is not None:
            raise stream.cut  # the file keeps the audio that arrived; the exit status says it is short
        return 0

    return asyncio.run(_with_container(speak))


def _cmd_config(args: argparse.Namespace) -> int:
    if args.list:
        from settings.loader import describe

        for key, variable, default in describe():
            print(f"{key:40} {variable:45} {default}")
        return 0
    print(json.dumps(masked_dict(load_settings()), indent=2, default=str))
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from container import build_container

    settings = load_settings()
    if settings.app.env == "production":
        raise ConfigurationError("SWITCHYARD_ENV", "switchyard token refuses to mint tokens in production")
    minter = build_container(settings).token_minter()
    print(minter.mint(args.sub, email=args.email, scopes=args.scope or (), ttl_s=args.ttl))
    return 0


def _version() -> str:
    # The same lookup as container.package_version, without importing the container (and with it every adapter):
    # `switchyard version` answers in a fraction of a second.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("switchyard")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+source"


def _cmd_version(_args: argparse.Namespace) -> int:
    print(_version())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands register their handler as ``func``)."""
    parser = argparse.ArgumentParser(prog="switchyard", description="Switchyard AI backend core")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP/WebSocket server (Hypercorn)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None)
    serve.set_defaults(func=_cmd_serve)

    config = commands.add_parser("config", help="validate and print the effective settings (secrets masked)")
    config.add_argument("--list", action="store_true", help="list every setting, its variable and default")
    config.set_defaults(func=_cmd_config)

    token = commands.add_parser("token", help="mint a development JWT from the configured secret")
    token.add_argument("--sub", required=True)
    token.add_argument("--email", default=None)
    token.add_argument("--scope", action="append")
    token.add_argument("--ttl", default="1h", type=_parse_ttl, help="lifetime, e.g. 30m, 1h, 7d")
    token.set_defaults(func=_cmd_token)

    migrate = commands.add_parser("migrate", help="upgrade (or downgrade) the database schema")
    migrate.add_argument("--revision", default="head", help="upgrade target (default: head)")
    migrate.add_argument("--downgrade", metavar="REVISION", default=None, help="downgrade to REVISION (e.g. base)")
    migrate.set_defaults(func=_cmd_migrate)

    chat = commands.add_parser("chat", help="chat with a model in-process, printing the stream as it arrives")
    chat.add_argument("prompt", nargs="+", help="the user message")
    chat.add_argument("--model", default="fake/echo", help="provider/model, bare id or alias (default: fake/echo)")
    chat.add_argument("--system", default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--fallback", action="append", help="a model to try if the first fails (repeatable)")
    chat.add_argument("--meta", action="append", help="request metadata KEY=VALUE (repeatable)")
    chat.add_argument("--customer", default="cli", help="customer id for usage records (default: cli)")
    chat.add_argument("--json", action="store_true", help="print every event as a JSON line")
    chat.set_defaults(func=_cmd_chat)
    # voiced chat (issue 12): entrypoints/cli_voiced.py
    from entrypoints.cli_voiced import add_speech_arguments

    add_speech_arguments(chat)

    embed = commands.add_parser("embed", help="embed texts in-process, printing the vectors as JSON")
    embed.add_argument("text", nargs="+", help="the texts, one vector each, in order")
    embed.add_argument("--model", default="fake/embed", help="provider/model, bare id or alias (default: fake/embed)")
    embed.add_argument("--dimensions", type=int, default=None, help="shorter vectors, where the model allows it")
    embed.add_argument("--customer", default="cli", help="customer id for usage records (default: cli)")
    embed.set_defaults(func=_cmd_embed)

    image = commands.add_parser("image", help="generate images in-process and write them to files")
    image.add_argument("prompt", nargs="+", help="what to draw")
    image.add_argument("--model", default="fake/image", help="provider/model, bare id or alias (default: fake/image)")
    image.add_argument(
        "-o", "--output", default=None, help="file to write (several: NAME-1.EXT ...; default: image.png)"
    )
    image.add_argument("-n", "--n", type=int, default=1, help="how many images (default: 1)")
    image.add_argument("--size", default=None, help="WIDTHxHEIGHT or auto (a size the model lacks lists its sizes)")
    image.add_argument("--quality", default=None)
    image.add_argument("--format", choices=("png", "jpeg", "webp"), default=None, help="output format")
    image.add_argument("--background", default=None, help="e.g. transparent (GPT image models)")
    image.add_argument("--seed", type=int, default=None)
    image.add_argument("--fallback", action="append", help="a model to try if the first fails (repeatable)")
    image.add_argument("--meta", action="append", help="request metadata KEY=VALUE (repeatable)")
    image.add_argument("--customer", default="cli", help="customer id for usage records (default: cli)")
    image.set_defaults(func=_cmd_image)

    transcribe = commands.add_parser("transcribe", help="transcribe an audio file in-process, printing the text")
    transcribe.add_argument("file", help="the audio file (WAV, MP3, Ogg, FLAC, WebM, M4A ...)")
    transcribe.add_argument("--model", default="fake/transcribe", help="a model with stt (default: fake/transcribe)")
    transcribe.add_argument("--language", default=None, help="ISO-639-1 hint, e.g. en")
    transcribe.add_argument("--prompt", default=None, help="names and spelling to guide the model")
    transcribe.add_argument("--timestamps", choices=["none", "segment", "word"], default="none")
    transcribe.add_argument("--fallback", action="append", help="a model to try if the first fails (repeatable)")
    transcribe.add_argument("--customer", default="cli", help="customer id for usage records (default: cli)")
    transcribe.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    transcribe.set_defaults(func=_cmd_transcribe)

    speak = commands.add_parser("speak", help="speak text in-process, writing the audio to a file as it streams")
    speak.add_argument("text", nargs="+", help="the text to speak")
    speak.add_argument("-o", "--output", required=True, help="the audio file to write (its extension picks the format)")
    speak.add_argument("--model", default="fake/speech", help="a text-to-speech model (default: fake/speech)")
    speak.add_argument("--voice", default=None, help="a voice of the model (GET /api/v1/voices?model=...)")
    speak.add_argument("--format", choices=_SPEECH_FORMATS, default=None, help="default: from -o, else mp3")
    speak.add_argument("--sample-rate", type=int, default=None, help="for --format pcm (default 24000)")
    speak.add_argument("--speed", type=float, default=None)
    speak.add_argument("--instructions", default=None, help="how to speak it, where the model takes directions")
    speak.add_argument("--customer", default="cli", help="customer id for usage records (default: cli)")
    speak.set_defaults(func=_cmd_speak)

    models = commands.add_parser("models", help="list the models this configuration can serve")
    models.add_argument("--capability", default=None, help="only models with this capability")
    models.set_defaults(func=_cmd_models)

    # API keys (issue 18): entrypoints/cli_keys.py
    from entrypoints.cli_keys import add_keys_command

    add_keys_command(commands, ttl=_parse_ttl, run=_with_container)

    # video generation as durable jobs (issue 16): entrypoints/cli_video.py
    from entrypoints.cli_video import add_video_command

    add_video_command(commands, run=_with_container)

    ver = commands.add_parser("version", help="print the version")
    ver.set_defaults(func=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None, *, build_app: Callable[[], Quart] | None = None) -> int:
    """Run the CLI; configuration and service errors print one line and exit 2 / 1. ``build_app`` (a module-level
    function returning a Quart app) replaces the app ``serve`` runs in every serving process: the end-to-end tests add
    their test-only routes with it (``tests/support/serve.py``)."""
    args = build_parser().parse_args(argv)
    args.build_app = build_app
    try:
        return int(args.func(args) or 0)
    except ConfigurationError as exc:
        print(f"switchyard: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"switchyard: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
