"""Prompts sent as a photo, document, video or animation, with the prompt text as caption.

A step declared with ``photo=``, ``document=``, ``video=`` or ``animation=`` sends its prompt
with [`send_media`][aiostep_dialogs.media.send_media]. The source is a Telegram ``file_id`` or an
``http(s)://`` URL (a ``str``), a file on disk (a ``pathlib.Path``), or any aiogram ``InputFile``
(``FSInputFile``, ``BufferedInputFile``). A file uploaded from this process is uploaded once per
bot: the ``file_id`` Telegram gives back is kept in memory and sent from then on (a process
restart uploads it again; [`Media.forget`][aiostep_dialogs.media.Media.forget] drops it).

The source may also come from the conversation: a sync or async callable taking the wizard (and
handler data by name) returns one, or ``None`` for a text prompt. It is a
[`MediaCall`][aiostep_dialogs.media.MediaCall], decided once, when the step is declared.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import FSInputFile, InputFile, Message
from aiogram.utils.formatting import Text

from aiostep.keys import ConversationKey
from aiostep_dialogs.formatting import effective_parse_mode, escape
from aiostep_dialogs.injection import Needs, call, needs_of

__all__ = [
    "CAPTION_LIMIT",
    "Media",
    "MediaCall",
    "MediaFunction",
    "MediaKind",
    "MediaSource",
    "send_media",
    "send_media_prompt",
]

logger = logging.getLogger("aiostep_dialogs")

#: The longest caption Telegram accepts, in characters after markup is parsed.
CAPTION_LIMIT = 1024

MediaKind = Literal["photo", "document", "video", "animation"]
#: A ``file_id`` or URL (``str``), a file on disk (``Path``), or an aiogram ``InputFile``.
MediaSource = str | Path | InputFile
#: A callable giving a step's ``MediaSource`` from the conversation: it takes the wizard, then
#: handler data by name, and returns a source or ``None`` (no medium: a text prompt).
MediaFunction = Callable[..., MediaSource | Awaitable[MediaSource | None] | None]

_FILE_ID = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(eq=False)
class Media:
    """The media a step's prompt is sent with (built by ``@step(photo=...)`` and the like)."""

    #: whether the source comes from a callable (`MediaCall`): read once per media prompt
    dynamic: ClassVar[bool] = False

    kind: MediaKind
    source: MediaSource
    #: bot id -> the ``file_id`` Telegram gave the upload of ``source`` (local files only)
    _uploaded: dict[int, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, kind: MediaKind, source: object) -> Media:
        """Check ``source`` for a step and wrap it.

        Raises:
            TypeError: ``source`` is not a ``str``, ``Path`` or ``InputFile``, or is a ``str``
                that looks like a path on disk (give a ``Path``).
            FileNotFoundError: ``source`` is a ``Path`` to no file.
        """
        if isinstance(source, Path):
            if not source.is_file():
                raise FileNotFoundError(
                    f"{kind}={source!r}: there is no such file (a relative path is read from "
                    f"the current directory, {Path.cwd()}); build it from your module's "
                    "directory: Path(__file__).parent / 'name.jpg'"
                )
        elif isinstance(source, str):
            if not source.startswith(("http://", "https://")) and not _FILE_ID.fullmatch(source):
                raise TypeError(
                    f"{kind}={source!r} is neither a Telegram file_id nor an http(s) URL; for a "
                    f"file on disk pass a pathlib.Path: {kind}=Path({source!r})"
                )
        elif not isinstance(source, InputFile):
            raise TypeError(
                f"{kind}= takes a file_id or URL (str), a pathlib.Path or an aiogram InputFile, "
                f"got {type(source).__name__}"
            )
        return cls(kind, source)

    @property
    def uploads(self) -> bool:
        """Whether sending this media uploads a file from this process."""
        return not isinstance(self.source, str)

    def forget(self) -> None:
        """Drop the remembered ``file_id``s: the next prompt uploads the file again."""
        self._uploaded.clear()

    def _input(self, bot: Bot) -> str | InputFile:
        if isinstance(self.source, str):
            return self.source
        cached = self._uploaded.get(bot.id)
        if cached is not None:
            return cached
        if isinstance(self.source, Path):
            return FSInputFile(self.source)
        return self.source

    def _remember(self, bot: Bot, message: Message) -> None:
        file_id: str | None = None
        if self.kind == "photo" and message.photo:
            file_id = message.photo[-1].file_id  # the largest size: what was uploaded
        elif self.kind == "document" and message.document is not None:
            file_id = message.document.file_id
        elif self.kind == "video" and message.video is not None:
            file_id = message.video.file_id
        elif self.kind == "animation" and message.animation is not None:
            file_id = message.animation.file_id
        if file_id is not None:
            self._uploaded[bot.id] = file_id


#: How many Paths a `MediaCall` remembers the uploads of (the oldest is dropped beyond it).
PATHS_KEPT = 256


class Asker(Protocol):
    """What `MediaCall.resolve` uses of the wizard it calls the function for."""

    @property
    def middleware_data(self) -> Mapping[str, Any]: ...


