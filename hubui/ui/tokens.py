"""Which token a callback acts with: the session's own, or a Hugging Face sign-in it adopts.

Shared by :mod:`hubui.ui.handlers` (login, convert) and :mod:`hubui.ui.card_handlers` (dry run, push), so that
both follow the one token rule of :mod:`hubui.ui.state`.
"""

from __future__ import annotations

import gradio as gr

import hubui
from hubui.ui.state import Session


def session_token(session: Session, oauth_token: gr.OAuthToken | None) -> str:
    """The session's token, adopting a Hugging Face sign-in if that is all there is.

    Args:
        session: The browser session.
        oauth_token: What gradio filled in for a Space with OAuth (``None`` elsewhere).

    Returns:
        The token to give the core.

    Raises:
        NotLoggedInError: The session has no token.
    """
    if session.token is None and oauth_token is not None and oauth_token.token and not session.signed_out:
        session.log_in(oauth_token.token, hubui.whoami(oauth_token.token), "Hugging Face sign-in")
    if session.token is None:
        how = "Sign in with Hugging Face or paste a token" if session.oauth else "Paste a token"
        raise hubui.NotLoggedInError("You are not logged in.", f"{how} on the Login tab.")
    return session.token


__all__ = ["session_token"]
