"""JWT-shaped access and id tokens and opaque refresh tokens, minted and checked by the simulator.

Tokens are HMAC-signed with a key made fresh for each server, so a client cannot forge or edit one
(the services reject it as Microsoft's do) and the simulator keeps no per-token state. That is how
refresh tokens rotate on every use while all earlier ones stay valid, as Entra's do, with memory
that does not grow with the number of redemptions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


class InvalidTokenError(ValueError):
    """Not a token this simulator issued (malformed, edited or from another server)."""


@dataclass(frozen=True)
class RefreshTokenGrant:
    """What a refresh token stands for: a user of a client, and how that user signed in."""

    client_id: str
    user_object_id: str
    mfa: bool
    generation: int  # compared with the partner's revocation cut-off
    issued_at: int


class TokenSigner:
    """Signs and verifies tokens with a per-server secret key."""

    _RT_PREFIX = "1.AXoA"  # real Entra refresh tokens start like this; clients must not care

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _mac(self, message: bytes) -> str:
        return b64url(hmac.new(self._key, message, hashlib.sha256).digest())

    def mac(self, text: str) -> str:
        """A tag for opaque values the simulator hands out (continuation tokens)."""
        return self._mac(text.encode("utf-8"))

    def jwt(self, claims: dict[str, Any]) -> str:
        signing_input = b64url_json({"typ": "JWT", "alg": "HS256", "kid": "sync365-simulator"})
        signing_input += "." + b64url_json(claims)
        return f"{signing_input}.{self._mac(signing_input.encode('ascii'))}"

    def verify_jwt(self, token: str) -> dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidTokenError("IDX14100: JWT is not well formed, there are no dots (.).")
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
        if not hmac.compare_digest(parts[2], self._mac(signing_input)):
            raise InvalidTokenError("IDX10511: Signature validation failed.")
        try:
            claims = json.loads(b64url_decode(parts[1]))
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            raise InvalidTokenError("IDX14102: Unable to decode the payload as Base64Url.")
        return claims

    def refresh_token(self, grant: RefreshTokenGrant) -> str:
        payload = b64url_json(
            {
                "c": grant.client_id,
                "u": grant.user_object_id,
                "m": grant.mfa,
                "g": grant.generation,
                "i": grant.issued_at,
                "n": secrets.token_hex(8),  # every rotation yields a distinct string
            }
        )
        return f"{self._RT_PREFIX}{payload}.{self._mac(payload.encode('ascii'))}"

    def read_refresh_token(self, token: str) -> RefreshTokenGrant:
        body = token.removeprefix(self._RT_PREFIX)
        payload, _, mac = body.rpartition(".")
        if (
            body == token
            or not payload
            or not hmac.compare_digest(mac, self._mac(payload.encode("ascii", "replace")))
        ):
            raise InvalidTokenError("Provided grant is invalid or malformed.")
        fields = json.loads(b64url_decode(payload))
        return RefreshTokenGrant(
            client_id=fields["c"],
            user_object_id=fields["u"],
            mfa=fields["m"],
            generation=fields["g"],
            issued_at=fields["i"],
        )


def bearer_claims(
    signer: TokenSigner, authorization: str, audiences: tuple[str, ...], now: float
) -> dict[str, Any]:
    """Claims of a valid `Authorization: Bearer` access token for one of `audiences`.

    Raises `InvalidTokenError` with the reason the service would give (Graph's wording).
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError("Access token is empty.")
    claims = signer.verify_jwt(token.strip())
    if str(claims.get("aud", "")).lower() not in audiences:
        raise InvalidTokenError("Access token validation failure. Invalid audience.")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise InvalidTokenError("Lifetime validation failed, the token is expired.")
    if isinstance(claims.get("nbf"), int) and claims["nbf"] > now + 300:
        raise InvalidTokenError("Access token has expired or is not yet valid.")
    return claims
