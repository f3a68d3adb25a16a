"""The `[evidence]` settings: the signing key, checkpoints, timestamps and retention.

Deliberately free of imports from `antirelou.settings` (which imports this module) so the
main Settings can hold `evidence: EvidenceSettings = EvidenceSettings()`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from antirelou.durations import parse_duration

# How far back a login's network is compared with the account's earlier ones (web/places.py);
# their addresses must be kept at least this long.
NEW_NETWORK_WINDOW = timedelta(days=90)

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class EvidenceSettings(BaseModel):
    """Where the signing key lives, how often checkpoints are taken, how long data is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The Ed25519 key that signs checkpoints: outside the database, mode 0600, created on
    # first use. A stolen database copy cannot forge checkpoints without it.
    key_path: str = "var/evidence.key"
    checkpoint_every: Duration = timedelta(minutes=5)
    # Optional RFC 3161 timestamp authority (e.g. https://freetsa.org/tsr) and its CA
    # certificate(s), PEM, to check its tokens.
    tsa_url: str = ""
    tsa_ca: str = ""
    tsa_timeout: float = Field(10.0, gt=0)
    tsa_attempts: int = Field(5, ge=1)
    # Retention: texts and numbers of senders tied to no kept incident and no legal hold.
    retention_texts: Duration = timedelta(days=30)
    # Dedup state (who was answered when): must outlive the longest reply window.
    retention_senders: Duration = timedelta(days=90)
    # Incidents without a legal hold are kept this long after they close, with their texts.
    retention_incidents: Duration = timedelta(days=365)
    # The IP addresses in the audit log (logins, refused logins, links used) and in the
    # alerts that quoted them. At least NEW_NETWORK_WINDOW: the new-network alerts compare a
    # login with the account's logins of that long (web/places.py).
    retention_addresses: Duration = timedelta(days=180)
    retention_batch: int = Field(5000, ge=1)

    @model_validator(mode="after")
    def _positive(self) -> EvidenceSettings:
        for name in ("checkpoint_every", "retention_texts", "retention_senders"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"evidence.{name} must be positive")
        if self.retention_incidents < self.retention_texts:
            raise ValueError("evidence.retention_incidents cannot be shorter than retention_texts")
        if self.retention_addresses < NEW_NETWORK_WINDOW:
            raise ValueError(
                "evidence.retention_addresses must be at least 90d: new-network alerts compare "
                "a login with the last 90 days' logins"
            )
        return self


def evidence_settings(settings: Any) -> EvidenceSettings:
    """The `[evidence]` part of the service settings (defaults if the field is absent)."""
    found = getattr(settings, "evidence", None)
    return found if isinstance(found, EvidenceSettings) else EvidenceSettings()
