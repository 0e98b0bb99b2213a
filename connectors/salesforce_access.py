"""The Salesforce calls the connector's parts are built from (query, read, create,
update, delete, describe, SOAP ``convertLead``, the server's clock), each run through
``SalesforceConnection`` so that it has a timeout, survives one expired session and
fails only with the connector error tree."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound
from simple_salesforce.util import Usage, exception_handler

from connectors.base import RetryableError
from connectors.salesforce_auth import SalesforceConnection, Session
from connectors.salesforce_soap import ConvertResult, parse_convert, soap_headers

Record = dict[str, Any]
# The Assignment Rule header: without it, REST API writes run the org's active lead
# assignment rule, on updates too, which would replace the owner Leadflow chose.
AUTO_ASSIGN_OFF = {"Sforce-Auto-Assign": "FALSE"}


class SalesforceAccess:
    def __init__(self, conn: SalesforceConnection) -> None:
        self.conn = conn
        self._describes: dict[str, Record] = {}

    def session(self) -> Session:
        """The current session (logging in first when there is none)."""
        self.conn.run("log in to Salesforce", lambda _sf: None)
        return self.conn.client().session

    def query(self, action: str, soql: str) -> list[Record]:
        """Every record the query selects (following ``nextRecordsUrl``)."""
        return self.conn.run(action, lambda sf: list(sf.query_all(soql)["records"]))

    def get(self, sobject: str, record_id: str, fields: list[str], action: str) -> Record | None:
        """The record's ``fields``, or None when Salesforce has no such record."""

        def call(sf: Salesforce) -> Record | None:
            try:
                record: Record = getattr(sf, sobject).get(
                    record_id, params={"fields": ",".join(fields)}
                )
            except SalesforceResourceNotFound:
                return None
            return record

        return self.conn.run(action, call)

    def create(
        self, sobject: str, data: Record, action: str, headers: dict[str, str] | None = None
    ) -> str:
        """The new record's id."""
        answer = self.conn.run(
            action, lambda sf: getattr(sf, sobject).create(data, headers=headers)
        )
        return str(answer["id"])

    def update(
        self,
        sobject: str,
        record_id: str,
        data: Record,
        action: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.conn.run(
            action, lambda sf: getattr(sf, sobject).update(record_id, data, headers=headers)
        )

    def delete(self, sobject: str, record_id: str, action: str) -> None:
        """Delete the record; one that is gone already is fine."""

        def call(sf: Salesforce) -> None:
            try:
                getattr(sf, sobject).delete(record_id)
            except SalesforceResourceNotFound:
                return

        self.conn.run(action, call)

    def describe(self, sobject: str) -> Record:
        """The object's describe (kept: an org's schema changes rarely; a new process
        reads it again)."""
        found = self._describes.get(sobject)
        if found is None:
            found = self.conn.run(
                f"describe {sobject}", lambda sf: dict(getattr(sf, sobject).describe())
            )
            self._describes[sobject] = found
        return found

    def field_names(self, sobject: str) -> set[str]:
        return {str(f.get("name")) for f in self.describe(sobject).get("fields", [])}

    def convert_lead(self, build_envelope: Any) -> ConvertResult:
        """The SOAP ``convertLead`` call on the current session; ``build_envelope`` takes
        the session id and returns the request."""

        def call(sf: Salesforce) -> ConvertResult:
            answer = sf.session.post(
                f"https://{sf.sf_instance}/services/Soap/u/{sf.sf_version}",
                data=str(build_envelope(sf.session_id)).encode(),
                headers=soap_headers("convertLead"),
            )
            return parse_convert(answer.status_code, answer.content)

        return self.conn.run("convert the lead", call)

    def server_time(self) -> datetime:
        """Salesforce's clock, to the second (the ``Date`` of an authenticated answer)."""

        def call(sf: Salesforce) -> str | None:
            answer = sf.session.get(sf.base_url + "limits/", headers=sf.headers)
            if answer.status_code >= 300:
                exception_handler(answer, "limits")
            return answer.headers.get("Date")

        date = self.conn.run("read Salesforce's clock", call)
        if not date:
            raise RetryableError("Salesforce's answer carried no Date header")
        return parsedate_to_datetime(date).astimezone(UTC)

    def ping(self) -> None:
        self.conn.run("reach Salesforce", lambda sf: sf.limits())

    def api_usage(self) -> Usage | None:
        """The org's API requests used and allowed in the last 24 hours, as the last
        answer's ``Sforce-Limit-Info`` said."""
        client = self.conn.current
        usage = client.sf.api_usage.get("api-usage") if client else None
        return usage if isinstance(usage, Usage) else None
