"""RFC 3161 timestamps from a timestamp authority (TSA), and their verification.

A token proves that a checkpoint statement existed at the TSA's time: with it, nobody,
not even the operators, can later rebuild the chain and sign new checkpoints for the past.
The network call is made with no transaction open (design.md, invariant 8).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)


class TimestampError(Exception):
    """The authority could not be reached, or its answer is not a valid timestamp."""


def request(data: bytes, url: str, timeout: float) -> bytes:
    """Ask the TSA at `url` to timestamp `data`; return its DER TimeStampResp."""
    query = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .cert_request(cert_request=True)
        .build()
    )
    try:
        answer = httpx.post(
            url,
            content=query.as_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
            timeout=timeout,
        )
        answer.raise_for_status()
        response = decode_timestamp_response(answer.content)
    except (httpx.HTTPError, ValueError) as exc:
        raise TimestampError(f"timestamp authority {url}: {exc}") from exc
    _check_answer(response, data, query.nonce)
    return answer.content


def _check_answer(response: object, data: bytes, nonce: int | None) -> None:
    status = getattr(response, "status", None)
    if status != PKIStatus.GRANTED:
        raise TimestampError(f"timestamp refused (status {status})")
    info = response.tst_info  # type: ignore[attr-defined]
    if info.message_imprint.message != hashlib.sha256(data).digest():
        raise TimestampError("the timestamp is for other data")
    if nonce is not None and info.nonce != nonce:
        raise TimestampError("the timestamp answers another request (nonce)")


def load_roots(path: str | Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


def stamped_at(token: bytes) -> datetime:
    return decode_timestamp_response(token).tst_info.gen_time


def verify(token: bytes, data: bytes, roots: list[x509.Certificate]) -> datetime:
    """Check the token covers `data` and chains to `roots`; return the TSA's time.

    Without roots only the data's digest is checked (the caller says so).
    """
    try:
        response = decode_timestamp_response(token)
    except ValueError as exc:
        raise TimestampError(f"not a timestamp response: {exc}") from exc
    if response.tst_info.message_imprint.message != hashlib.sha256(data).digest():
        raise TimestampError("the timestamp is for other data")
    if roots:
        _verify_chain(response, data, roots)
    return response.tst_info.gen_time


def _verify_chain(response: object, data: bytes, roots: list[x509.Certificate]) -> None:
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify_message(response, data)  # type: ignore[arg-type]
    except VerificationError as exc:
        raise TimestampError(f"timestamp signature: {exc}") from exc
