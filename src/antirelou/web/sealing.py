"""Second-factor secrets sealed at rest, with a key kept outside the database.

An authenticator secret cannot be hashed like a password: the server computes the codes
from it. Stored as it is, a copy of the database (a stolen backup, a read through some
future bug) gave every account's second factor away. Sealed, the copy alone gives nothing:
the key file (`[web] totp_key_path`, 32 random bytes, mode 0600, created when the first
secret is sealed) must be taken too, and it is backed up apart from the database.

A sealed secret is `aes1:` + base64url(nonce, AES-256-GCM ciphertext and tag), with the
account's id as associated data: copied onto another account's row, it does not open.
Secrets stored before sealing existed are plain base32; they still work, and `serve` and
`worker` seal them when they start (totp.seal_plain_secrets).
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from antirelou.keyfiles import create_private, readable_by_others

PREFIX = "aes1:"
_NONCE = 12
_KEY_BYTES = 32


class SealError(Exception):
    """A sealed secret cannot be opened: the message says why and what to do."""


@dataclass(frozen=True)
class SecretBox:
    key_path: Path

    def seal(self, secret: str, user_id: int) -> str:
        """`secret` sealed for the account `user_id`; creates the key file if need be."""
        key = _key(self.key_path, create=True)
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, secret.encode(), _associated(user_id))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, user_id: int) -> str:
        """The secret `stored` holds for the account `user_id` (a plain one as it is)."""
        if not stored.startswith(PREFIX):  # stored before sealing existed
            return stored
        key = _key(self.key_path, create=False)
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _associated(user_id)).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError(
                f"{self.key_path} is not the key this account's second factor was sealed "
                "with: restore the key file from a backup, or run `antirelou users totp "
                "disable EMAIL` then `enable` again"
            ) from None


def _associated(user_id: int) -> bytes:
    return f"antirelou totp secret of account {user_id}".encode()


_keys: dict[Path, bytes] = {}
_keys_lock = threading.Lock()


def _key(path: Path, create: bool) -> bytes:
    """The key in `path`; created first when `create` and there is none. Kept in memory
    once read (a login must not read a file)."""
    path = path.resolve()
    with _keys_lock:
        if path in _keys:
            return _keys[path]
        if not path.exists():
            if not create:
                raise SealError(
                    f"{path} is missing, and the second factors were sealed with it: restore "
                    "it from a backup, or run `antirelou users totp disable EMAIL` then "
                    "`enable` again for each account"
                )
            _create(path)
        try:
            if readable_by_others(path):
                raise SealError(f"{path} is readable by other users: chmod 600 {path}")
            key = path.read_bytes()
        except OSError as error:
            raise SealError(f"cannot read {path}: {error.strerror}") from None
        if len(key) != _KEY_BYTES:
            raise SealError(f"{path} does not hold a {_KEY_BYTES}-byte key")
        _keys[path] = key
        return key


def _create(path: Path) -> None:
    try:
        create_private(path, os.urandom(_KEY_BYTES))
    except OSError as error:
        raise SealError(f"cannot create the key file {path}: {error.strerror}") from None
