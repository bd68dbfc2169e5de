"""JoseTokenVerifier: algorithms from settings, key selection per key type, claims, and hostile input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import OctKey

from adapters.jose.minter import JoseTokenMinter
from adapters.jose.verifier import MAX_CLAIM_DEPTH, VERIFIED_TTL_S, JoseTokenVerifier
from domain.errors import AuthenticationError, ConfigurationError, ServiceUnavailableError
from settings import Secret
from settings.model import AuthSettings
from tests.fakes.auth import FakeKeySource
from tests.support.jwks import claims, ec_key, okp_key, rsa_key, sign

SECRET = Secret("unit-test-secret-that-is-long-enough-0123456789")
RSA = rsa_key("rsa-1")
ALL_ALGS = ("HS256", "RS256", "PS256", "ES256", "EdDSA", "Ed25519")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HS256_HEADER = _b64(b'{"alg":"HS256"}')


def verifier(
    *, source: FakeKeySource | None = None, secret: Secret | None = SECRET, **fields: Any
) -> JoseTokenVerifier:
    auth = attrs.evolve(AuthSettings(), **{"algorithms": ALL_ALGS, **fields})
    return JoseTokenVerifier(auth, secret, key_source=source)


def hs256(payload: dict[str, Any], secret: Secret = SECRET) -> str:
    return sign(OctKey.import_key(secret.reveal()), payload, alg="HS256")


async def test_hs256_token_maps_to_an_auth_context() -> None:
    """sub, email, scopes, exp and the raw token land in the AuthContext."""
    token = JoseTokenMinter(SECRET).mint("alice", email="a@example.com", scopes=["chat", "admin"], ttl_s=60)
    auth = await verifier().verify(token)
    assert auth.customer_id == "alice"
    assert auth.email == "a@example.com"
    assert auth.scopes == {"chat", "admin"}
    assert auth.token == token
    assert auth.expires_at is not None
    assert auth.expires_at > time.time()
    assert token not in repr(auth)


class _Clock:
    """Wall-clock seconds that a test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_verified_token_is_remembered_until_its_expiry_and_no_longer() -> None:
    """The same token again is answered from memory, but never past its exp (the leeway would still admit it: only
    a full verification may), nor past VERIFIED_TTL_S; a failure is never remembered."""
    clock = _Clock()
    v = JoseTokenVerifier(attrs.evolve(AuthSettings(), leeway_s=30.0), SECRET, clock=clock)
    token = hs256(claims(ttl_s=10))
    first = await v.verify(token)
    clock.now += 9
    assert await v.verify(token) == first
    assert (v.stats.verified, v.stats.remembered) == (1, 1)
    clock.now += 2  # past exp
    assert (await v.verify(token)).customer_id == "alice"  # still within the leeway of the real clock
    assert (v.stats.verified, v.stats.remembered) == (2, 1)
    long_lived = hs256(claims("bob", ttl_s=3600))
    await v.verify(long_lived)
    clock.now += VERIFIED_TTL_S + 1
    await v.verify(long_lived)
    assert (v.stats.verified, v.stats.remembered) == (4, 1)
    forged = hs256(claims(), secret=Secret("another-secret-that-is-long-enough-0123456789"))
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await v.verify(forged)
    assert v.stats.verified == 6


async def test_a_remembered_token_stops_with_its_issuer_key() -> None:
    """A token verified with a key of the issuer's set is remembered only while the set holds that key: once the
    key is retired it fails as before."""
    clock = _Clock()
    source = FakeKeySource([RSA.as_dict(private=False)])
    v = JoseTokenVerifier(attrs.evolve(AuthSettings(), algorithms=("RS256",)), None, key_source=source, clock=clock)
    token = sign(RSA, claims())
    first = await v.verify(token)
    assert await v.verify(token) == first
    assert v.stats.remembered == 1
    source.keys.clear()  # the issuer retired the key (the real source notices after its TTL)
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await v.verify(token)


async def test_customer_id_and_scopes_come_from_configured_claims() -> None:
    """customer_id_claim and scopes_claim are honoured; list-valued scopes work."""
    token = hs256(claims("ignored", tenant="acme", roles=["reader", "writer"]))
    auth = await verifier(customer_id_claim="tenant", scopes_claim="roles").verify(token)
    assert auth.customer_id == "acme"
    assert auth.scopes == {"reader", "writer"}


@pytest.mark.parametrize(
    ("alg", "make"),
    [("RS256", rsa_key), ("PS256", rsa_key), ("ES256", ec_key), ("EdDSA", okp_key), ("Ed25519", okp_key)],
)
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
async def test_asymmetric_tokens_verify_with_jwks_keys(alg: str, make: Any) -> None:
    """Each asymmetric family verifies with a key of its own type from the key source."""
    key = make(f"k-{alg}")
    source = FakeKeySource([key.as_dict(private=False)])
    auth = await verifier(source=source).verify(sign(key, claims("bob"), alg=alg))
    assert auth.customer_id == "bob"
    assert source.lookups == [f"k-{alg}"]


async def test_static_public_key_files_verify(tmp_path: Path) -> None:
    """A PEM file in auth.public_keys verifies RS256 tokens whatever kid they carry."""
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(RSA.as_pem(private=False))
    auth = await verifier(public_keys=(pem,)).verify(sign(RSA, claims("carol"), kid="issuer-kid-2024"))
    assert auth.customer_id == "carol"