@dataclass(eq=False)
class MediaCall:
    """A step's media from a callable (``@step(photo=fn)``): called each time the prompt is
    sent, it gives the source from the conversation, or ``None`` for a text prompt.

    A ``Path`` it returns is uploaded once per bot, as a fixed ``Path`` is: the ``Media``
    made for each path is kept (at most `PATHS_KEPT` of them) with the ``file_id``s Telegram
    gave back.
    """

    dynamic: ClassVar[bool] = True

    kind: MediaKind
    function: MediaFunction
    #: what ``function`` asks for from the handler data, after the wizard
    needs: Needs
    #: where it is declared, for errors (``"State.PICTURE"``)
    where: str = ""
    _paths: dict[Path, Media] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, kind: MediaKind, function: MediaFunction, where: str) -> MediaCall:
        """Read ``function``'s signature once, for the step declared at ``where``.

        Raises:
            TypeError: a parameter after the wizard is positional-only (it cannot be
                filled from the handler data by name).
        """
        name = getattr(function, "__qualname__", repr(function))
        needs = needs_of(function, 1, owner=f"the {kind}= callable {name} of {where}")
        return cls(kind, function, needs, where)

    def forget(self) -> None:
        """Drop the remembered uploads: each path is uploaded again the next time."""
        self._paths.clear()

    async def resolve(self, wizard: Asker, step: str) -> Media | None:
        """The media to send now: what the callable returns for ``wizard``, checked.

        Raises:
            TypeError: it returned something that is not a source (or a ``str`` that looks
                like a path on disk); the message names ``step`` and the value.
            FileNotFoundError: it returned a ``Path`` to no file.
        """
        source = await call(self.function, self.needs, wizard.middleware_data, wizard)
        if source is None:
            return None
        if isinstance(source, Path):
            known = self._paths.get(source)
            if known is not None:
                return known  # checked when it was first returned: no syscall per prompt
        try:
            media = Media.of(self.kind, source)
        except (TypeError, FileNotFoundError) as exc:
            name = getattr(self.function, "__qualname__", repr(self.function))
            raise type(exc)(
                f"{step}: its {self.kind}= callable {name} returned {source!r}, which is not "
                f"a media source: {exc} (or return None for a text prompt)"
            ) from None
        if isinstance(source, Path):
            if len(self._paths) >= PATHS_KEPT:
                del self._paths[next(iter(self._paths))]
            self._paths[source] = media
        return media


def static_caption_length(prompt: object) -> int | None:
    """The fewest characters ``prompt`` can show as a caption, when that is known before any
    update: exact for a formatting node, a lower bound for a template (its literal text with
    anything that may be markup taken out); ``None`` for a callable."""
    if isinstance(prompt, Text):
        return len(prompt.render()[0])
    if not isinstance(prompt, str):
        return None
    literal = re.sub(r"\{[^{}]*\}", "", prompt.replace("{{", "{").replace("}}", "}"))
    literal = re.sub(r"<[^>]*>", "", literal)  # HTML tags
    literal = re.sub(r"&#?\w+;", "&", literal)  # HTML entities: one character each
    literal = re.sub(r"\]\([^)]*\)", "]", literal)  # Markdown link targets
    literal = re.sub(r"[\\*_~|`\[\]]", "", literal)  # Markdown marks and escapes
    return len(literal)


async def send_media(
    bot: Bot,
    chat_id: int,
    media: Media,
    caption: str | Text,
    *,
    parse_mode: str | Default | None,
    **kwargs: Any,
) -> Message:
    """Send ``media`` with ``caption`` (markup for ``parse_mode``, or a formatting node).

    A file from this process is uploaded the first time and sent by the ``file_id`` Telegram
    returned after that; if Telegram refuses a remembered ``file_id``, the file is uploaded
    again once.
    """
    if isinstance(caption, Text):
        kwargs.update(caption.as_kwargs(text_key="caption", entities_key="caption_entities"))
    else:
        kwargs.update(caption=caption, parse_mode=parse_mode)
    send = getattr(bot, f"send_{media.kind}")
    remembered = media.uploads and bot.id in media._uploaded
    try:
        message: Message = await send(chat_id, media._input(bot), **kwargs)
    except TelegramBadRequest as exc:
        if not remembered or "file" not in exc.message.lower():
            raise
        logger.warning("the remembered file_id of %s was refused; uploading it again", media)
        media._uploaded.pop(bot.id, None)
        message = await send(chat_id, media._input(bot), **kwargs)
    if media.uploads and bot.id not in media._uploaded:
        media._remember(bot, message)
    return message


class Speaker(Protocol):
    """What `send_media_prompt` uses of the wizard it speaks for (a running wizard has it)."""

    @property
    def bot(self) -> Bot: ...

    @property
    def key(self) -> ConversationKey: ...

    @property
    def parse_mode(self) -> str | Default | None: ...

    async def answer(self, text: str | Text, **kwargs: Any) -> Message: ...


async def send_media_prompt(
    wizard: Speaker, media: Media, prompt: str | Text, error: str | None, reply_markup: Any
) -> Message:
    """Send a wizard's media prompt, with a rejection's ``error`` (plain text) above the
    caption: one message, like a text prompt. A reason that would make the caption too long
    goes in a message of its own first."""
    caption = prompt
    if error:
        if isinstance(prompt, Text):
            caption = Text(error, "\n\n", prompt)
            length = len(caption.render()[0])
        else:
            mode = effective_parse_mode(wizard.bot, wizard.parse_mode)
            caption = f"{escape(error, mode)}\n\n{prompt}"
            length = len(caption)  # markup included: at least what Telegram counts
        if length > CAPTION_LIMIT:
            await wizard.answer(Text(error))
            caption = prompt
    kwargs: dict[str, Any] = {"reply_markup": reply_markup}
    if wizard.key.thread_id is not None:
        kwargs["message_thread_id"] = wizard.key.thread_id
    return await send_media(
        wizard.bot, wizard.key.chat_id, media, caption, parse_mode=wizard.parse_mode, **kwargs
    )
