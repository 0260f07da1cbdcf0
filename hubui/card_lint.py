"""What a card that the Hub would take still lacks for the people who read it: the dry run's card warnings.

They do not stop a push (the Hub takes a card without a licence); they say what to fill in before one.
"""

from __future__ import annotations

from hubui.card_yaml import load_card_metadata
from hubui.errors import InvalidCardError

NO_LICENSE = (
    "The card names no licence, so nobody can tell whether they may use or share the model. Set the licence "
    "(the License field on the app's Card & push tab, `license:` in the --card file of the CLI); 'other' with a "
    "name and a link for a licence the Hub has no identifier for."
)


def card_warnings(readme: str | None) -> tuple[str, ...]:
    """The warnings for the README a repo will have after a push.

    Args:
        readme: The README text, or None when the repo will have none.

    Returns:
        One line per warning (today: :data:`NO_LICENSE`, for a README without a licence or no README); empty
        when there is nothing to say, or when the README's metadata cannot be read (the push's own checks name
        that problem).
    """
    if readme is None:
        return (NO_LICENSE,)  # no card at all: no licence either
    try:
        meta = load_card_metadata(readme)
    except InvalidCardError:
        return ()
    license = meta.get("license")
    return () if isinstance(license, str) and license.strip() else (NO_LICENSE,)


__all__ = ["NO_LICENSE", "card_warnings"]
