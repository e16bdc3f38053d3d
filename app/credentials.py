"""Where a paired laptop keeps what it needs to reach its node: the node's URL and id, this device's id, and
the access and refresh tokens.

The OS keyring is the default (macOS Keychain, Secret Service, Windows Credential Locker): service
"aurora", one entry per workspace (named by the workspace file's path, so two workspaces may pair with two
nodes), the value a small JSON object. A headless box has no keyring (`keyring` falls back to its "fail"
or "null" backend); there the tokens go into an encrypted file beside the workspace, keyed from the
environment variable `AURORA_CREDENTIALS_KEY`, which is either a Fernet key or any passphrase (stretched
with scrypt and a salt stored in the file). With neither, pairing stops with one line saying what to do:
a refresh token in a plaintext file would let anyone who reads the disk act as this laptop.

Once that file exists and the variable is set, the file is used even if a keyring shows up later (a
desktop package installed, a session started over SSH on a desktop): tokens never silently move or vanish.

The encrypted file is written atomically (a temporary file, fsync, rename) with mode 0600. A file that does
not open with the key in the environment is never overwritten: the person either sets the key used when
the laptop was paired or deletes the file and pairs again.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aurora.app.errors import AuroraError

KEYRING_SERVICE = "aurora"
KEY_VARIABLE = "AURORA_CREDENTIALS_KEY"
FILE_SUFFIX = ".node-credentials"
_FILE_FORMAT = "aurora-node-credentials"
_FILE_VERSION = 1
_SCRYPT_N = 2**15
"""scrypt cost: about 32 MiB and a tenth of a second, paid on each save and once per load."""


class CredentialsError(AuroraError):
    """The node credentials cannot be kept or read where they live."""


class NodeCredentials(BaseModel):
    """What a paired laptop keeps. Tokens are left out of `repr`, so a log line or a traceback in a bug
    report never carries them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_url: str = Field(min_length=1, max_length=2000)
    node_id: str = Field(min_length=1, max_length=200)
    device_id: str = Field(min_length=1, max_length=200)
    access_token: str = Field(min_length=1, max_length=20_000, repr=False)
    refresh_token: str = Field(min_length=1, max_length=20_000, repr=False)
    access_expires_at: float | None = None
    """Unix time the access token expires (from the node's `expires_in`); None if unknown."""


class CredentialsStore(Protocol):
    """One workspace's node credentials, wherever they are kept."""

    @property
    def where(self) -> str:
        """Where they live, in words, for messages ("the OS keyring (SecretService Keyring)")."""
        ...

    def load(self) -> NodeCredentials | None:
        """The stored credentials, None if this workspace was never paired (or was unpaired)."""
        ...

    def save(self, credentials: NodeCredentials) -> None: ...

    def clear(self) -> None:
        """Forget them (unpairing); nothing to do if there are none."""
        ...


def keyring_usable() -> bool:
    """Whether `keyring` found a real backend. Its fallbacks (the "fail" backend, which raises on every
    call, and the "null" one, which stores nothing) and anything it ranks below 1 do not count."""
    backend = keyring.get_keyring()
    if isinstance(backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring):
        return False
    try:
        return float(backend.priority) >= 1
    except Exception:  # a backend whose priority probe fails (no D-Bus) is not one to trust with tokens
        return False


def credentials_for(workspace_file: Path) -> CredentialsStore:
    """Where the workspace at `workspace_file` keeps its node credentials (see the module docstring)."""
    path = workspace_file.with_name(workspace_file.name + FILE_SUFFIX)
    secret = os.environ.get(KEY_VARIABLE, "")
    if secret and path.exists():
        return EncryptedFileCredentials(path, secret)
    if keyring_usable():
        return KeyringCredentials(str(workspace_file.resolve()))
    if secret:
        return EncryptedFileCredentials(path, secret)
    raise CredentialsError(
        f"no OS keyring here; set {KEY_VARIABLE} to a secret to keep the node tokens in an encrypted file"
    )


def _parse(text: str, where: str) -> NodeCredentials:
    try:
        return NodeCredentials.model_validate_json(text)
    except ValidationError:
        raise CredentialsError(
            f"the node credentials in {where} are damaged; remove them and pair again (`aurora pair`)"
        ) from None


