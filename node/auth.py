"""Pairing and tokens (DESIGN.md section 8).

- `aurora-node devices add NAME` makes a one-time code (`new_pairing_code`): ten letters and digits from
  Crockford's alphabet (no I, L, O, U), about 50 bits, valid for `CODE_TTL`, stored as a hash, good once.
- `aurora pair URL CODE` trades it (`redeem`) for a device id, a short-lived access token and a refresh
  token. The access token is a JWT signed with HS256, and only HS256 is accepted when verifying
  (`algorithms=["HS256"]`): a token claiming `alg: none` or another algorithm is refused. Its issuer is
  the node's id, so a token from another node is refused too.
- `refresh` trades a refresh token for a new pair and marks the old one used. A used token presented again
  while its replacement has never been used is a retry (the answer was lost: the laptop was killed, the
  connection dropped): the unused replacement is revoked and a new one issued. Presented again after its
  replacement was used, it means someone else has a copy: the whole family (every token descended from
  that pairing) is revoked, and the device must pair again.
- A revoked device pairs again with a fresh code (the node's owner made one: that is their consent); an
  active device's id cannot be paired twice (a copied workspace would share its clock identity).
- A revoked device is refused at once: every request checks the registry, not just the token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from aurora.sync import new_id

ALGORITHM = "HS256"
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=60)
CODE_TTL = timedelta(minutes=10)
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a code read aloud or typed is not misread."""
CODE_LENGTH = 10


class AuthError(Exception):
    """A request's credentials are refused; `code` is the stable error code the API returns."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Tokens:
    device_id: str
    node_id: str
    access_token: str
    refresh_token: str
    expires_in: int


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_code(code: str) -> str:
    """A code as typed (any case, dashes, spaces, O for 0, I or L for 1) in canonical form."""
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


def format_code(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


async def node_identity(pool: AsyncConnectionPool[Any]) -> tuple[str, str]:
    """(node id, JWT secret), made on first use and shared by every node process on the database."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO node_meta (key, value) VALUES ('node_id', %s), ('jwt_secret', %s) "
            "ON CONFLICT (key) DO NOTHING",
            (new_id(), secrets.token_hex(32)),
        )
        cur = await conn.execute("SELECT key, value FROM node_meta WHERE key IN ('node_id', 'jwt_secret')")
        found = {str(k): str(v) for k, v in await cur.fetchall()}
    return found["node_id"], found["jwt_secret"]


async def new_pairing_code(pool: AsyncConnectionPool[Any], name: str, ttl: timedelta = CODE_TTL) -> str:
    """A one-time code for a device called `name`, shown once (only its hash is kept)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AuthError("invalid_request", "a device name is 1 to 100 characters")
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO pairing_codes (code_hash, name, expires_at) VALUES (%s, %s, now() + %s)",
            (_hash(code), name, ttl),
        )
    return format_code(code)


def issue_access(secret: str, node_id: str, device_id: str, ttl: timedelta = ACCESS_TTL) -> str:
    now = int(time.time())
    claims = {
        "sub": device_id,
        "iss": node_id,
        "iat": now,
        "exp": now + int(ttl.total_seconds()),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_access(secret: str, node_id: str, token: str) -> str:
    """The device id an access token was issued to; AuthError if it is forged, expired, from another node
    or signed any other way than HS256."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=node_id,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token_expired", "the access token has expired; refresh it") from None
    except jwt.PyJWTError:
        raise AuthError(
            "unauthorized", "the access token is not valid here; pair this device again"
        ) from None
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
        raise AuthError("unauthorized", "the access token is not valid here; pair this device again")
    return str(claims["sub"])


async def _issue(
    conn: AsyncConnection[Any],
    secret: str,
    node_id: str,
    device_id: str,
    family: str,
    replacing: str | None = None,
) -> Tokens:
    """New tokens for a device, the refresh token in `family`; `replacing` (a token's hash) is marked used
    and replaced by it."""
    refresh = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, device_id, family_id, expires_at) "
        "VALUES (%s, %s, %s, now() + %s)",
        (_hash(refresh), device_id, family, REFRESH_TTL),
    )
    if replacing is not None:
        await conn.execute(
            "UPDATE refresh_tokens SET used_at = coalesce(used_at, now()), replaced_by = %s "
            "WHERE token_hash = %s",
            (_hash(refresh), replacing),
        )
    access = issue_access(secret, node_id, device_id)
    return Tokens(device_id, node_id, access, refresh, int(ACCESS_TTL.total_seconds()))


