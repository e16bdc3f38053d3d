"""Where a paired laptop keeps its node tokens: the OS keyring, or an encrypted file on a headless box.

The file path runs for real (scrypt, Fernet, atomic replace on the real filesystem). For the keyring path,
no real keyring exists on a CI box and `keyrings.alt` is not installed, so a tiny in-memory backend is
plugged into `keyring` through its public backend interface: what is tested is our use of `keyring`.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.errors
import pytest
from cryptography.fernet import Fernet

from aurora.app.credentials import (
    KEY_VARIABLE,
    KEYRING_SERVICE,
    CredentialsError,
    EncryptedFileCredentials,
    KeyringCredentials,
    NodeCredentials,
    credentials_for,
    keyring_usable,
)

CREDS = NodeCredentials(
    node_url="http://10.8.0.1:8470",
    node_id="node-1",
    device_id="dev-1",
    access_token="access-SECRET-1",
    refresh_token="refresh-SECRET-1",
    access_expires_at=1_900_000_000.0,
)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that keeps passwords in a dict (priority 1: a real, if humble, backend)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.locked = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise keyring.errors.KeyringLocked("the keyring is locked")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.locked:
            raise keyring.errors.KeyringLocked("the keyring is locked")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.entries:
            raise keyring.errors.PasswordDeleteError("not found")
        del self.entries[(service, username)]


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_tokens_never_show_in_repr() -> None:
    assert "SECRET" not in repr(CREDS) and "SECRET" not in str(CREDS)


# --- no keyring, no key -----------------------------------------------------------------------------


def test_without_keyring_or_key_pairing_stops_with_what_to_do(tmp_path: Path, no_keyring: None) -> None:
    assert not keyring_usable()
    with pytest.raises(CredentialsError) as err:
        credentials_for(tmp_path / "work.db")
    assert str(err.value) == (
        "no OS keyring here; set AURORA_CREDENTIALS_KEY to a secret to keep the node tokens in an "
        "encrypted file"
    )
    assert list(tmp_path.iterdir()) == []  # and no plaintext file appeared


# --- the encrypted file -----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["correct horse battery staple", Fernet.generate_key().decode()])
def test_encrypted_file_round_trip(
    tmp_path: Path, no_keyring: None, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, secret)
    store = credentials_for(tmp_path / "work.db")
    assert isinstance(store, EncryptedFileCredentials)
    assert store.load() is None
    store.save(CREDS)
    assert store.load() == CREDS
    raw = store.path.read_bytes()
    assert b"SECRET" not in raw and b"10.8.0.1" not in raw  # nothing readable, the URL included
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    rotated = CREDS.model_copy(update={"access_token": "access-2", "refresh_token": "refresh-2"})
    store.save(rotated)
    assert credentials_for(tmp_path / "work.db").load() == rotated
    assert [p.name for p in tmp_path.iterdir()] == ["work.db.node-credentials"]  # no temporary left over
    store.clear()
    assert store.load() is None and not store.path.exists()


def test_a_wrong_key_is_a_clear_error_and_the_file_is_untouched(
    tmp_path: Path, no_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, "the right secret")
    credentials_for(tmp_path / "work.db").save(CREDS)
    path = tmp_path / "work.db.node-credentials"
    before = path.read_bytes()
    for wrong in ["the wrong secret", Fernet.generate_key().decode()]:
        monkeypatch.setenv(KEY_VARIABLE, wrong)
        store = credentials_for(tmp_path / "work.db")
        with pytest.raises(CredentialsError) as err:
            store.load()
        message = str(err.value)
        assert "\n" not in message and KEY_VARIABLE in message and str(path) in message
        with pytest.raises(CredentialsError):
            store.save(CREDS.model_copy(update={"access_token": "overwritten"}))
        assert path.read_bytes() == before
    monkeypatch.setenv(KEY_VARIABLE, "the right secret")
    assert credentials_for(tmp_path / "work.db").load() == CREDS


def test_a_file_written_with_a_fernet_key_does_not_open_with_a_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    EncryptedFileCredentials(path, Fernet.generate_key().decode()).save(CREDS)
    with pytest.raises(CredentialsError, match="does not open"):
        EncryptedFileCredentials(path, "a passphrase").load()


@pytest.mark.parametrize(
    "content",
    [b"not json at all \xff", b'{"format": "something else"}', b'{"format": "aurora-node-credentials"}'],
)
def test_a_damaged_file_is_reported_not_overwritten(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "creds"
    path.write_bytes(content)
    store = EncryptedFileCredentials(path, "secret")
    with pytest.raises(CredentialsError) as err:
        store.load()
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CredentialsError):
        store.save(CREDS)
    assert path.read_bytes() == content


def test_a_tampered_ciphertext_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    store = EncryptedFileCredentials(path, "secret")
    store.save(CREDS)
    text = path.read_text()
    flipped = text.replace('"data": "gAAAAA', '"data": "gAAAAB')
    assert flipped != text
    path.write_text(flipped)
    with pytest.raises(CredentialsError):
        store.load()


def test_an_unwritable_place_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")  # a file where the folder should be (works as root too)
    with pytest.raises(CredentialsError, match=r"cannot (read|write)"):
        EncryptedFileCredentials(tmp_path / "a-file" / "creds", "secret").save(CREDS)


# --- the keyring ------------------------------------------------------------------------------------


def test_with_a_keyring_the_tokens_go_there_one_entry_per_workspace(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    assert keyring_usable()
    first = credentials_for(tmp_path / "work.db")
    second = credentials_for(tmp_path / "other.db")
    assert isinstance(first, KeyringCredentials) and "MemoryKeyring" in first.where
    first.save(CREDS)
    second.save(CREDS.model_copy(update={"node_id": "node-2"}))
    assert first.load() == CREDS
    loaded = second.load()
    assert loaded is not None and loaded.node_id == "node-2"
    assert {service for service, _ in memory_keyring.entries} == {KEYRING_SERVICE}
    assert {user for _, user in memory_keyring.entries} == {
        str((tmp_path / "work.db").resolve()),
        str((tmp_path / "other.db").resolve()),
    }
    assert list(tmp_path.iterdir()) == []  # nothing on disk
    first.clear()
    first.clear()  # forgetting twice is fine
    assert first.load() is None and second.load() is not None


def test_a_locked_keyring_is_a_one_line_error(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    store = credentials_for(tmp_path / "work.db")
    memory_keyring.locked = True
    with pytest.raises(CredentialsError) as err:
        store.save(CREDS)
    assert "unlock the keyring" in str(err.value) and "\n" not in str(err.value)


def test_damaged_keyring_entry_says_to_pair_again(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    memory_keyring.entries[(KEYRING_SERVICE, str((tmp_path / "work.db").resolve()))] = "{not json"
    with pytest.raises(CredentialsError, match="pair again"):
        credentials_for(tmp_path / "work.db").load()


def test_an_existing_encrypted_file_wins_over_a_keyring_that_appeared_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, "secret")
    EncryptedFileCredentials(tmp_path / "work.db.node-credentials", "secret").save(CREDS)
    store = credentials_for(tmp_path / "work.db")
    assert isinstance(store, EncryptedFileCredentials) and store.load() == CREDS
    monkeypatch.delenv(KEY_VARIABLE)
    assert isinstance(credentials_for(tmp_path / "work.db"), KeyringCredentials)