def test_unreadable_or_foreign_public_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A missing or non-key file names SWITCHYARD_AUTH_PUBLIC_KEYS."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    for path in (tmp_path / "missing.pem", junk):
        with pytest.raises(ConfigurationError) as caught:
            verifier(public_keys=(path,))
        assert caught.value.key == "SWITCHYARD_AUTH_PUBLIC_KEYS"


def test_none_is_refused_even_when_configured() -> None:
    """algorithms = ['none'] stops the process instead of accepting unsigned tokens."""
    with pytest.raises(ConfigurationError):
        verifier(algorithms=("HS256", "none"))


async def test_algorithm_outside_the_allow_list_is_rejected() -> None:
    """An RS256 token is refused when only HS256 is configured, even with a matching key available."""
    source = FakeKeySource([RSA.as_dict(private=False)])
    with pytest.raises(AuthenticationError, match="algorithm not accepted"):
        await verifier(source=source, algorithms=("HS256",)).verify(sign(RSA, claims()))
    assert source.lookups == []


async def test_oct_keys_from_a_key_source_never_verify_hmac_tokens() -> None:
    """HMAC uses only the configured secret: a symmetric key served by the issuer is ignored."""
    attacker = OctKey.import_key("attacker-chosen-secret-0123456789abcdef", parameters={"kid": "oct"})
    source = FakeKeySource([attacker.as_dict(private=True)])
    token = sign(attacker, claims(), alg="HS256")
    with pytest.raises(AuthenticationError, match="no shared secret"):
        await verifier(source=source, secret=None).verify(token)
    with pytest.raises(AuthenticationError, match="signature"):
        await verifier(source=source).verify(token)


async def test_key_of_the_wrong_type_is_never_tried() -> None:
    """An ES256 token whose kid names an RSA key finds no candidate key."""
    ec = ec_key("shared-kid")
    rsa = rsa_key("shared-kid")
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await verifier(source=FakeKeySource([rsa.as_dict(private=False)])).verify(sign(ec, claims(), alg="ES256"))


async def test_issuer_down_is_service_unavailable_not_401() -> None:
    """When keys cannot be had the caller learns it is our problem (503-class), not theirs."""
    source = FakeKeySource([RSA.as_dict(private=False)])
    source.down = True
    with pytest.raises(ServiceUnavailableError):
        await verifier(source=source).verify(sign(RSA, claims()))


async def test_claims_nested_too_deeply_are_rejected() -> None:
    """A validly signed token with claims nested beyond the limit is refused, at any depth."""
    nested: Any = "leaf"
    for _ in range(MAX_CLAIM_DEPTH + 1):
        nested = {"n": nested}
    with pytest.raises(AuthenticationError, match="nested"):
        await verifier().verify(hs256(claims(deep=nested)))
    very_deep = json.dumps(claims())[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"
    token = _signed_raw(very_deep.encode())
    with pytest.raises(AuthenticationError):
        await verifier(max_token_bytes=100_000).verify(token)


def _signed_raw(payload: bytes) -> str:
    signing_input = f"{HS256_HEADER}.{_b64(payload)}"
    mac = hmac.new(SECRET.reveal().encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"sub": "a"}, "missing a required claim"),
        (claims(ttl_s=-120), "expired"),
        (claims(nbf=int(time.time()) + 3600), "invalid token claims"),
        (claims(iat=int(time.time()) + 3600), "invalid token claims"),
        (claims(exp=float("nan")), "invalid token claims"),
        ({**claims(), "sub": 42}, "invalid token claims"),
        ({"exp": int(time.time()) + 3600}, "no 'sub' claim"),  # collected long before it runs
    ],
)
async def test_bad_claims_are_rejected_with_a_reason(payload: dict[str, Any], reason: str) -> None:
    """Missing exp, expiry, nbf/iat in the future, non-numeric exp, wrong sub type, no subject."""
    with pytest.raises(AuthenticationError, match=reason):
        await verifier(leeway_s=0).verify(hs256(payload))


async def test_leeway_accepts_a_token_that_just_expired() -> None:
    """exp 10 s ago passes with a 30 s leeway and fails with none."""
    token = hs256(claims(ttl_s=-10))
    assert (await verifier(leeway_s=30).verify(token)).customer_id == "alice"
    with pytest.raises(AuthenticationError, match="expired"):
        await verifier(leeway_s=0).verify(token)


async def test_issuer_and_audience_are_checked_when_configured() -> None:
    """iss and aud must match the configuration; absent ones are refused too."""
    v = verifier(issuer="https://issuer.example", audience="switchyard")
    good = hs256(claims(iss="https://issuer.example", aud=["switchyard", "other"]))
    assert (await v.verify(good)).customer_id == "alice"
    for bad in (
        claims(iss="https://evil.example", aud="switchyard"),
        claims(iss="https://issuer.example", aud="someone-else"),
        claims(aud="switchyard"),
    ):
        with pytest.raises(AuthenticationError):
            await v.verify(hs256(bad))


async def test_absurd_expiry_does_not_crash() -> None:
    """An exp beyond float range verifies but carries no expires_at (no OverflowError, no 500)."""
    auth = await verifier().verify(hs256(claims(exp=10**400)))
    assert auth.expires_at is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(st.text(alphabet="eyJABCxyz019-_=+/.", max_size=60), min_size=3, max_size=3).map(".".join),
        st.binary(max_size=200).map(lambda b: ".".join([HS256_HEADER, _b64(b), _b64(b[:8])])),
    )
)
async def test_garbage_tokens_only_ever_raise_authentication_error(token: str) -> None:
    """Whatever the bytes, verification fails with AuthenticationError and nothing else."""
    with pytest.raises(AuthenticationError):
        await verifier().verify(token)
