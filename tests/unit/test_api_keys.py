"""ApiKeyService and CredentialVerifier: issue once, hash only, verify into an AuthContext, revoke at once on every
instance sharing a generation counter, no cache without one, last-used off the request path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.api_keys import KEY_PREFIX, hash_key, looks_like_key, model_allowed
from domain.auth import AuthContext
from domain.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from domain.quotas import Limits
from domain.types import CustomerId
from services.api_keys import ApiKeyService
from services.credentials import CredentialVerifier
from tests.fakes.api_keys import FakeApiKeyStore, FakeCacheGeneration
from tests.fakes.auth import FakeTokenVerifier
from tests.fakes.clock import FakeClock

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class WallClock:
    """A settable wall clock for expiry."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def service(
    store: FakeApiKeyStore | None = None,
    generation: FakeCacheGeneration | None = None,
    wall: WallClock | None = None,
    **kwargs: object,
) -> ApiKeyService:
    return ApiKeyService(
        store or FakeApiKeyStore(),
        generation,
        now=wall or WallClock(),
        touch_interval_s=kwargs.pop("touch_interval_s", 3600.0),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_key_is_shown_once_and_stored_as_its_hash_only() -> None:
    """The secret is `sy-` + 43 characters; the store holds its SHA-256 and the display prefix, never the key."""
    store = FakeApiKeyStore()
    issued = await service(store).create("acme", "ci", scopes=["chat"])
    assert issued.secret.startswith(KEY_PREFIX)
    assert len(issued.secret) == 46
    assert looks_like_key(issued.secret)
    assert store.hashes == {hash_key(issued.secret): issued.key.id}
    assert issued.key.prefix == issued.secret[:11]
    assert issued.secret not in repr(issued)
    assert issued.secret not in repr(store.keys)


async def test_a_key_verifies_into_the_same_auth_context_a_jwt_gives() -> None:
    """Customer, scopes, expiry and the key's id and models; the token itself is carried but never repr'd."""
    keys = service()
    issued = await keys.create("acme", "ci", scopes=["chat", "admin"], expires_in_s=3600, models=["openai/*"])
    auth = await keys.verify(issued.secret)
    assert isinstance(auth, AuthContext)
    assert auth.customer_id == "acme"
    assert auth.scopes == {"chat", "admin"}
    assert auth.key_id == issued.key.id
    assert auth.models == frozenset({"openai/*"})
    assert auth.expires_at == (START + timedelta(hours=1)).timestamp()
    assert issued.secret not in repr(auth)


@pytest.mark.parametrize(
    "token", ["sy-short", "sy-" + "a" * 43 + "!", "xx-" + "a" * 43, "sy-" + "a" * 200, ""], ids=repr
)
async def test_malformed_keys_are_refused_before_any_lookup(token: str) -> None:
    """A token without the key's shape is a 401 that never reaches the store."""
    store = FakeApiKeyStore()
    with pytest.raises(AuthenticationError, match="malformed"):
        await service(store).verify(token)
    assert store.reads == 0


async def test_unknown_revoked_and_expired_keys_are_refused() -> None:
    """A well-formed unknown key, a revoked key and an expired key are each a 401 saying which."""
    wall = WallClock()
    keys = service(wall=wall)
    with pytest.raises(AuthenticationError, match="unknown"):
        await keys.verify("sy-" + "A" * 43)
    revoked = await keys.create("acme", "old")
    await keys.revoke(revoked.key.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await keys.verify(revoked.secret)
    short = await keys.create("acme", "short", expires_in_s=60)
    assert (await keys.verify(short.secret)).customer_id == "acme"
    wall.now = START + timedelta(seconds=60)
    with pytest.raises(AuthenticationError, match="expired"):
        await keys.verify(short.secret)


async def test_revocation_is_refused_at_once_by_every_instance_sharing_the_counter() -> None:
    """Two services (two instances) share a store and a generation counter: both cache the key (no store read on
    the second verify), one revokes, and the other refuses it on its very next verify."""
    store, generation = FakeApiKeyStore(), FakeCacheGeneration()
    a, b = service(store, generation), service(store, generation)
    issued = await a.create("acme", "ci")
    for instance in (a, b, a, b):
        await instance.verify(issued.secret)
    assert store.reads == 2  # one per instance: the rest came from their caches
    await b.revoke(issued.key.prefix)
    for instance in (a, b):
        with pytest.raises(AuthenticationError, match="revoked"):
            await instance.verify(issued.secret)


async def test_without_a_counter_nothing_is_cached() -> None:
    """The embedded default (no Redis): every verify reads the store, so another worker's revocation holds at once."""
    store = FakeApiKeyStore()
    a, b = service(store), service(store)
    issued = await a.create("acme", "ci")
    for _ in range(3):
        await a.verify(issued.secret)
    assert store.reads == 3
    await b.revoke(issued.key.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await a.verify(issued.secret)


async def test_a_counter_that_cannot_be_read_means_no_cache() -> None:
    """Redis down: the key is read from the store each time (still verified, never trusted from memory)."""
    store, generation = FakeApiKeyStore(), FakeCacheGeneration()
    keys = service(store, generation)
    issued = await keys.create("acme", "ci")
    await keys.verify(issued.secret)
    generation.down = True
    await keys.verify(issued.secret)
    await keys.verify(issued.secret)
    assert store.reads == 3


async def test_cached_entries_age_out() -> None:
    """Even under an unchanged counter an entry is re-read after cache_ttl_s (a bound on any missed signal)."""
    store, generation, clock = FakeApiKeyStore(), FakeCacheGeneration(), FakeClock()
    keys = service(store, generation, clock=clock, cache_ttl_s=10.0)
    issued = await keys.create("acme", "ci")
    await keys.verify(issued.secret)
    await keys.verify(issued.secret)
    clock.advance(10.0)
    await keys.verify(issued.secret)
    assert store.reads == 2


async def test_unknown_keys_are_cached_too_but_bounded() -> None:
    """Probing with random keys costs one read each and never grows the cache past its bound."""
    store, generation = FakeApiKeyStore(), FakeCacheGeneration()
    keys = service(store, generation, cache_size=4)
    for i in range(10):
        with pytest.raises(AuthenticationError):
            await keys.verify("sy-" + f"{i:02d}" * 22)
    assert len(keys._cache) <= 4


async def test_revoke_by_prefix_needs_an_unambiguous_match() -> None:
    """Unknown is a 404, a prefix shared by two keys a 409 naming them, a too-short one a 422."""
    counter = iter(["a" * 43, "a" * 8 + "b" * 35])
    keys = service(secret=lambda: next(counter))
    one = await keys.create("acme", "one")
    two = await keys.create("acme", "two")
    with pytest.raises(NotFoundError):
        await keys.revoke("sy-zzzz")
    with pytest.raises(ConflictError) as caught:
        await keys.revoke("sy-aaaa")
    assert set(caught.value.context["matches"]) == {one.key.id, two.key.id}
    with pytest.raises(ValidationError):
        await keys.revoke("sy-")
    assert (await keys.revoke(two.secret)).id == two.key.id  # the whole key names one
    assert (await keys.revoke(one.key.id)).id == one.key.id


async def test_revoking_twice_keeps_the_first_time() -> None:
    """A repeated revocation (e.g. after a 503 from the counter) is harmless and keeps revoked_at."""
    wall = WallClock()
    keys = service(wall=wall)
    issued = await keys.create("acme", "ci")
    first = await keys.revoke(issued.key.id)
    wall.now = START + timedelta(minutes=5)
    again = await keys.revoke(issued.key.id)
    assert again.revoked_at == first.revoked_at == START


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("customer_id", {"customer_id": " "}),
        ("name", {"name": ""}),
        ("scopes", {"scopes": ["has space"]}),
        ("models", {"models": []}),
        ("expires_in_s", {"expires_in_s": 0}),
        ("limits.concurrent_streams", {"limits": Limits(concurrent_streams=-1)}),
        ("limits.daily_budget_usd", {"limits": Limits(daily_budget_usd=float("nan"))}),
        ("limits.requests_per_minute", {"limits": Limits(requests_per_minute=2**31)}),
    ],
)
async def test_bad_key_requests_name_the_field(field: str, kwargs: dict[str, object]) -> None:
    """Each invalid field is a 422 naming it."""
    args: dict[str, object] = {"customer_id": "acme", "name": "ci", **kwargs}
    customer, name = str(args.pop("customer_id")), str(args.pop("name"))
    with pytest.raises(ValidationError) as caught:
        await service().create(customer, name, **args)  # type: ignore[arg-type]
    assert caught.value.field == field


async def test_last_used_is_written_later_in_one_batch() -> None:
    """Verifying writes nothing at once; the background flush records the latest use per key."""
    store = FakeApiKeyStore()
    wall = WallClock()
    keys = service(store, wall=wall, touch_interval_s=0.01)
    issued = await keys.create("acme", "ci")
    await keys.verify(issued.secret)
    wall.now = START + timedelta(seconds=5)
    await keys.verify(issued.secret)
    assert store.keys[issued.key.id].last_used_at is None
    await asyncio.sleep(0.05)
    assert store.keys[issued.key.id].last_used_at == START + timedelta(seconds=5)
    await keys.aclose()


async def test_pending_last_used_is_flushed_at_close() -> None:
    """Shutdown writes what the timer had not yet."""
    store = FakeApiKeyStore()
    keys = service(store)
    issued = await keys.create("acme", "ci")
    await keys.verify(issued.secret)
    await keys.aclose()
    assert store.keys[issued.key.id].last_used_at == START


async def test_the_credential_verifier_routes_by_prefix() -> None:
    """`sy-` tokens go to the keys, anything else to the JWT verifier; both give an AuthContext."""
    keys = service()
    issued = await keys.create("acme", "ci")
    jwt = FakeTokenVerifier({"eyJ.jwt.sig": AuthContext(CustomerId("bob"))})
    verifier = CredentialVerifier(jwt, keys)
    assert (await verifier.verify(issued.secret)).customer_id == "acme"
    assert (await verifier.verify("eyJ.jwt.sig")).customer_id == "bob"
    with pytest.raises(AuthenticationError):
        await verifier.verify("sy-nope")


async def test_a_keys_own_limits_reach_its_auth_context() -> None:
    """A key created with limits verifies with them as `key_limits`; a key without any carries none."""
    keys = service()
    limited = await keys.create("acme", "ci", limits=Limits(requests_per_minute=5, daily_budget_usd=2.0))
    plain = await keys.create("acme", "ci2")
    assert (await keys.verify(limited.secret)).key_limits == Limits(requests_per_minute=5, daily_budget_usd=2.0)
    assert (await keys.verify(plain.secret)).key_limits is None


def test_model_allow_lists_match_ids_aliases_and_provider_wildcards() -> None:
    """A model is allowed by its qualified id, bare id, an alias, or `provider/*`."""
    names = ("openai/gpt-4o-mini", "gpt-4o-mini", "mini")
    assert model_allowed({"openai/gpt-4o-mini"}, names, "openai")
    assert model_allowed({"mini"}, names, "openai")
    assert model_allowed({"openai/*"}, names, "openai")
    assert not model_allowed({"anthropic/*", "gpt-4o"}, names, "openai")
