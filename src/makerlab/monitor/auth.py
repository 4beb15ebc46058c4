"""Who may look and who may act: the page's token checks and input validation.

Rules:

- **a request presents the token** in the ``X-Makerlab-Token`` header, the ``token``
  query parameter or the ``makerlab_token`` cookie (set, ``HttpOnly`` and
  ``SameSite=Strict``, when the page is opened with ``?token=...``); tokens are compared
  in constant time. A wrong token in the header or the query is refused (401) even where
  none is needed; a cookie with another token is ignored (cookies do not tell ports
  apart: it is an earlier page's on this host, whose token was made up anew).
- **looking** (the page, its files, the snapshot, the websocket) needs the token unless
  the page is bound to 127.0.0.1.
- **acting** (the kill switch) always needs it, as a header (a cookie alone is not
  enough: a header cannot be sent by another site's form), from a request whose
  ``Origin``, if any, is the page's own.
- **input is validated**: the only query parameter is ``token``; the kill request's body
  is a JSON object ``{"confirm": true}`` (and optionally ``"note"``: up to 200 printable
  characters), nothing else; the websocket takes no input.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["COOKIE", "HEADER", "Access", "Refusal", "kill_request", "presented"]

COOKIE = "makerlab_token"
HEADER = "X-Makerlab-Token"
_NOTE_MAX = 200


class Refusal(Exception):
    """A request refused: ``status`` (HTTP) and a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Access:
    """The token and whether looking needs it."""

    token: str
    open_to_look: bool

    def matches(self, presented_token: str | None) -> bool:
        return presented_token is not None and hmac.compare_digest(
            presented_token.encode(), self.token.encode())

    def check_look(self, presented_token: str | None) -> bool:
        """Raise Refusal(401) unless looking is allowed; True when the token matched."""
        if presented_token is not None and not self.matches(presented_token):
            raise Refusal(401, "wrong token")
        if presented_token is None and not self.open_to_look:
            raise Refusal(401, "token required")
        return presented_token is not None

    def check_act(self, header_token: str | None, origin: str | None, host: str | None
                  ) -> None:
        """Raise Refusal unless the kill switch may be used (module rules)."""
        if origin is not None and host is not None and origin.split("://", 1)[-1] != host:
            raise Refusal(403, "cross-origin request refused")
        if header_token is None:
            raise Refusal(401, f"the kill switch needs the token ({HEADER} header)")
        if not self.matches(header_token):
            raise Refusal(401, "wrong token")


def presented(headers: Mapping[str, str], cookies: Mapping[str, str],
              query: Mapping[str, str], access: Access) -> str | None:
    """The token a request presents (header, else query, else the cookie if it is
    ``access``'s), or None; Refusal(400) for any query parameter but ``token``."""
    extra = sorted(set(query) - {"token"})
    if extra:
        raise Refusal(400, f"unknown query parameter(s): {', '.join(extra)[:80]}")
    for found in (headers.get(HEADER), query.get("token")):
        if found is not None:
            return found
    cookie = cookies.get(COOKIE)
    return cookie if access.matches(cookie) else None


def kill_request(body: object) -> str:
    """The note of a valid kill request body (module rules); Refusal(400) otherwise."""
    if not isinstance(body, dict):
        raise Refusal(400, "the body must be a JSON object {\"confirm\": true}")
    extra = sorted(set(body) - {"confirm", "note"})
    if extra:
        raise Refusal(400, f"unknown field(s): {', '.join(map(str, extra))[:80]}")
    if body.get("confirm") is not True:
        raise Refusal(400, "\"confirm\" must be true")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > _NOTE_MAX or not note.isprintable():
        raise Refusal(400, f"\"note\" must be a printable string of at most {_NOTE_MAX} "
                      "characters")
    return note
