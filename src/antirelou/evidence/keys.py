"""The instance's Ed25519 signing key: a PEM file outside the database, mode 0600.

Created on first use, atomically (keyfiles.py): two processes starting together end up
with the same key.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from antirelou.keyfiles import create_private, readable_by_others


class SigningKeyError(Exception):
    """The key file cannot be used; the message says why."""


def load_or_create(path: str | Path) -> Ed25519PrivateKey:
    """The signing key at `path`, created (mode 0600) if there is none yet."""
    return _cached(str(Path(path).resolve()))


@functools.lru_cache(maxsize=8)
def _cached(path: str) -> Ed25519PrivateKey:
    file = Path(path)
    if not file.exists():
        _create(file)
    return _load(file)


def _load(path: Path) -> Ed25519PrivateKey:
    if readable_by_others(path):
        raise SigningKeyError(f"{path} is readable by other users: chmod 600 {path}")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} does not hold an Ed25519 private key")
    return key


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    create_private(path, pem)


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(public_hex: str) -> str:
    """SHA-256 of the raw public key, as `SHA256:<hex>` (what operators publish)."""
    return "SHA256:" + hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


def from_hex(public_hex: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))


def from_pem(data: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("not an Ed25519 public key")
    return key


def signature_ok(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True
