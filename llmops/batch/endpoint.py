"""Endpoint URLs: joining a base URL and a batch line's url, and keeping credentials out of the job store.

Credentials written into a base URL (`http://user:pass@host/v1`) are split off before anything is saved:
the job keeps the bare URL and a flag; the run takes the credentials from memory, or from
`$LLMOPS_BATCH_BASE_URL` when a later process (resume, a detached worker) carries the job on.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

BASE_URL_ENV = "LLMOPS_BATCH_BASE_URL"


def endpoint_url(base_url: str, url: str) -> str:
    """Join a base URL (usually ending in /v1) and a batch line's url (/v1/chat/completions)."""
    base = base_url.rstrip("/")
    if base.endswith("/v1") and url.startswith("/v1/"):
        return base + url[3:]
    return base + url


def split_credentials(url: str | None) -> tuple[str | None, str | None]:
    """(the URL without `user:pass@`, the `user:pass` part or None)."""
    if not url:
        return url, None
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    return urlunsplit(parts._replace(netloc=host)), userinfo


def with_credentials(url: str, userinfo: str | None) -> str:
    """The URL with `user:pass@` put back (for the request, never for the store)."""
    if not userinfo:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def redact(url: str | None) -> str | None:
    """The URL as shown to a person: credentials replaced by ***."""
    bare, userinfo = split_credentials(url)
    return with_credentials(bare, "***") if bare and userinfo else url


def credentials_from_env(bare_url: str) -> str | None:
    """The credentials $LLMOPS_BATCH_BASE_URL carries for this same endpoint, if it does."""
    bare, userinfo = split_credentials(os.environ.get(BASE_URL_ENV))
    if bare and userinfo and bare.rstrip("/") == bare_url.rstrip("/"):
        return userinfo
    return None
