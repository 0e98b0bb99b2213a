"""The fake Salesforce's door: sessions (access tokens) and who they belong to, the
connected app's key pair, counters of calls and logins, and the faults a test injects
(``CrmFake.fail``), taken one per API call."""

from __future__ import annotations

import random
import secrets
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.salesforce_org import SalesforceOrg

# Faults only a write takes (a read passes and leaves them queued).
WRITE_ONLY_FAULTS = ("validation", "lost")


class Gate:
    """Sessions, credentials, counters and injected faults of the fake."""

    def __init__(self, org: SalesforceOrg) -> None:
        self.org = org
        self._lock = threading.Lock()
        self.sessions: dict[str, str] = {}
        self.calls = 0
        self.logins = 0
        self.api_requests = 0
        self.slow_seconds = 2.5
        self._faults: list[str] = []
        self._soap_faults: list[str] = []  # for the next SOAP convertLead calls only
        self._ratio: tuple[str, float] | None = None
        self._key: rsa.RSAPrivateKey | None = None
        self.access_token = self.open_session(org.integration_user_id)

    def open_session(self, user_id: str) -> str:
        token = f"{self.org.org_id[:15]}!{secrets.token_urlsafe(24)}"
        with self._lock:
            self.sessions[token] = user_id
        return token

    def expire_sessions(self) -> None:
        with self._lock:
            self.sessions.clear()

    def user_of(self, token: str | None) -> str | None:
        with self._lock:
            return self.sessions.get(token or "")

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The connected app's key; its certificate is "registered" with the fake."""
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    def private_key_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def fail(self, kind: str, times: int, ratio: float | None, *, soap: bool = False) -> None:
        with self._lock:
            if soap:
                self._soap_faults.extend([kind] * times)
            elif ratio is not None:
                self._ratio = (kind, ratio)
            else:
                self._faults.extend([kind] * times)

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()
            self._soap_faults.clear()
            self._ratio = None

    def take_fault(self, write: bool, *, soap: bool = False) -> str | None:
        with self._lock:
            if soap and self._soap_faults:
                return self._soap_faults.pop(0)
            if self._faults:
                if self._faults[0] in WRITE_ONLY_FAULTS and not write:
                    return None
                return self._faults.pop(0)
            if self._ratio is not None:
                kind, share = self._ratio
                if (write or kind not in WRITE_ONLY_FAULTS) and random.random() < share:
                    if kind == "burst":  # the concurrent-request limit or a 503, half each
                        return random.choice(("concurrent", "5xx"))
                    return kind
        return None

    def count(self) -> None:
        with self._lock:
            self.calls += 1