class KeyringCredentials:
    """The OS keyring: one entry ("aurora", the workspace's path) holding the credentials as JSON."""

    def __init__(self, username: str) -> None:
        self._username = username

    @property
    def where(self) -> str:
        return f"the OS keyring ({keyring.get_keyring().name})"

    def load(self) -> NodeCredentials | None:
        try:
            text = keyring.get_password(KEYRING_SERVICE, self._username)
        except keyring.errors.KeyringError as exc:
            raise self._error("read from", exc) from None
        return None if text is None else _parse(text, self.where)

    def save(self, credentials: NodeCredentials) -> None:
        try:
            keyring.set_password(KEYRING_SERVICE, self._username, credentials.model_dump_json())
        except keyring.errors.KeyringError as exc:
            raise self._error("write to", exc) from None

    def clear(self) -> None:
        try:
            keyring.delete_password(KEYRING_SERVICE, self._username)
        except keyring.errors.PasswordDeleteError:
            pass  # nothing stored: already forgotten
        except keyring.errors.KeyringError as exc:
            raise self._error("delete from", exc) from None

    def _error(self, verb: str, exc: Exception) -> CredentialsError:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        return CredentialsError(f"cannot {verb} {self.where} ({detail}); unlock the keyring and try again")


class EncryptedFileCredentials:
    """A Fernet-encrypted file keyed from `AURORA_CREDENTIALS_KEY` (a Fernet key, or a passphrase
    stretched with scrypt and the salt stored beside the ciphertext)."""

    def __init__(self, path: Path, secret: str) -> None:
        if not secret:
            raise CredentialsError(f"{KEY_VARIABLE} is empty; set it to a secret")
        self.path = path
        self._secret = secret

    @property
    def where(self) -> str:
        return str(self.path)

    def load(self) -> NodeCredentials | None:
        envelope = self._read_envelope()
        if envelope is None:
            return None
        return _parse(self._decrypt(envelope).decode("utf-8", "replace"), self.where)

    def save(self, credentials: NodeCredentials) -> None:
        existing = self._read_envelope()
        if existing is not None:
            self._decrypt(existing)  # a file this key does not open is someone's tokens: leave it alone
        kdf, salt = ("fernet-key", b"") if _fernet_key(self._secret) else ("scrypt", secrets.token_bytes(16))
        token = Fernet(self._key(kdf, salt)).encrypt(credentials.model_dump_json().encode())
        envelope = {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "kdf": kdf,
            "n": _SCRYPT_N,
            "salt": base64.b64encode(salt).decode(),
            "data": token.decode(),
        }
        _write_private(self.path, json.dumps(envelope).encode())

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise CredentialsError(f"cannot remove {self.path}: {exc.strerror}") from None

    def _read_envelope(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialsError(
                f"cannot read {self.path}: {exc.strerror}; check its permissions"
            ) from None
        try:
            envelope = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            envelope = None
        if not isinstance(envelope, dict) or envelope.get("format") != _FILE_FORMAT:
            raise CredentialsError(
                f"{self.path} is not an Aurora credentials file; move it away and pair again (`aurora pair`)"
            )
        version = envelope.get("version")
        if version != _FILE_VERSION:
            raise CredentialsError(
                f"{self.path} was written by a newer Aurora (format {version!r}); upgrade Aurora"
            )
        return envelope

    def _decrypt(self, envelope: dict[str, Any]) -> bytes:
        try:
            salt = base64.b64decode(str(envelope.get("salt", "")), validate=True)
            n = int(envelope.get("n", _SCRYPT_N))
            key = self._key(str(envelope.get("kdf")), salt, n)
            return Fernet(key).decrypt(str(envelope.get("data", "")).encode())
        except InvalidToken:
            raise CredentialsError(
                f"{KEY_VARIABLE} does not open {self.path}; set it to the secret used when this laptop was "
                "paired, or delete the file and pair again (`aurora pair`)"
            ) from None
        except (binascii.Error, ValueError, TypeError):
            raise CredentialsError(
                f"{self.path} is damaged; delete it and pair again (`aurora pair`)"
            ) from None

    def _key(self, kdf: str, salt: bytes, n: int = _SCRYPT_N) -> bytes:
        if kdf == "fernet-key":
            key = _fernet_key(self._secret)
            if key is None:
                # Written with a Fernet key; the variable now holds a passphrase: it cannot be the same key.
                raise InvalidToken
            return key
        if kdf != "scrypt" or not 2 <= n <= 2**20 or len(salt) < 8:
            raise ValueError("unknown key derivation")
        stretched = Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(self._secret.encode())
        return base64.urlsafe_b64encode(stretched)


def _fernet_key(secret: str) -> bytes | None:
    """`secret` as a Fernet key (URL-safe base64 of 32 bytes), or None if it is a passphrase."""
    try:
        if len(base64.urlsafe_b64decode(secret.encode("ascii"))) == 32:
            return secret.encode("ascii")
    except (binascii.Error, UnicodeEncodeError, ValueError):
        pass
    return None


def _write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically, readable by this user only: a crash leaves the old file or
    the new one, never half of either."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if os.name == "posix":
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise CredentialsError(
            f"cannot write {path}: {exc.strerror}; check the folder's permissions"
        ) from None