async def redeem(
    pool: AsyncConnectionPool[Any], code: str, name: str | None = None, device_id: str | None = None
) -> Tokens:
    """Trade a pairing code for a new device and its first tokens (one transaction: a code is used once
    even when two laptops race with it). A laptop pairs under the device id it already stamps its
    operations with (`device_id`), so what it made before pairing is its own; without one the node makes
    an id. An id the node already knows is refused (a copied workspace: give it its own)."""
    node_id, secret = await node_identity(pool)
    wanted = normalise_code(code)
    if len(wanted) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in wanted):
        raise AuthError(
            "invalid_code", "that is not a pairing code; run `aurora-node devices add NAME` for one"
        )
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT name, expires_at < now(), used_at IS NOT NULL FROM pairing_codes "
            "WHERE code_hash = %s FOR UPDATE",
            (_hash(wanted),),
        )
        row = await cur.fetchone()
        if row is None:
            raise AuthError(
                "invalid_code", "unknown pairing code; run `aurora-node devices add NAME` for a new one"
            )
        code_name, expired, used = row
        if used:
            raise AuthError("invalid_code", "that pairing code was used already; make a new one")
        if expired:
            raise AuthError("invalid_code", "that pairing code has expired; make a new one")
        # The name the node's owner gave the code is the device's name (what they will revoke it by); a
        # name from the device itself is used only where the code has none.
        device_name = str(code_name).strip() or (name or "").strip()[:100] or "device"
        device_id = device_id or new_id()
        cur = await conn.execute(
            "INSERT INTO devices (id, name) VALUES (%s, %s) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, revoked_at = NULL "
            "WHERE devices.revoked_at IS NOT NULL RETURNING id",
            (device_id, device_name),
        )
        if await cur.fetchone() is None:
            raise AuthError(
                "device_exists",
                "the node already has an active device with this laptop's id (paired already, or a copied "
                "workspace); revoke it with `aurora-node devices revoke NAME` first, then pair again",
            )
        await conn.execute(
            "UPDATE pairing_codes SET used_at = now(), device_id = %s WHERE code_hash = %s",
            (device_id, _hash(wanted)),
        )
        return await _issue(conn, secret, node_id, device_id, family=new_id())


async def refresh(pool: AsyncConnectionPool[Any], token: str) -> Tokens:
    """A new access and refresh token for a refresh token used for the first time. A second use revokes
    the token's family (raised as `token_reused`, after the revocation is committed)."""
    node_id, secret = await node_identity(pool)
    reused = False
    async with pool.connection() as conn:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT t.device_id, t.family_id, t.used_at IS NOT NULL, t.revoked_at IS NOT NULL, "
                "t.expires_at < now(), d.revoked_at IS NOT NULL, "
                "r.token_hash IS NOT NULL AND r.used_at IS NULL AND r.revoked_at IS NULL "
                "FROM refresh_tokens AS t JOIN devices AS d ON d.id = t.device_id "
                "LEFT JOIN refresh_tokens AS r ON r.token_hash = t.replaced_by "
                "WHERE t.token_hash = %s FOR UPDATE OF t",
                (_hash(token),),
            )
            row = await cur.fetchone()
            if row is None:
                raise AuthError("unauthorized", "unknown refresh token; pair this device again")
            device_id, family, used, revoked, expired, device_revoked, replacement_unused = row
            if device_revoked:
                raise AuthError("device_revoked", "this device was revoked on the node; pair it again")
            if revoked or (used and not replacement_unused):
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = %s",
                    (family,),
                )
                reused = True
            elif expired:
                raise AuthError("unauthorized", "the refresh token has expired; pair this device again")
            else:
                if used:  # a retry: the replacement's answer never arrived, so it was never used
                    await conn.execute(
                        "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = "
                        "(SELECT replaced_by FROM refresh_tokens WHERE token_hash = %s)",
                        (_hash(token),),
                    )
                return await _issue(
                    conn, secret, node_id, str(device_id), str(family), replacing=_hash(token)
                )
    assert reused
    raise AuthError(
        "token_reused",
        "this refresh token was used before, so its tokens are revoked; pair this device again",
    )


async def revoke_device(pool: AsyncConnectionPool[Any], device_id: str) -> bool:
    """Revoke a device and every refresh token it holds; False if there is no such device."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s RETURNING id",
            (device_id,),
        )
        if await cur.fetchone() is None:
            return False
        await conn.execute(
            "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE device_id = %s",
            (device_id,),
        )
    return True


async def active_device(pool: AsyncConnectionPool[Any], device_id: str) -> bool:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT revoked_at IS NULL FROM devices WHERE id = %s", (device_id,))
        row = await cur.fetchone()
    return bool(row and row[0])
