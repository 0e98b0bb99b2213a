"""The fake Salesforce's HTTP side: an ASGI app (Starlette) serving the REST API
(``/services/data/vXX.X/…``), the SOAP partner endpoint (``/services/Soap/u/XX.X``:
``login`` and ``convertLead``) and the OAuth endpoints (``/services/oauth2/token`` with
the JWT bearer grant, ``/services/oauth2/userinfo``), with the sessions and injected
faults of ``salesforce_gate.Gate``.

REST answers carry ``Sforce-Limit-Info: api-usage=N/15000``; errors are Salesforce's
arrays of ``{"message", "errorCode", "fields"}``; an invalid or expired session is a 401
``INVALID_SESSION_ID``; a write without ``Sforce-Auto-Assign: FALSE`` runs the org's
active lead assignment rule (``salesforce_org``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes import salesforce_soap as soap
from tests.fakes.salesforce_conversion import convert_lead
from tests.fakes.salesforce_gate import Gate
from tests.fakes.salesforce_org import SalesforceOrg
from tests.fakes.salesforce_schema import ApiError, describe

API_LIMIT = 15000
PASSWORD = "leadflow-password"
SECURITY_TOKEN = "FakeSecurityToken42"
CONSUMER_KEY = "3MVG9fake.leadflow.consumer.key"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
VALIDATION_MESSAGE = "Leads from this test rule are refused (fake validation rule)"


def _limit_info(gate: Gate) -> dict[str, str]:
    return {"Sforce-Limit-Info": f"api-usage={gate.api_requests}/{API_LIMIT}"}


def _errors(gate: Gate, error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=_limit_info(gate))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") else None


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


_EXPIRED = ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
_FAULTS = {
    "429": ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    "concurrent": ApiError(
        403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."
    ),
    "5xx": ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, try again later."),
    "validation": ApiError(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", VALIDATION_MESSAGE),
}


def create_app(gate: Gate) -> Starlette:
    org = gate.org

    async def rest(request: Request) -> Response:
        gate.count()
        user_id = gate.user_of(_bearer(request))
        if user_id is None:
            return _errors(gate, _EXPIRED)
        write = request.method in ("POST", "PATCH", "DELETE")
        fault = gate.take_fault(write)
        if fault == "slow":
            await asyncio.sleep(gate.slow_seconds)
        elif fault == "expired_session":
            gate.expire_sessions()
            return _errors(gate, _EXPIRED)
        elif fault in _FAULTS:
            return _errors(gate, _FAULTS[fault])
        gate.api_requests += 1
        try:
            status, body = _dispatch(
                org,
                request.method,
                request.path_params["version"],
                request.path_params["rest"].strip("/"),
                dict(request.query_params),
                await request.body(),
                auto_assign=request.headers.get("sforce-auto-assign", "TRUE").strip().upper()
                != "FALSE",
                user_id=user_id,
                used=gate.api_requests,
            )
        except ApiError as err:
            return _errors(gate, err)
        if fault == "lost":  # the write happened; its answer is lost
            return _errors(gate, _FAULTS["5xx"])
        if status == 204:
            return Response(status_code=204, headers=_limit_info(gate))
        return JSONResponse(body, status_code=status, headers=_limit_info(gate))

    async def soap_api(request: Request) -> Response:
        gate.count()
        version = request.path_params["version"]
        try:
            call = soap.read(await request.body())
            if call.operation == "login":
                return _login(gate, call, _base_url(request), version)
            user_id = gate.user_of(call.session_id)
            if user_id is None:
                raise soap.SoapError(
                    "INVALID_SESSION_ID",
                    "Invalid Session ID found in SessionHeader: Illegal Session",
                )
            if call.operation != "convertLead":
                raise soap.SoapError(
                    "INVALID_OPERATION", f"No operation available for request {call.operation}"
                )
            fault = gate.take_fault(write=True, soap=True)
            if fault == "slow":
                await asyncio.sleep(gate.slow_seconds)
            elif fault == "expired_session":
                gate.expire_sessions()
                raise soap.SoapError(
                    "INVALID_SESSION_ID",
                    "Invalid Session ID found in SessionHeader: Illegal Session",
                )
            elif fault == "429":
                raise soap.SoapError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            elif fault == "5xx":
                return PlainTextResponse("Service Unavailable", status_code=503)
            gate.api_requests += 1
            answer = _convert(org, call.values, user_id, refuse=fault == "validation")
            if fault == "lost":
                return PlainTextResponse("Service Unavailable", status_code=503)
            return Response(answer, media_type="text/xml; charset=utf-8")
        except soap.SoapError as err:
            return Response(soap.fault(err), status_code=500, media_type="text/xml; charset=utf-8")

    async def token(request: Request) -> Response:
        gate.count()
        form = await request.form()
        return _jwt_token(
            gate,
            str(form.get("grant_type", "")),
            str(form.get("assertion", "")),
            _base_url(request),
        )

    async def userinfo(request: Request) -> Response:
        gate.count()
        user_id = gate.user_of(_bearer(request))
        if user_id is None:
            return PlainTextResponse("Bad_OAuth_Token", status_code=403)
        user = org.records["User"][user_id]
        base = _base_url(request)
        return JSONResponse(
            {
                "sub": f"{base}/id/{org.org_id}/{user_id}",
                "user_id": user_id,
                "organization_id": org.org_id,
                "preferred_username": user["Username"],
                "email": user["Email"],
                "name": user["Name"],
                "active": user["IsActive"],
            }
        )

    methods = ["GET", "POST", "PATCH", "DELETE"]
    return Starlette(
        routes=[
            Route("/services/data/v{version}/{rest:path}", rest, methods=methods),
            Route("/services/Soap/u/{version}", soap_api, methods=["POST"]),
            Route("/services/Soap/u/{version}/{org}", soap_api, methods=["POST"]),
            Route("/services/oauth2/token", token, methods=["POST"]),
            Route("/services/oauth2/userinfo", userinfo, methods=["GET", "POST"]),
        ]
    )


def _login(gate: Gate, call: soap.SoapRequest, base_url: str, version: str) -> Response:
    username, password = call.values.get("username", ""), call.values.get("password", "")
    user = next(
        (
            u
            for u in gate.org.records["User"].values()
            if u["Username"] == username and u["IsActive"]
        ),
        None,
    )
    if user is None or password != PASSWORD + SECURITY_TOKEN:
        raise soap.SoapError(
            "INVALID_LOGIN",
            "Invalid username, password, security token; or user locked out.",
            "LoginFault",
        )
    session = gate.open_session(user["Id"])
    gate.logins += 1
    body = soap.login_response(base_url, version, gate.org.org_id, session, user["Id"])
    return Response(body, media_type="text/xml; charset=utf-8")


def _jwt_token(gate: Gate, grant: str, assertion: str, base_url: str) -> Response:
    def refuse(error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=400)

    if grant != JWT_GRANT:
        return refuse("unsupported_grant_type", "grant type not supported")
    try:
        claims = jwt.decode(
            assertion,
            gate.private_key.public_key(),
            algorithms=["RS256"],
            audience=[base_url, "https://login.salesforce.com", "https://test.salesforce.com"],
            options={"require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        return refuse("invalid_grant", "expired authorization code")
    except jwt.InvalidTokenError:
        return refuse("invalid_grant", "invalid assertion")
    if claims["iss"] != CONSUMER_KEY:
        return refuse("invalid_client_id", "client identifier invalid")
    if int(claims["exp"]) > time.time() + 300:
        return refuse("invalid_grant", "invalid assertion")  # must expire within minutes
    user = next(
        (u for u in gate.org.records["User"].values() if u["Username"] == claims["sub"]), None
    )
    if user is None or not user["IsActive"]:
        return refuse("invalid_grant", "user hasn't approved this consumer")
    session = gate.open_session(user["Id"])
    gate.logins += 1
    return JSONResponse(
        {
            "access_token": session,
            "scope": "api",
            "instance_url": base_url,
            "id": f"{base_url}/id/{gate.org.org_id}/{user['Id']}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
        }
    )


def _convert(org: SalesforceOrg, values: dict[str, str], user_id: str, *, refuse: bool) -> bytes:
    lead_id = values.get("leadId", "")
    if refuse:
        return soap.convert_response(
            {"leadId": lead_id}, [("FIELD_CUSTOM_VALIDATION_EXCEPTION", VALIDATION_MESSAGE, [])]
        )
    try:
        result = convert_lead(
            org,
            lead_id,
            converted_status=values.get("convertedStatus"),
            owner_id=values.get("ownerId") or None,
            account_id=values.get("accountId") or None,
            opportunity_name=values.get("opportunityName") or None,
            create_opportunity=values.get("doNotCreateOpportunity", "false") != "true",
            user_id=user_id,
        )
    except ApiError as err:
        return soap.convert_response({"leadId": lead_id}, [(err.code, err.message, err.fields)])
    return soap.convert_response(result, [])


def _dispatch(
    org: SalesforceOrg,
    method: str,
    version: str,
    path: str,
    params: dict[str, str],
    raw: bytes,
    *,
    auto_assign: bool,
    user_id: str,
    used: int,
) -> tuple[int, Any]:
    parts = path.split("/") if path else []
    if parts == ["limits"] and method == "GET":
        return 200, {"DailyApiRequests": {"Max": API_LIMIT, "Remaining": API_LIMIT - used}}
    if parts == ["query"] and method == "GET":
        if not params.get("q"):
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        return 200, org.query(params["q"], version)
    if len(parts) == 2 and parts[0] == "query" and method == "GET":
        locator, _, start = parts[1].rpartition("-")
        if not start.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return 200, org.page(locator, int(start), version)
    if not parts or parts[0] != "sobjects" or len(parts) < 2 or parts[1] not in org.schema:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    sobject = parts[1]
    if len(parts) == 2 and method == "POST":
        record_id = org.create(sobject, _json(raw), user_id, auto_assign=auto_assign)
        return 201, {"id": record_id, "success": True, "errors": []}
    if parts[2:] == ["describe"] and method == "GET":
        return 200, describe(sobject, org.schema[sobject])
    if len(parts) == 3:
        if method == "GET":
            fields = params.get("fields")
            return 200, {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/v{version}/sobjects/{sobject}/{parts[2]}",
                },
                **org.get(sobject, parts[2], fields.split(",") if fields else None),
            }
        if method == "PATCH":
            org.update(sobject, parts[2], _json(raw), user_id, auto_assign=auto_assign)
            return 204, None
        if method == "DELETE":
            org.delete(sobject, parts[2])
            return 204, None
    raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError as err:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {err}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject")
    return data
