"""The data of a wizard's inline buttons: ``aw:<owner>:<fingerprint>:<nonce>:<code>``.

``owner`` is the user whose conversation sent the buttons (``0``, ``ANYONE``, for a chat-wide
wizard, which anyone may answer); ``fingerprint`` names the wizard's shape; ``nonce`` the
prompt; ``code`` what the button does: ``<i>`` (pick option ``i``), ``t<i>`` (toggle option
``i``), ``d`` (done) or ``p<n>`` (show page ``n``). Every field is untrusted: a press that fails
a check is refused, never trusted. Buttons sent before owners were in the data (the previous
deploy's, ``aw:<fingerprint>:<nonce>:<i>``) are still read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiogram.types import CallbackQuery

from aiostep.keys import ANYONE
from aiostep_dialogs.i18n import Localized

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard

BUTTON_PREFIX = "aw"


@dataclass(frozen=True)
class Press:
    """A parsed wizard button press. ``owner`` is ``None`` for the layout before owners."""

    owner: int | None
    fingerprint: str
    nonce: str
    code: str


def encode(wizard: RunningWizard, code: str) -> str:
    """The callback data of a button of ``wizard``'s current prompt."""
    return f"{BUTTON_PREFIX}:{wizard.key.user_id}:{wizard._fingerprint}:{wizard.nonce}:{code}"


def parse(data: str | None) -> Press | None:
    """The press in ``data``, or ``None`` when it is not a wizard button's (forged, truncated)."""
    if not data:
        return None
    parts = data.split(":")
    if parts[0] != BUTTON_PREFIX:
        return None
    if len(parts) == 4:  # the layout before owners: buttons sent by the previous deploy
        return Press(None, parts[1], parts[2], parts[3])
    if len(parts) != 5 or not _is_index(parts[1]):
        return None
    return Press(int(parts[1]), parts[2], parts[3], parts[4])


def _is_index(text: str) -> bool:
    # every field is untrusted: "²".isdigit() is true but int("²") raises, so ASCII only
    return text.isascii() and text.isdigit() and len(text) <= 20


def index_of(code: str, prefix: str, count: int) -> int | None:
    """The index in ``code`` (``prefix`` then digits) if below ``count``, else ``None``."""
    if not code.startswith(prefix):
        return None
    digits = code[len(prefix) :]
    if not _is_index(digits) or int(digits) >= count:
        return None
    return int(digits)


def _owned_elsewhere(wizard: RunningWizard, press: Press) -> bool:
    # buttons sent before owners were in the data (owner None) may be anyone's
    return press.owner is not None and press.owner != wizard.key.user_id


def sent_elsewhere(wizard: RunningWizard, data: str | None) -> bool:
    """Whether ``data`` is a wizard button that another conversation sent (another user's, or
    the chat-wide one's): not a press for ``wizard`` at all."""
    press = parse(data)
    return press is not None and _owned_elsewhere(wizard, press)


def is_current(wizard: RunningWizard, press: Press) -> bool:
    """Whether ``press`` is on a button of ``wizard``'s current prompt."""
    if _owned_elsewhere(wizard, press):
        return False
    # the prompt may have been sent by the previous deploy: its buttons are still its
    fingerprint = press.fingerprint
    if fingerprint != wizard._fingerprint and (
        not wizard._sent_fp or fingerprint != wizard._sent_fp
    ):
        return False
    return bool(wizard.nonce) and press.nonce == wizard.nonce


def refusal(texts: Any, query: CallbackQuery) -> Localized:
    """The toast for a press no wizard acts on: ``texts.not_yours`` when the button belongs to
    another user's conversation, else ``texts.stale_button`` (as declared: the caller says it
    in the user's language)."""
    press = parse(query.data)
    if press is not None and press.owner not in (None, ANYONE, query.from_user.id):
        return cast(Localized, texts.not_yours)
    return cast(Localized, texts.stale_button)
