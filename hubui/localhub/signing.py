"""Signed LFS links of the local Hub (:mod:`hubui.logsafe` keeps them out of logs).

A link says what it may be used for and is signed over all of it: the operation (``upload`` links accept PUT and
verify, ``download`` links GET), the repo, the object's sha256 and size, the repo's visibility when it was signed,
and the expiry. A link signed while a repo was public stops working once the repo is private.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from hubui.localhub.limits import DOWNLOAD_LINK_TTL, UPLOAD_LINK_TTL, VERIFY_GRACE
from hubui.logsafe import RedactSignedUrls, install_log_redaction, redact

OPERATIONS = ("upload", "download")
TTL = {"upload": UPLOAD_LINK_TTL, "download": DOWNLOAD_LINK_TTL}


class LinkRefused(Exception):
    """A signed link that may not be used as asked; the message says why (never the signature)."""


@dataclass(frozen=True)
class LinkClaims:
    """What a link was signed for."""

    operation: str
    repo_type: str
    repo_id: str
    oid: str
    size: int
    private: bool
    expires: int


class LinkSigner:
    """Signs and checks LFS links with the root's secret key.

    Args:
        key: The HMAC key (``Store.signing_key()``).
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, c: LinkClaims) -> str:
        vis = "private" if c.private else "public"
        msg = f"v2\n{c.operation}\n{c.repo_type}\n{c.repo_id}\n{c.oid}\n{c.size}\n{vis}\n{c.expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def claims_for(
        self, operation: str, repo_type: str, repo_id: str, oid: str, size: int, private: bool
    ) -> LinkClaims:
        """The claims of a new link of ``operation``, expiring after that operation's TTL."""
        return LinkClaims(operation, repo_type, repo_id, oid, size, private, int(time.time()) + TTL[operation])

    def query(self, claims: LinkClaims) -> str:
        """The query string of a link carrying ``claims``."""
        vis = "private" if claims.private else "public"
        params = {"op": claims.operation, "vis": vis, "expires": claims.expires, "sig": self._mac(claims)}
        return urlencode(params)

    def check(
        self,
        *,
        method: str,
        verify: bool,
        repo_type: str,
        repo_id: str,
        oid: str,
        size: int,
        query: dict[str, str],
        private_now: bool,
    ) -> LinkClaims:
        """Check a link against the request that uses it.

        Args:
            method: The HTTP method of the request.
            verify: Whether this is the ``/verify`` call of an upload.
            repo_type: Repo type from the link's path.
            repo_id: Repo id from the link's path.
            oid: Object sha256 from the link's path.
            size: Object size from the link's path.
            query: The link's query parameters.
            private_now: The repo's visibility now.

        Returns:
            The claims, once all of them hold.

        Raises:
            LinkRefused: Bad signature, expired, used for another operation, or the repo became private.
        """
        op, vis = query.get("op", ""), query.get("vis", "")
        try:
            expires = int(query.get("expires", ""))
        except ValueError as exc:
            raise LinkRefused("This LFS link is malformed; ask the batch endpoint for a new one") from exc
        if op not in OPERATIONS or vis not in ("public", "private"):
            raise LinkRefused("This LFS link is malformed; ask the batch endpoint for a new one")
        claims = LinkClaims(op, repo_type, repo_id, oid, size, vis == "private", expires)
        if not hmac.compare_digest(self._mac(claims), query.get("sig", "")):
            raise LinkRefused("This LFS link's signature is invalid; ask the batch endpoint for a new one")
        wanted = "upload" if (method == "PUT" or verify) else "download"
        if op != wanted:
            raise LinkRefused(f"This is a {op} link; it cannot be used to {wanted}. Ask the batch endpoint for one")
        now = time.time()
        if expires + (VERIFY_GRACE if verify else 0) < now:
            raise LinkRefused("This LFS link has expired; ask the batch endpoint for a new one")
        if private_now and not claims.private:
            raise LinkRefused("The repo has become private since this link was made; ask again with a token")
        return claims


__all__ = [
    "LinkClaims",
    "LinkRefused",
    "LinkSigner",
    "RedactSignedUrls",
    "install_log_redaction",
    "redact",
]
