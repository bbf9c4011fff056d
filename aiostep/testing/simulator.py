"""Drive a real aiogram ``Dispatcher`` as simulated Telegram users, with no network.

Example:
    ```python
    async with BotSimulator(build_dispatcher) as sim:
        talk = sim.chat(sim.user(first_name="Alice"))
        await talk.send("/start")
        talk.assert_last("What is your name?")
        await talk.send("Alice")
        await talk.click("Confirm")
        assert talk.toasts == ["Saved"]
    ```

Every update goes through ``dp.feed_update`` in its own task, as aiogram's polling runs it, so a
handler may stay suspended in ``aiostep.wait_for`` while the next message arrives. After each
action the simulator waits until every task it started is finished or parked in ``wait_for``
([`BotSimulator.settle`][aiostep.testing.BotSimulator.settle]); an exception a handler raised is
re-raised there.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TypeAlias

import aiogram
from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import (
    CallbackQuery,
    Chat,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from typing_extensions import Self

from aiostep.clock import get_clock
from aiostep.steps import clear
from aiostep.testing.fake_clock import FakeClock
from aiostep.testing.session import RecordingSession
from aiostep.testing.telegram import ChatLog, MessageRecord
from aiostep.waiters import parked_tasks

__all__ = [
    "BotSimulator",
    "Conversation",
    "DispatcherFactory",
    "MessageRef",
    "SettleTimeoutError",
]

logger = logging.getLogger("aiostep")

#: Builds the bot's Dispatcher (sync or async); called again by
#: [`BotSimulator.restart`][aiostep.testing.BotSimulator.restart].
DispatcherFactory: TypeAlias = Callable[[], Dispatcher | Awaitable[Dispatcher]]

_TOKEN = "42:TEST"
_NAMES = ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi")
# Frames from these directories say nothing about where a bot is stuck.
_QUIET_DIRS = tuple(
    os.path.dirname(module.__file__ or "") + os.sep for module in (asyncio, aiogram)
)

#: A message given to
#: [`Conversation.edit`][aiostep.testing.Conversation.edit]/``click``/``send(reply_to=...)``: the
#: ``Message`` a send returned, or a [`MessageRecord`][aiostep.testing.MessageRecord] from
#: [`Conversation.messages`][aiostep.testing.Conversation.messages].
MessageRef: TypeAlias = Message | MessageRecord


# Telegram numbers a bot's updates in one increasing sequence: it goes on across workers and
# restarts, so a simulator started after a restart continues above the ids stored before it.
_UPDATE_IDS = itertools.count(int(time.time() * 1000))


class SettleTimeoutError(AssertionError):
    """The bot did not become idle (every update handled or parked in ``wait_for``) in time."""


def _parked_tasks() -> set[asyncio.Task[Any]]:
    """The tasks suspended in ``aiostep.wait_for`` now (a seam the simulator's tests replace)."""
    return parked_tasks()


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities(text: str) -> list[dict[str, Any]] | None:
    """The entities Telegram attaches to a user's ``text``: a bot command at offset 0."""
    if not text.startswith("/") or len(text) < 2 or text[1].isspace():
        return None
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]


def _where(task: asyncio.Task[Any]) -> str:
    """Where ``task`` is suspended, in the bot's own code where possible."""
    frames: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            if not code.co_filename.startswith(_QUIET_DIRS):
                frames.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " <- ".join(reversed(frames[-3:])) or repr(task.get_coro())


