"""How the Salesforce connector gets and keeps a session.

Three ways in, chosen by which settings are set (in this order: JWT bearer when the
consumer key or private key is set, username-password when the password or security
token is, else the access token):

- JWT bearer (``LEADFLOW_SALESFORCE_CONSUMER_KEY``, ``_PRIVATE_KEY_PATH``, ``_USERNAME``):
  a signed assertion posted to ``{login_url}/services/oauth2/token``;
- username-password (``_USERNAME``, ``_PASSWORD``, ``_SECURITY_TOKEN``): the SOAP
  ``login`` call at ``{login_url}/services/Soap/u/{version}``;
- a fixed access token (``_INSTANCE_URL``, ``_ACCESS_TOKEN``), which cannot be renewed.

The logins are made here rather than by simple-salesforce, which only knows
``*.salesforce.com`` login hosts and drops the user id the login answers with; the REST
calls then go through a simple-salesforce client built on the session. The integration
user's id (needed to skip Leadflow's own changes) comes from the login answer, or from
``/services/oauth2/userinfo`` for a fixed token.

``SalesforceConnection`` is shared by the connector's threads: it logs in lazily, and on
an expired session logs in again once (under a lock, so concurrent callers share one
re-login) and retries the call once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.base import AuthError, ConnectorError
from connectors.salesforce_errors import (
    classify,
    errors_of,
    is_expired_session,
    to_connector_error,
)
from connectors.salesforce_soap import SoapFault, login_envelope, parse_login, soap_headers

T = TypeVar("T")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce accepts a JWT bearer assertion that expires within three minutes.
JWT_LIFETIME_S = 170
_ENV = "LEADFLOW_SALESFORCE_"
# What a Salesforce call can raise besides our own errors: mapped by to_connector_error.
VENDOR_ERRORS = (SalesforceError, SoapFault, requests.RequestException)


@dataclass(frozen=True)
class JwtBearer:
    consumer_key: str
    private_key: str
    username: str
    login_url: str
    method: str = "JWT bearer"


@dataclass(frozen=True)
class UsernamePassword:
    username: str
    password: str
    security_token: str
    login_url: str
    method: str = "username-password"


@dataclass(frozen=True)
class AccessToken:
    instance_url: str
    access_token: str
    method: str = "access token"


Credentials = JwtBearer | UsernamePassword | AccessToken


@dataclass(frozen=True)
class Session:
    """A logged-in session: what REST and SOAP calls need, and who we are."""

    session_id: str
    instance_url: str  # scheme://host[:port]
    user_id: str
    username: str | None


def choose_credentials(
    *,
    consumer_key: str | None,
    private_key: str | None,
    username: str | None,
    password: str | None,
    security_token: str | None,
    login_url: str,
    instance_url: str | None,
    access_token: str | None,
) -> Credentials:
    """The way in that the given values configure; ``AuthError`` naming the missing
    ``LEADFLOW_SALESFORCE_*`` variable when one is half-configured or none is."""

    def missing(names: dict[str, object]) -> list[str]:
        return [f"{_ENV}{name}" for name, value in names.items() if value is None or value == ""]

    login = login_url.rstrip("/")
    if consumer_key or private_key:
        lacking = missing(
            {"CONSUMER_KEY": consumer_key, "PRIVATE_KEY_PATH": private_key, "USERNAME": username}
        )
        if lacking:
            raise AuthError(
                f"Salesforce JWT bearer login is half-configured: set {', '.join(lacking)}"
            )
        assert consumer_key and private_key and username
        return JwtBearer(consumer_key, private_key, username, login)
    if password is not None or security_token is not None:
        # An empty security token is allowed: orgs that trust the caller's IP need none.
        lacking = missing({"USERNAME": username, "PASSWORD": password})
        if security_token is None:
            lacking.append(f"{_ENV}SECURITY_TOKEN")
        if lacking:
            raise AuthError(
                f"Salesforce username-password login is half-configured: set {', '.join(lacking)}"
            )
        assert username and password and security_token is not None
        return UsernamePassword(username, password, security_token, login)
    if access_token or instance_url:
        lacking = missing({"INSTANCE_URL": instance_url, "ACCESS_TOKEN": access_token})
        if lacking:
            raise AuthError(
                f"Salesforce access-token access is half-configured: set {', '.join(lacking)}"
            )
        assert instance_url and access_token
        return AccessToken(instance_url.rstrip("/"), access_token)
    raise AuthError(
        "Salesforce credentials are not configured: set LEADFLOW_SALESFORCE_CONSUMER_KEY, "
        "_PRIVATE_KEY_PATH and _USERNAME (JWT bearer), or _USERNAME, _PASSWORD and "
        "_SECURITY_TOKEN, or _INSTANCE_URL and _ACCESS_TOKEN"
    )


class _Adapter(HTTPAdapter):
    """No retries (Temporal is the one retry layer), a timeout on every request, and for
    a host configured with ``http://``, the ``https://`` URLs simple-salesforce builds sent
    as ``http://`` again."""

    def __init__(self, timeout_s: float, *, downgrade: bool = False) -> None:
        super().__init__(max_retries=0)
        self._timeout_s = timeout_s
        self._downgrade = downgrade

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,  # type: ignore[override]
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        if self._downgrade and request.url and request.url.startswith("https://"):
            request.url = "http://" + request.url.removeprefix("https://")
        return super().send(
            request,
            stream=stream,
            timeout=self._timeout_s if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def http_session(timeout_s: float) -> requests.Session:
    """The connector's HTTP session (thread-safe for concurrent requests)."""
    http = requests.Session()
    http.mount("https://", _Adapter(timeout_s))
    http.mount("http://", _Adapter(timeout_s))
    return http


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def allow_plain_http(http: requests.Session, url: str, timeout_s: float) -> None:
    """Send the ``https://`` URLs built for ``url``'s host as ``http://`` when ``url`` is an
    ``http://`` URL (a local fake or proxy)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return
    prefix = f"https://{parts.netloc}/"
    if prefix in http.adapters:
        return
    # Mounted on a copy that then replaces the map in one assignment: other threads may
    # be looking up adapters meanwhile (a re-login that lands on another instance).
    adapters = dict(http.adapters)
    adapters[prefix] = _Adapter(timeout_s, downgrade=True)
    # requests takes the first matching prefix: the longest ones go first.
    http.adapters = OrderedDict(sorted(adapters.items(), key=lambda item: -len(item[0])))


def _jwt_audience(login_url: str) -> str:
    """Salesforce wants ``https://login.salesforce.com`` (``test.`` for sandboxes) as the
    audience, also when the token endpoint is a My Domain; any other host (an Experience
    Cloud site, a fake) is its own audience."""
    host = urlsplit(login_url).hostname or ""
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith("salesforce.com"):
        return "https://login.salesforce.com"
    return origin(login_url)


def log_in(creds: Credentials, http: requests.Session, api_version: str) -> Session:
    """A new session; ``AuthError`` when Salesforce refuses the credentials."""
    if isinstance(creds, JwtBearer):
        claims = {
            "iss": creds.consumer_key,
            "sub": creds.username,
            "aud": _jwt_audience(creds.login_url),
            "exp": int(time.time()) + JWT_LIFETIME_S,
        }
        assertion = jwt.encode(claims, creds.private_key, algorithm="RS256")
        answer = http.post(
            f"{creds.login_url}/services/oauth2/token",
            data={"grant_type": JWT_GRANT, "assertion": assertion},
        )
        if answer.status_code != 200:
            raise _token_refusal(answer, "log in with the JWT bearer flow")
        body = answer.json()
        return Session(
            session_id=str(body["access_token"]),
            instance_url=origin(str(body["instance_url"])),
            user_id=str(body.get("id", "")).rstrip("/").rpartition("/")[2],
            username=creds.username,
        )
    if isinstance(creds, UsernamePassword):
        answer = http.post(
            f"{creds.login_url}/services/Soap/u/{api_version}",
            data=login_envelope(creds.username, creds.password + creds.security_token).encode(),
            headers=soap_headers("login"),
        )
        result = parse_login(answer.status_code, answer.content)
        return Session(
            session_id=result.session_id,
            instance_url=origin(result.server_url),
            user_id=result.user_id,
            username=creds.username,
        )
    answer = http.get(
        f"{creds.instance_url}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {creds.access_token}", "Accept": "application/json"},
    )
    if answer.status_code in (401, 403):
        raise token_expired(answer.text.strip()[:200])
    if answer.status_code != 200:
        raise _token_refusal(answer, "read the access token's user")
    info = answer.json()
    return Session(
        session_id=creds.access_token,
        instance_url=creds.instance_url,
        user_id=str(info.get("user_id", "")),
        username=info.get("preferred_username"),
    )


def _token_refusal(answer: requests.Response, action: str) -> ConnectorError:
    try:
        errors = errors_of(answer.json())
    except ValueError:
        errors = errors_of(answer.text)
    if answer.status_code in (400, 401, 403):
        # invalid_grant / invalid_client…: the credentials or the connected app's setup.
        return AuthError(
            f"Salesforce refused to {action}: "
            + "; ".join(f"{e.code}: {e.message}" for e in errors),
            vendor_message="; ".join(e.message or e.code for e in errors),
        )
    return classify(answer.status_code, errors, action)


def token_expired(vendor_message: str) -> AuthError:
    return AuthError(
        "the Salesforce access token (LEADFLOW_SALESFORCE_ACCESS_TOKEN) has expired or was "
        "revoked, and a fixed token cannot be renewed: set a fresh one, or configure JWT "
        "bearer (LEADFLOW_SALESFORCE_CONSUMER_KEY, _PRIVATE_KEY_PATH, _USERNAME) or "
        "username-password login (_USERNAME, _PASSWORD, _SECURITY_TOKEN) so Leadflow logs "
        "in again by itself",
        vendor_message=vendor_message or "INVALID_SESSION_ID",
    )


@dataclass(frozen=True)
class Client:
    """One logged-in simple-salesforce client and its session."""

    sf: Salesforce
    session: Session


class SalesforceConnection:
    """The connector's session, shared by its threads (see the module docstring)."""

    def __init__(self, creds: Credentials, *, api_version: str, timeout_s: float) -> None:
        self.creds = creds
        self.api_version = api_version
        self.timeout_s = timeout_s
        self.http = http_session(timeout_s)
        for url in (getattr(creds, "login_url", None), getattr(creds, "instance_url", None)):
            if url:
                allow_plain_http(self.http, url, timeout_s)
        self._lock = threading.Lock()
        self._client: Client | None = None
        self.logins = 0

    @property
    def current(self) -> Client | None:
        """The current client, if logged in."""
        return self._client

    def client(self) -> Client:
        """The current client, logging in first when there is none."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Client:
        session = log_in(self.creds, self.http, self.api_version)
        self.logins += 1
        allow_plain_http(self.http, session.instance_url, self.timeout_s)
        sf = Salesforce(
            session_id=session.session_id,
            instance_url=session.instance_url,
            version=self.api_version,
            session=self.http,
            parse_float=Decimal,
            object_pairs_hook=dict,
        )
        return Client(sf=sf, session=session)

    def _renew(self, stale: Client) -> Client:
        with self._lock:
            # Another thread may have logged in again already: then use its session.
            if self._client is stale or self._client is None:
                self._client = self._connect()
            return self._client

    def run(self, action: str, call: Callable[[Salesforce], T]) -> T:
        """``call`` with the current client; on an expired session, one new login and one
        retry. Any failure comes out as a ``ConnectorError``."""
        try:
            client = self.client()
            try:
                return call(client.sf)
            except VENDOR_ERRORS as exc:
                if not is_expired_session(exc):
                    raise
                if isinstance(self.creds, AccessToken):
                    raise token_expired(str(getattr(exc, "content", exc))) from exc
                return call(self._renew(client).sf)
        except VENDOR_ERRORS as exc:
            raise to_connector_error(exc, action) from exc

    def close(self) -> None:
        self.http.close()
