"""HttpxJwksKeySource against a real JWKS endpoint on 127.0.0.1: caching, rotation, refresh limits, issuer down."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from quart.typing import TestClientProtocol

from adapters.jose.jwks import HttpxJwksKeySource, parse_jwks
from adapters.jose.verifier import JoseTokenVerifier
from domain.errors import AuthenticationError, ServiceUnavailableError
from entrypoints.http.app import create_app
from settings.model import AuthSettings
from tests.support.app import make_container, make_settings
from tests.support.jwks import JwksServer, claims, ec_key, jwks_server, rsa_key, sign
from tests.support.server import free_port

TTL = 300.0
INTERVAL = 30.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[JwksServer]:
    with jwks_server() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


def source_for(server: JwksServer, clock: Clock, *, timeout_s: float = 1.0) -> HttpxJwksKeySource:
    return HttpxJwksKeySource(server.url, clock=clock, ttl_s=TTL, timeout_s=timeout_s, min_refresh_interval_s=INTERVAL)


def verifier_for(source: HttpxJwksKeySource) -> JoseTokenVerifier:
    return JoseTokenVerifier(attrs.evolve(AuthSettings(), algorithms=("RS256", "ES256")), None, key_source=source)


async def test_key_set_is_fetched_once_and_cached(server: JwksServer, clock: Clock) -> None:
    """Repeated verifications within the TTL cost the issuer one request."""
    key = rsa_key("k1")
    server.keys = [key]
    verifier = verifier_for(source_for(server, clock))
    for _ in range(5):
        assert (await verifier.verify(sign(key, claims()))).customer_id == "alice"
    assert server.requests == 1


async def test_rotation_new_kid_triggers_a_refresh_and_old_keys_expire(server: JwksServer, clock: Clock) -> None:
    """A token signed by a newly published key verifies at once; a retired key stops after the TTL."""
    old, new = rsa_key("2024"), rsa_key("2025")
    server.keys = [old]
    verifier = verifier_for(source_for(server, clock))
    await verifier.verify(sign(old, claims()))
    clock.now += INTERVAL  # the rate limit allows a refresh again
    server.keys = [old, new]
    assert (await verifier.verify(sign(new, claims("bob")))).customer_id == "bob"
    assert server.requests == 2
    server.keys = [new]
    await verifier.verify(sign(old, claims()))  # still cached: the set is authoritative within its TTL
    clock.now += TTL
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await verifier.verify(sign(old, claims()))
    assert (await verifier.verify(sign(new, claims("bob")))).customer_id == "bob"


async def test_a_flood_of_random_kids_costs_one_refresh_per_interval(server: JwksServer, clock: Clock) -> None:
    """Unknown kids are 401s; the issuer is asked at most once per min_refresh_interval."""
    key = rsa_key("real")
    server.keys = [key]
    verifier = verifier_for(source_for(server, clock))
    await verifier.verify(sign(key, claims()))
    clock.now += INTERVAL
    strangers = [sign(rsa_key(f"random-{index}"), claims()) for index in range(3)]
    for index in range(50):
        clock.now += 0.1
        with pytest.raises(AuthenticationError, match="unknown signing key"):
            await verifier.verify(strangers[index % 3])
    assert server.requests == 2
    clock.now += INTERVAL
    with pytest.raises(AuthenticationError):
        await verifier.verify(strangers[0])
    assert server.requests == 3


async def test_concurrent_unknown_kids_share_one_fetch(server: JwksServer, clock: Clock) -> None:
    """Twenty simultaneous first lookups make one request to the issuer."""
    key = ec_key("ec")
    server.keys = [key]
    server.delay_s = 0.05
    verifier = verifier_for(source_for(server, clock))
    results = await asyncio.gather(*(verifier.verify(sign(key, claims(), alg="ES256")) for _ in range(20)))
    assert {r.customer_id for r in results} == {"alice"}
    assert server.requests == 1


async def test_issuer_down_cached_keys_work_until_ttl_then_503(server: JwksServer, clock: Clock) -> None:
    """Within the TTL an outage is invisible; beyond it, ServiceUnavailableError, retried once per interval."""
    key = rsa_key("k1")
    server.keys = [key]
    verifier = verifier_for(source_for(server, clock))
    await verifier.verify(sign(key, claims()))
    server.status = 503
    clock.now += TTL - 1
    await verifier.verify(sign(key, claims()))
    with pytest.raises(AuthenticationError):  # an unknown kid during the outage: still just unknown
        await verifier.verify(sign(rsa_key("new"), claims()))
    assert server.requests == 2
    clock.now += 2
    for _ in range(10):
        with pytest.raises(ServiceUnavailableError):
            await verifier.verify(sign(key, claims()))
    assert server.requests == 2  # the failure 2 s ago is not retried before the interval has passed
    clock.now += INTERVAL
    with pytest.raises(ServiceUnavailableError):
        await verifier.verify(sign(key, claims()))
    assert server.requests == 3
    server.status = 200
    clock.now += INTERVAL
    assert (await verifier.verify(sign(key, claims()))).customer_id == "alice"
    assert server.requests == 4


async def test_issuer_unreachable_from_the_start_is_503(clock: Clock) -> None:
    """A refused connection is ServiceUnavailableError, never a crash or a 401."""
    source = HttpxJwksKeySource(f"http://127.0.0.1:{free_port()}/jwks.json", clock=clock, timeout_s=1.0)
    with pytest.raises(ServiceUnavailableError):
        await source.keys_for("k1")


async def test_stopped_issuer_after_ttl_is_503(server: JwksServer, clock: Clock) -> None:
    """The real outage: the port stops answering; cached keys work, then 503 after the TTL."""
    key = rsa_key("k1")
    server.keys = [key]
    verifier = verifier_for(source_for(server, clock))
    await verifier.verify(sign(key, claims()))
    server.stop()
    clock.now += TTL + 1
    with pytest.raises(ServiceUnavailableError):
        await verifier.verify(sign(key, claims()))


async def test_slow_issuer_hits_the_timeout(server: JwksServer, clock: Clock) -> None:
    """An issuer slower than jwks_timeout_s is an outage, reported within about the timeout."""
    server.keys = [rsa_key("k1")]
    server.delay_s = 2.0
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        await source_for(server, clock, timeout_s=0.3).keys_for("k1")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("body", [b"not json", b'{"no": "keys"}', b"[" * 100_000, b'{"keys": "x"}'])
async def test_invalid_documents_are_an_outage(server: JwksServer, clock: Clock, body: bytes) -> None:
    """Garbage from the issuer is ServiceUnavailableError, whatever its shape."""
    server.body = body
    with pytest.raises(ServiceUnavailableError):
        await source_for(server, clock).keys_for("k1")


async def test_oversized_document_is_refused(server: JwksServer, clock: Clock) -> None:
    """A key set larger than the bound is not read to the end."""
    server.body = json.dumps({"keys": [], "pad": "x" * 5000}).encode()
    source = HttpxJwksKeySource(server.url, clock=clock, max_bytes=1000)
    with pytest.raises(ServiceUnavailableError, match="unavailable"):
        await source.keys_for(None)


def test_parse_keeps_only_public_signature_keys() -> None:
    """oct keys, encryption keys, unknown types and broken keys are dropped; private parts are stripped."""
    rsa, ec = rsa_key("sig"), ec_key("ec")
    enc = {**rsa_key("enc").as_dict(private=False), "use": "enc"}
    document = {
        "keys": [
            rsa.as_dict(private=True),
            ec.as_dict(private=False),
            enc,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "XYZ"},
            "not a key",
        ]
    }
    keys = parse_jwks(json.dumps(document).encode())
    assert [k["kid"] for k in keys] == ["sig", "ec"]
    assert "d" not in keys[0]


async def test_app_answers_503_envelope_when_the_issuer_is_unreachable(tmp_path: Path) -> None:
    """Through HTTP: an RS256 token while the JWKS URL refuses connections is a 503 envelope, not 401 or 500."""
    auth = {"algorithms": ("RS256",), "jwks_url": f"http://127.0.0.1:{free_port()}/jwks.json", "jwks_timeout_s": 1.0}
    app = create_app(make_container(make_settings(tmp_path, auth=auth)))
    async with app.test_app():
        client: TestClientProtocol = app.test_client()
        token = sign(rsa_key("k1"), claims())
        response = await client.get("/api/v1/anything", headers={"Authorization": f"Bearer {token}"})
        body = await response.get_json()
    assert response.status_code == 503
    assert body["data"]["error"] == "service_unavailable"
    assert body["success"] is False