def _add_note(exc: BaseException, note: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(note)


class Conversation:
    """One simulated user in one chat (and forum topic): what they do and what they see.

    Get one with [`BotSimulator.chat`][aiostep.testing.BotSimulator.chat]. Actions (``send``,
    ``click``...) return once the bot is idle again; the reading properties show the bot's side of
    this chat.

    Attributes:
        sim: the simulator.
        user: the user acting.
        chat: the chat they act in.
        thread_id: the forum topic, or ``None``.
    """

    def __init__(
        self, sim: BotSimulator, user: User, chat: Chat, thread_id: int | None = None
    ) -> None:
        self.sim = sim
        self.user = user
        self.chat = chat
        self.thread_id = thread_id

    def __repr__(self) -> str:
        topic = f" topic {self.thread_id}" if self.thread_id is not None else ""
        return f"<Conversation user {self.user.id} in chat {self.chat.id}{topic}>"

    # --- acting ------------------------------------------------------------------------------

    async def send(self, text: str, *, reply_to: MessageRef | None = None) -> Message:
        """Send ``text`` as the user; a leading ``/command`` gets its ``bot_command`` entity."""
        return await self._send({"text": text, "entities": _entities(text)}, reply_to)

    async def send_photo(
        self, caption: str | None = None, *, file_id: str | None = None
    ) -> Message:
        """Send a photo (two sizes, like Telegram) with an optional caption."""
        file_id = file_id or self.sim._file_id("photo")
        photo = [
            {"file_id": file_id, "file_unique_id": f"u{file_id}", "width": 90, "height": 90},
            {
                "file_id": f"{file_id}-big",
                "file_unique_id": f"u{file_id}-big",
                "width": 1280,
                "height": 960,
            },
        ]
        return await self._send({"photo": photo, "caption": caption})

    async def send_document(
        self,
        file_name: str = "document.txt",
        caption: str | None = None,
        *,
        mime_type: str = "text/plain",
        file_size: int = 1024,
        file_id: str | None = None,
    ) -> Message:
        """Send a document (a file's metadata; there is no content to download)."""
        file_id = file_id or self.sim._file_id("document")
        document = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": file_size,
        }
        return await self._send({"document": document, "caption": caption})

    async def send_sticker(self, emoji: str = "👍", *, file_id: str | None = None) -> Message:
        """Send a (regular, static) sticker."""
        file_id = file_id or self.sim._file_id("sticker")
        sticker = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._send({"sticker": sticker})

    async def send_contact(
        self,
        phone_number: str = "+15550100000",
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        user_id: int | None = None,
    ) -> Message:
        """Send a contact; without ``first_name`` it is the user's own (with their ``user_id``),
        like a "share my phone number" button."""
        if first_name is None:
            first_name, last_name = self.user.first_name, self.user.last_name
            user_id = self.user.id if user_id is None else user_id
        contact = {
            "phone_number": phone_number,
            "first_name": first_name,
            "last_name": last_name,
            "user_id": user_id,
        }
        return await self._send({"contact": contact})

    async def send_location(self, latitude: float, longitude: float) -> Message:
        """Send a location."""
        return await self._send({"location": {"latitude": latitude, "longitude": longitude}})

    async def send_poll(
        self,
        question: str = "Question?",
        options: Sequence[str] = ("Yes", "No"),
        *,
        type: str = "regular",
    ) -> Message:
        """Send a poll the user made (what a ``request_poll`` button's poll editor sends)."""
        poll = {
            "id": f"poll-{self.sim._file_id('poll')}",
            "question": question,
            # persistent_id, allows_revoting, members_only: required by newer Bot APIs
            "options": [
                {"text": option, "voter_count": 0, "persistent_id": str(i)}
                for i, option in enumerate(options)
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": type,
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
        return await self._send({"poll": poll})

    async def send_users_shared(self, request_id: int, users: Sequence[User | int]) -> Message:
        """Share ``users`` in answer to the ``request_users`` button ``request_id`` (a
        ``users_shared`` service message; names are given for ``User`` objects)."""
        shared = [
            {"user_id": user}
            if isinstance(user, int)
            else {
                "user_id": user.id,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "username": user.username,
            }
            for user in users
        ]
        return await self._send({"users_shared": {"request_id": request_id, "users": shared}})

    async def send_chat_shared(self, request_id: int, chat: Chat | int) -> Message:
        """Share ``chat`` in answer to the ``request_chat`` button ``request_id`` (a
        ``chat_shared`` service message; title and username are given for a ``Chat``)."""
        if isinstance(chat, int):
            shared: dict[str, Any] = {"chat_id": chat}
        else:
            shared = {"chat_id": chat.id, "title": chat.title, "username": chat.username}
        return await self._send({"chat_shared": {"request_id": request_id, **shared}})

    async def edit(self, message: MessageRef, text: str) -> Message:
        """Edit one of the user's own messages (an ``edited_message`` update).

        Raises:
            ValueError: ``message`` is not this user's message in this chat.
        """
        log = self._log
        record = log.records.get(message.message_id)
        sender = record.message.from_user if record is not None else None
        if record is None or record.from_bot or sender is None or sender.id != self.user.id:
            raise ValueError(
                f"message {message.message_id} is not a message of user {self.user.id} in "
                f"chat {self.chat.id}; a user can edit only their own messages"
            )
        changes: dict[str, Any] = {"edit_date": int(get_clock().now())}
        if record.message.text is not None:
            changes.update(text=text, entities=_entities(text))
        else:
            changes["caption"] = text
        data = {**record.message.model_dump(by_alias=True), **changes}
        edited = Message.model_validate(data, context={"bot": self.sim.bot})
        log.replace(record, edited, self._label)
        await self.sim.feed(self.sim._update(edited_message=edited), chat_id=self.chat.id)
        return edited

    def delete(self, message: MessageRef) -> None:
        """Delete a message here as the user does (their own, or in a private chat the bot's).

        Telegram tells the bot nothing: no update is sent. The bot's later edits of it fail
        with ``"message to edit not found"``, as they would.

        Raises:
            ValueError: ``message`` is not in this chat, is deleted already, or is the bot's
                message in a group (only admins may delete those).
        """
        log = self._log
        record = log.records.get(message.message_id)
        if record is None or record.deleted:
            raise ValueError(
                f"message {message.message_id} is not a message of chat {self.chat.id} (or is "
                "deleted already); pass one from this chat's messages"
            )
        sender = record.message.from_user
        own = not record.from_bot and sender is not None and sender.id == self.user.id
        if not own and not (record.from_bot and self.chat.type == "private"):
            raise ValueError(
                f"user {self.user.id} cannot delete message {message.message_id} in chat "
                f"{self.chat.id}: a user deletes their own messages, or the bot's in a private "
                "chat"
            )
        log.note(f"{self._label} deleted message {message.message_id}")
        log.delete(record, "bot" if record.from_bot else self._label)

    async def click(self, text: str, *, message: MessageRef | None = None) -> CallbackQuery:
        """Press the inline button ``text`` on the newest bot message here that has one.

        With ``message``, press it on that message. Sends a ``callback_query`` update with the
        button's ``callback_data``.

        Raises:
            AssertionError: no such button (the message shows the transcript), or it is not a
                callback button (a URL, a web app...).
        """
        log = self._log
        if message is not None:
            candidates = [r for r in [log.records.get(message.message_id)] if r is not None]
        else:
            candidates = list(reversed(self.messages))
        for record in candidates:
            button = record.find_button(text) if not record.deleted else None
            if button is not None:
                break
        else:
            where = f"message {message.message_id}" if message is not None else "bot messages"
            raise AssertionError(
                f"no inline button [{text}] on the {where} in chat {self.chat.id}"
                f"{self._topic_note}\n\n{self.transcript()}"
            )
        if button.callback_data is None:
            kind = next(
                (
                    name
                    for name, value in button.model_dump(exclude_none=True).items()
                    if name != "text"
                ),
                "unknown",
            )
            raise AssertionError(
                f"button [{text}] is a {kind!r} button, not a callback button; only buttons "
                f"with callback_data send an update\n\n{self.transcript()}"
            )
        query = CallbackQuery.model_validate(
            {
                "id": self.sim._callback_id(),
                "from": self.user.model_dump(),
                "chat_instance": f"ci{self.chat.id}",
                "message": record.message.model_dump(by_alias=True),
                "data": button.callback_data,
            },
            context={"bot": self.sim.bot},
        )
        self.sim.session.expect_callback(query.id, self.chat.id)
        log.note(f"{self._label} clicked [{text}]")
        await self.sim.feed(self.sim._update(callback_query=query), chat_id=self.chat.id)
        return query

    async def press(
        self,
        text: str,
        *,
        location: tuple[float, float] = (51.5074, -0.1278),
        share: Sequence[User | int] | Chat | int | None = None,
        poll: Sequence[str] = ("Question?", "Yes", "No"),
    ) -> Message:
        """Press the button ``text`` of the reply keyboard shown here
        ([`keyboard`][aiostep.testing.Conversation.keyboard]).

        An ordinary button sends its text. A request button sends what the user's app would:
        ``request_contact`` the user's own contact, ``request_location`` ``location``,
        ``request_poll`` a poll (``poll``: the question, then the options; a quiz if the
        button asks for one), ``request_users`` the users in ``share`` (default: a new
        simulated user), ``request_chat`` the chat ``share`` (default: a new group).

        Raises:
            AssertionError: no reply keyboard here has that button (shows the transcript).
            ValueError: a ``request_chat`` button pressed with a list of users to ``share``.
        """
        markup = self._reply_keyboard()
        buttons = [b for row in markup.keyboard for b in row] if markup is not None else []
        button = next((b for b in buttons if b.text == text), None)
        if button is None:
            raise AssertionError(
                f"no reply keyboard button ({text}) in chat {self.chat.id}{self._topic_note}; "
                f"the keyboard is {self.keyboard!r}\n\n{self.transcript()}"
            )
        if button.request_contact:
            return await self.send_contact()
        if button.request_location:
            return await self.send_location(*location)
        if button.request_poll is not None:
            return await self.send_poll(
                poll[0], poll[1:], type=button.request_poll.type or "regular"
            )
        if button.request_users is not None or button.request_chat is not None:
            if share is None:  # someone the user might pick: a new user, a new group
                share = [self.sim.user()] if button.request_users is not None else self.sim.group()
            if button.request_users is not None:
                users = [share] if isinstance(share, (int, Chat)) else share
                return await self.send_users_shared(
                    button.request_users.request_id,
                    [u for u in users if not isinstance(u, Chat)],
                )
            assert button.request_chat is not None
            if not isinstance(share, (int, Chat)):
                raise ValueError(f"button ({text}) shares one chat: pass share=chat (or its id)")
            return await self.send_chat_shared(button.request_chat.request_id, share)
        return await self.send(text)

    # --- reading -----------------------------------------------------------------------------

    @property
    def keyboard(self) -> list[list[str]] | None:
        """The reply keyboard shown here now (button texts by row), or ``None``.

        It is the one sent with the bot's newest message that sent a reply keyboard, unless a
        later message removed it.
        """
        markup = self._reply_keyboard()
        return [[b.text for b in row] for row in markup.keyboard] if markup is not None else None

    @property
    def messages(self) -> list[MessageRecord]:
        """The bot's messages here (in this topic, if any), oldest first; deleted ones flagged."""
        return self._log.bot_messages(self.thread_id)

    @property
    def last_message(self) -> MessageRecord | None:
        """The bot's newest message here that is not deleted, or ``None``."""
        for record in reversed(self.messages):
            if not record.deleted:
                return record
        return None

    @property
    def last(self) -> str | None:
        """The text (or caption) of the bot's newest message here, as it is now."""
        record = self.last_message
        return record.text if record is not None else None

    @property
    def toasts(self) -> list[str]:
        """The texts the bot showed in answer to button presses here (toasts and alerts)."""
        return [answer.text for answer in self._log.answers if answer.text]

    def transcript(self) -> str:
        """This chat's transcript (every user, every topic)."""
        return self._log.transcript()

    def assert_last(self, text: str, *, buttons: Sequence[Sequence[str]] | None = None) -> None:
        """Assert the bot's newest message here reads ``text`` (and has these inline buttons).

        Raises:
            AssertionError: it does not; the message includes the transcript.
        """
        record = self.last_message
        actual = record.text if record is not None else None
        if actual != text:
            raise AssertionError(
                f"expected the bot's last message to be {text!r}, got {actual!r}"
                f"\n\n{self.transcript()}"
            )
        if buttons is not None and record is not None:
            wanted = [list(row) for row in buttons]
            if record.buttons != wanted:
                raise AssertionError(
                    f"expected buttons {wanted!r} on the bot's last message, got "
                    f"{record.buttons!r}\n\n{self.transcript()}"
                )

    def assert_sent_contains(self, fragment: str) -> None:
        """Assert some message of the bot here (now, after edits) contains ``fragment``.

        Raises:
            AssertionError: none does; the message includes the transcript.
        """
        if not any(fragment in (record.text or "") for record in self.messages):
            raise AssertionError(
                f"the bot sent nothing containing {fragment!r} in chat {self.chat.id}"
                f"{self._topic_note}\n\n{self.transcript()}"
            )

    # --- internals ---------------------------------------------------------------------------

    def _reply_keyboard(self) -> ReplyKeyboardMarkup | None:
        for record in reversed(self.messages):
            if isinstance(record.markup, ReplyKeyboardMarkup):
                return record.markup
            if isinstance(record.markup, ReplyKeyboardRemove):
                return None
        return None

    @property
    def _log(self) -> ChatLog:
        return self.sim.session.chat_log(self.chat)

    @property
    def _label(self) -> str:
        return "user" if self.chat.type == "private" else self.user.first_name

    @property
    def _topic_note(self) -> str:
        return f" (topic {self.thread_id})" if self.thread_id is not None else ""

    async def _send(self, content: dict[str, Any], reply_to: MessageRef | None = None) -> Message:
        sim = self.sim
        log = self._log
        data: dict[str, Any] = {
            "message_id": log.next_message_id(),
            "date": datetime.fromtimestamp(get_clock().now(), tz=timezone.utc),
            "chat": self.chat.model_dump(),
            "from": self.user.model_dump(),
            **{key: value for key, value in content.items() if value is not None},
        }
        if self.thread_id is not None:
            data["message_thread_id"] = self.thread_id
            if self.chat.is_forum:
                data["is_topic_message"] = True
        if reply_to is not None:
            replied = log.records.get(reply_to.message_id)
            if replied is not None:
                data["reply_to_message"] = replied.message.model_dump(by_alias=True)
        message = Message.model_validate(data, context={"bot": sim.bot})
        log.post(MessageRecord(message, from_bot=False), self._label)
        await sim.feed(sim._update(message=message), chat_id=self.chat.id)
        return message


class BotSimulator:
    """A real aiogram ``Dispatcher`` wired to simulated Telegram users instead of the network.

    Args:
        dispatcher: the bot's ``Dispatcher``, or a factory (sync or async) that builds it.
            Only a factory allows [`restart`][aiostep.testing.BotSimulator.restart] (it builds the
            new process's Dispatcher).
        bot: the ``Bot`` to use; its session must be a
            [`RecordingSession`][aiostep.testing.RecordingSession]. Default:
            ``Bot("42:TEST", session=RecordingSession())``.
        settle_timeout: seconds [`settle`][aiostep.testing.BotSimulator.settle] waits for the bot to
            become idle.

    Use ``async with BotSimulator(...) as sim:``, or call
    [`aclose`][aiostep.testing.BotSimulator.aclose] at the end: it ends pending handlers, runs the
    shutdown hooks, restores the clock and closes the session.
    """

    def __init__(
        self,
        dispatcher: Dispatcher | DispatcherFactory,
        *,
        bot: Bot | None = None,
        settle_timeout: float = 5.0,
    ) -> None:
        if bot is None:
            bot = Bot(_TOKEN, session=RecordingSession())
        elif not isinstance(bot.session, RecordingSession):
            raise TypeError(
                f"bot.session must be a RecordingSession, got {type(bot.session).__name__}; "
                "create the bot as Bot(token, session=RecordingSession())"
            )
        self.bot = bot
        self.settle_timeout = settle_timeout
        self._factory: DispatcherFactory | None = None
        self._dp: Dispatcher | None = None
        self._dp_pending: Awaitable[Dispatcher] | None = None
        if isinstance(dispatcher, Dispatcher):
            self._dp = dispatcher
        elif callable(dispatcher):
            self._factory = dispatcher
            self._build_sync()
        else:
            raise TypeError(
                f"BotSimulator needs a Dispatcher or a factory returning one, got {dispatcher!r}"
            )
        self._started = False
        self._tasks: dict[asyncio.Task[Any], int | None] = {}  # task -> chat id
        self._failures: list[tuple[BaseException, int | None]] = []
        # Telegram numbers a bot's updates in one increasing sequence, whichever worker
        # receives them: simulators standing for several workers share it.
        self._update_ids = _UPDATE_IDS
        self._user_ids = itertools.count(1001)
        self._group_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._default_user: User | None = None
        self._clock: FakeClock | None = None  # the fake clock whose timers settle this sim
        self._own_clock: FakeClock | None = None  # the one use_fake_clock() installed
        self._settling: asyncio.Future[None] | None = None  # the settle loop under way

    # --- the bot -----------------------------------------------------------------------------

    @property
    def session(self) -> RecordingSession:
        """The recording session: every Bot API call, and the simulated chats."""
        session = self.bot.session
        assert isinstance(session, RecordingSession)
        return session

    @property
    def dispatcher(self) -> Dispatcher:
        """The current Dispatcher (a new one after each
        [`restart`][aiostep.testing.BotSimulator.restart]).

        Raises:
            RuntimeError: an async factory has not run yet (``await sim.start()`` first).
        """
        if self._dp is None:
            raise RuntimeError(
                "the Dispatcher is built by an async factory: await sim.start() (or send "
                "something) first"
            )
        return self._dp

    @property
    def started(self) -> bool:
        """Whether the startup hooks of the current Dispatcher have run."""
        return self._started

    async def start(self) -> None:
        """Build the Dispatcher if needed and run its startup hooks, like ``start_polling``.

        Called by ``async with`` and before the first update; calling it again does nothing.
        """
        if self._started:
            return
        if self._dp is None:
            pending, self._dp_pending = self._dp_pending, None
            if pending is None:
                assert self._factory is not None  # only a factory leaves no Dispatcher
                built = self._factory()
                pending = built if inspect.isawaitable(built) else None
                if pending is None:
                    self._dp = self._check_dp(built)
            if pending is not None:
                self._dp = self._check_dp(await pending)
        self._attach_clock()
        self._started = True
        await self.dispatcher.emit_startup(**self._workflow_data())

    async def aclose(self) -> None:
        """End the simulation: cancel pending handlers, run the shutdown hooks, end in-process
        waiters and steps (``aiostep.clear``), restore the clock and close the session.

        Raises:
            Exception: a handler's exception that was not raised yet.
        """
        try:
            await self._cancel_tasks()
            if self._started:
                self._started = False
                await self.dispatcher.emit_shutdown(**self._workflow_data())
            await clear()
        finally:
            if self._clock is not None:
                self._clock.remove_settle_hook(self._on_timers)
                self._clock = None
            if self._own_clock is not None:
                self._own_clock.uninstall()
                self._own_clock = None
            await self.bot.session.close()
        self._raise_failures()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
            return
        try:
            await self.aclose()
        except Exception:
            # The test already fails with ``exc``; do not hide it behind a later failure.
            logger.exception("BotSimulator.aclose() failed while the test was failing")

    async def restart(self) -> None:
        """Simulate a restart of the bot's process.

        Pending handlers are cancelled, the shutdown hooks run, in-process waiters and steps
        end (``aiostep.clear``), the fake clock's timers are dropped, then the factory builds a
        new Dispatcher (over the same storage) and its startup hooks run. Users, chats and
        transcripts survive (they are Telegram's); each transcript gets ``--- restart ---``.

        Raises:
            TypeError: the simulator was given a Dispatcher instead of a factory.
        """
        if self._factory is None:
            raise TypeError(
                "restart() needs a factory that builds the Dispatcher: pass "
                "BotSimulator(build_dispatcher) (a function building a new Dispatcher and its "
                "storages over the same file/Redis) instead of a Dispatcher instance"
            )
        self._raise_failures()
        await self._cancel_tasks()
        if self._started:
            self._started = False
            await self.dispatcher.emit_shutdown(**self._workflow_data())
        await clear()
        if self._clock is not None:
            self._clock.cancel_all()
        for log in self.session.chats.values():
            log.note("--- restart ---")
        self._dp = None
        self._build_sync()
        await self.start()

    # --- fake time ---------------------------------------------------------------------------

    def use_fake_clock(self, start: float = 1_700_000_000.0) -> FakeClock:
        """Install a [`FakeClock`][aiostep.testing.FakeClock] for aiostep until
        [`aclose`][aiostep.testing.BotSimulator.aclose], and return it.

        ``await clock.advance(seconds)`` then fires due timers and waits for this bot to settle.
        """
        if self._own_clock is not None:
            return self._own_clock
        self._own_clock = FakeClock(start).install()
        self._attach_clock()
        return self._own_clock

    # --- users and chats ---------------------------------------------------------------------

    def user(
        self,
        id: int | None = None,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        is_premium: bool | None = None,
    ) -> User:
        """A simulated Telegram user (ids from 1001, names Alice, Bob... unless given).

        The first user made is the default user of [`chat`][aiostep.testing.BotSimulator.chat] and
        [`send`][aiostep.testing.BotSimulator.send].
        """
        number = next(self._user_ids)
        user_id = id if id is not None else number
        user = User(
            id=user_id,
            is_bot=False,
            first_name=first_name or _NAMES[(number - 1001) % len(_NAMES)],
            last_name=last_name,
            username=username,
            language_code=language_code,
            is_premium=is_premium,
        )
        self.session.add_user(user)
        if self._default_user is None:
            self._default_user = user
        return user

    @property
    def default_user(self) -> User:
        """The first user made (made now, as Alice, if there is none yet)."""
        if self._default_user is None:
            return self.user()
        return self._default_user

    def private_chat(self, user: User) -> Chat:
        """The private chat between ``user`` and the bot."""
        chat = Chat(
            id=user.id,
            type="private",
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
        )
        existing = self.session.chats.get(user.id)
        if existing is not None:
            return existing.chat
        self.session.chat_log(chat)
        return chat

    def group(
        self,
        id: int | None = None,
        title: str = "Test group",
        *,
        forum: bool = False,
        username: str | None = None,
    ) -> Chat:
        """A supergroup with the bot in it (a forum, with topics, if ``forum``)."""
        chat_id = id if id is not None else -1001000000000 - next(self._group_ids)
        chat = Chat(
            id=chat_id,
            type="supergroup",
            title=title,
            username=username,
            is_forum=True if forum else None,
        )
        self.session.chat_log(chat)
        return chat

    def chat(
        self, user: User | None = None, chat: Chat | None = None, *, thread_id: int | None = None
    ) -> Conversation:
        """``user`` (default: [`default_user`][aiostep.testing.BotSimulator.default_user]) in
        ``chat`` (default: their private chat), in forum topic ``thread_id`` if given."""
        user = user if user is not None else self.default_user
        chat = chat if chat is not None else self.private_chat(user)
        self.session.chat_log(chat)
        return Conversation(self, user, chat, thread_id)

    async def send(
        self, text: str, *, user: User | None = None, chat: Chat | None = None
    ) -> Message:
        """Send ``text`` as ``user`` in ``chat`` (defaults as in
        [`chat`][aiostep.testing.BotSimulator.chat])."""
        return await self.chat(user, chat).send(text)

    async def click(
        self, text: str, *, user: User | None = None, chat: Chat | None = None
    ) -> CallbackQuery:
        """Press inline button ``text`` as ``user`` in ``chat`` (see
        [`Conversation.click`][aiostep.testing.Conversation.click])."""
        return await self.chat(user, chat).click(text)

    def transcript(self, chat: Chat | int | None = None) -> str:
        """The transcript of ``chat``, or of every chat (one after the other)."""
        if chat is not None:
            return self.session.chat_log(chat).transcript()
        return "\n\n".join(log.transcript() for log in self.session.chats.values())

    # --- updates -----------------------------------------------------------------------------

    async def feed(self, update: Update, *, chat_id: int | None = None) -> None:
        """Feed any ``update`` to the Dispatcher in a new task, then
        [`settle`][aiostep.testing.BotSimulator.settle].

        ``chat_id`` names the chat whose transcript an error report shows.
        """
        await self.start()
        self._attach_clock()
        self._raise_failures()
        if update.bot is not self.bot:
            update = Update.model_validate(update.model_dump(), context={"bot": self.bot})
        task = asyncio.create_task(
            self._handle(self.dispatcher, update), name=f"aiostep-sim update {update.update_id}"
        )
        self._track(task, chat_id)
        await self.settle()

    async def settle(self, timeout: float | None = None) -> None:
        """Wait until every task the simulator started is done or parked in ``wait_for``.

        Raises:
            Exception: the first exception a handler raised (others are logged), with the
                chat's transcript attached as a note.
            SettleTimeoutError: still busy after ``timeout`` (default `settle_timeout`)
                seconds; the message says where each busy task is and shows the transcript.
        """
        # Concurrent sends share one settling loop: one loop per caller, each polling every
        # busy task, made a burst of N messages cost O(N^2) per loop turn.
        shared = self._settling
        if shared is None or shared.done():
            shared = self._settling = asyncio.ensure_future(self._settle(timeout))
            # retrieved even when every caller was cancelled meanwhile
            shared.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._raise_failures()
        await asyncio.shield(shared)
        self._raise_failures()  # a handler's error goes to a caller, not the shared loop

    async def _settle(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        limit = self.settle_timeout if timeout is None else timeout
        deadline = loop.time() + limit
        quiet = 0
        spins = 0
        while True:
            if self._failures:
                return
            parked = _parked_tasks()
            busy = [task for task in self._tasks if not task.done() and task not in parked]
            if not busy:
                # Parked-and-answered tasks leave the parked set when they resume, a loop turn
                # later: idle only if it stays so over a few turns.
                quiet += 1
                if quiet > 3:
                    return
                await asyncio.sleep(0)
                continue
            quiet = 0
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SettleTimeoutError(self._busy_report(busy, limit))
            if spins < 20:
                await asyncio.sleep(0)
            else:
                delay = min(0.01, 0.0005 * 2 ** min(spins - 20, 10), remaining)
                await asyncio.wait(busy, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            spins += 1

    def raise_failures(self) -> None:
        """Raise the first exception a handler raised that no action has raised yet.

        Actions and [`settle`][aiostep.testing.BotSimulator.settle] do this themselves; call it when
        driving a bot without acting, e.g. to report what a timed-out ``wait_for`` or a background
        update raised while the user is idle.
        """
        self._raise_failures()

    @property
    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """The simulator's update tasks not finished yet (parked ones included)."""
        return [task for task in self._tasks if not task.done()]

    # --- internals ---------------------------------------------------------------------------

    def _build_sync(self) -> None:
        assert self._factory is not None
        if inspect.iscoroutinefunction(self._factory):
            self._dp_pending = None  # built by start(), where it can be awaited
            return
        built = self._factory()
        if inspect.isawaitable(built):
            self._dp_pending = built
        else:
            self._dp = self._check_dp(built)

    def _check_dp(self, built: object) -> Dispatcher:
        if not isinstance(built, Dispatcher):
            raise TypeError(f"the dispatcher factory returned {built!r}, not a Dispatcher")
        return built

    def _workflow_data(self) -> dict[str, Any]:
        dp = self.dispatcher
        data: dict[str, Any] = {"dispatcher": dp, "bots": [self.bot], **dp.workflow_data}
        data.pop("bot", None)
        data["bot"] = self.bot
        return data

    def _attach_clock(self) -> None:
        clock = get_clock()
        if isinstance(clock, FakeClock) and clock is not self._clock:
            if self._clock is not None:
                self._clock.remove_settle_hook(self._on_timers)
            clock.add_settle_hook(self._on_timers)
            self._clock = clock

    async def _on_timers(self, spawned: set[asyncio.Task[Any]]) -> None:
        for task in spawned:
            if not task.done() and task not in self._tasks:
                self._track(task, None)
        await self.settle()

    async def _handle(self, dp: Dispatcher, update: Update) -> None:
        data = self._workflow_data()
        del data["bot"], data["dispatcher"]
        response = await dp.feed_update(self.bot, update, **data)
        if isinstance(response, TelegramMethod):
            # A handler returned a method: polling calls it (aiogram's webhook-style answer).
            await self.bot(response)

    def _track(self, task: asyncio.Task[Any], chat_id: int | None) -> None:
        self._tasks[task] = chat_id
        task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        chat_id = self._tasks.pop(task, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._failures.append((exc, chat_id))

    def _raise_failures(self) -> None:
        if not self._failures:
            return
        failures, self._failures = self._failures, []
        exc, chat_id = failures[0]
        for other, _ in failures[1:]:
            logger.error("another simulated update failed too", exc_info=other)
        _add_note(exc, f"(raised by a handler in BotSimulator)\n{self.transcript(chat_id)}")
        raise exc

    async def _cancel_tasks(self) -> None:
        tasks = self.pending_tasks
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _busy_report(self, busy: list[asyncio.Task[Any]], limit: float) -> str:
        lines = [
            f"the bot is still busy after {limit} s: {len(busy)} update task(s) neither "
            "finished nor parked in aiostep.wait_for:"
        ]
        lines.extend(f"  {task.get_name()}: at {_where(task)}" for task in busy)
        chats = {self._tasks.get(task) for task in busy}
        if None in chats:
            lines.append("\n" + self.transcript())
        else:
            lines.extend("\n" + self.transcript(chat_id) for chat_id in chats)
        return "\n".join(lines)

    def _update(self, **event: Any) -> Update:
        return Update.model_validate(
            {"update_id": next(self._update_ids), **event}, context={"bot": self.bot}
        )

    def _file_id(self, kind: str) -> str:
        return f"user-{kind}-{next(self._file_ids)}"

    def _callback_id(self) -> str:
        return str(next(self._callback_ids))
