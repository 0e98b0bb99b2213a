"""Matching a lead to an existing account of the CRM: by email or website domain first
(never a free-mail domain), then by the company's normalised name, fuzzily."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel
from rapidfuzz import fuzz

# Below this similarity (0-100) two company names are different companies.
NAME_THRESHOLD = 90.0
_SUFFIXES = re.compile(
    r"\b(incorporated|inc|corporation|corp|company|co|limited|ltd|llc|llp|plc|gmbh|ag|sa|"
    r"sas|sarl|bv|nv|oy|ab|as|spa|srl|kk|pty|group|holdings?)\b\.?"
)
_NOT_WORD = re.compile(r"[^\w]+")


class Account(BaseModel):
    """An account as the CRM holds it; ``owner_id`` is the CRM's id of its owner."""

    crm_id: str
    name: str
    domain: str | None = None
    owner_id: str | None = None


class AccountMatch(BaseModel):
    account: Account
    by: str  # "email domain" | "website domain" | "company name"
    similarity: float = 100.0


def normalize_company(name: str) -> str:
    """A company name without case, punctuation or legal-form suffixes."""
    text = _NOT_WORD.sub(" ", name.casefold())
    text = _SUFFIXES.sub(" ", text)
    return " ".join(text.split())


def best_match(
    accounts: Iterable[Account],
    *,
    email_domain: str | None,
    website_domain: str | None,
    company: str | None,
    free_mail: bool,
) -> AccountMatch | None:
    """The account the lead belongs to, or None."""
    candidates = list(accounts)
    by_domain = {a.domain.casefold(): a for a in candidates if a.domain}
    if email_domain and not free_mail and email_domain in by_domain:
        return AccountMatch(account=by_domain[email_domain], by="email domain")
    if website_domain and website_domain in by_domain:
        return AccountMatch(account=by_domain[website_domain], by="website domain")
    if not company:
        return None
    wanted = normalize_company(company)
    if not wanted:
        return None
    best: AccountMatch | None = None
    for account in candidates:
        score = fuzz.ratio(wanted, normalize_company(account.name))
        if score >= NAME_THRESHOLD and (best is None or score > best.similarity):
            best = AccountMatch(account=account, by="company name", similarity=round(score, 1))
    return best
