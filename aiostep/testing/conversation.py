"""The per-chat API of the simulator: one simulated user in one chat (and forum topic), what
they do (``send``, ``click``, ``edit``...) and what they see (``messages``, ``last``,
``keyboard``, ``toasts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from aiogram.types import (
    CallbackQuery,
    Chat,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    User,
)

from aiostep.clock import get_clock
from aiostep.testing.telegram import ChatLog, MessageRecord
from aiostep.testing.updates import entities as _entities

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.types import Update

    from aiostep.testing.session import RecordingSession

__all__ = ["Conversation", "MessageRef", "SimulatorLike"]

#: A message given to
#: [`Conversation.edit`][aiostep.testing.Conversation.edit]/``click``/``send(reply_to=...)``: the
#: ``Message`` a send returned, or a [`MessageRecord`][aiostep.testing.MessageRecord] from
#: [`Conversation.messages`][aiostep.testing.Conversation.messages].
MessageRef: TypeAlias = Message | MessageRecord


class SimulatorLike(Protocol):
    """What a `Conversation` uses of its [`BotSimulator`][aiostep.testing.BotSimulator] (which
    makes conversations, so this module does not import it)."""

    @property
    def bot(self) -> Bot:
        """The bot under test."""
        ...

    @property
    def session(self) -> RecordingSession:
        """The recording session: every Bot API call, and the simulated chats."""
        ...

    async def feed(self, update: Update, *, chat_id: int | None = None) -> None:
        """Feed ``update`` to the Dispatcher and wait until the bot is idle."""
        ...

    def user(self) -> User:
        """A new simulated user."""
        ...

    def group(self) -> Chat:
        """A new supergroup with the bot in it."""
        ...

    def _update(self, **event: Any) -> Update: ...

    def _file_id(self, kind: str) -> str: ...

    def _callback_id(self) -> str: ...


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
        self, sim: SimulatorLike, user: User, chat: Chat, thread_id: int | None = None
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
        """Send ``text`` as the user; a leading ``/command`` gets its ``bot_command`` entity.

        Raises:
            ValueError: ``reply_to`` is a message of another chat.
        """
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
        self._here(message)
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
        self._here(message)
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
            ValueError: ``message`` is in another chat.
        """
        log = self._log
        if message is not None:
            self._here(message)
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

        An ordinary button sends its text (in a group, as a reply to the keyboard's message,
        as the app does). A request button sends what the user's app would:
        ``request_contact`` the user's own contact, ``request_location`` ``location``,
        ``request_poll`` a poll (``poll``: the question, then the options; a quiz if the
        button asks for one), ``request_users`` the users in ``share`` (default: a new
        simulated user), ``request_chat`` the chat ``share`` (default: a new group).

        Raises:
            AssertionError: no reply keyboard here has that button (shows the transcript),
                or it is a request button outside a private chat (Telegram's request buttons
                work in private chats only).
            ValueError: a ``request_chat`` button pressed with a list of users to ``share``,
                or a ``request_users`` one with more users than its ``max_quantity``.
        """
        markup = self._reply_keyboard()
        buttons = [b for row in markup.keyboard for b in row] if markup is not None else []
        button = next((b for b in buttons if b.text == text), None)
        if button is None:
            raise AssertionError(
                f"no reply keyboard button ({text}) in chat {self.chat.id}{self._topic_note}; "
                f"the keyboard is {self.keyboard!r}\n\n{self.transcript()}"
            )
        requests = button.request_contact or button.request_location
        if (requests or button.request_poll or button.request_users or button.request_chat) and (
            self.chat.type != "private"
        ):
            raise AssertionError(
                f"button ({text}) in chat {self.chat.id} asks the user's app to share something: "
                "Telegram's request buttons work in private chats only, the app cannot press "
                f"it in a {self.chat.type}\n\n{self.transcript()}"
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
                most = button.request_users.max_quantity or 1
                if len(users) > most:  # the app's list lets the user pick no more
                    raise ValueError(
                        f"button ({text}) shares at most {most} user(s) "
                        f"(max_quantity); got {len(users)}"
                    )
                return await self.send_users_shared(
                    button.request_users.request_id,
                    [u for u in users if not isinstance(u, Chat)],
                )
            assert button.request_chat is not None
            if not isinstance(share, (int, Chat)):
                raise ValueError(f"button ({text}) shares one chat: pass share=chat (or its id)")
            return await self.send_chat_shared(button.request_chat.request_id, share)
        if self.chat.type != "private":
            # in a group the app sends a keyboard button's text as a reply to the keyboard's
            # message, which a bot with privacy mode on is also given
            return await self.send(text, reply_to=self._reply_keyboard_message())
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
        """The bot's messages here (in this topic, if any), oldest first; deleted ones flagged.

        In a forum without ``thread_id``, those of its General topic, as Telegram shows it.
        """
        records = self._log.bot_messages(self.thread_id)
        if self.thread_id is None and self.chat.is_forum:
            return [r for r in records if not r.message.is_topic_message]
        return records

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

    def _here(self, message: MessageRef) -> None:
        """Refuse a message of another chat: ids are per chat, so its id names another
        message here."""
        chat_id = message.chat_id if isinstance(message, MessageRecord) else message.chat.id
        if chat_id != self.chat.id:
            raise ValueError(
                f"message {message.message_id} is in chat {chat_id}, not in chat "
                f"{self.chat.id}; use it from a conversation in its own chat"
            )

    def _reply_keyboard(self) -> ReplyKeyboardMarkup | None:
        record = self._reply_keyboard_message()
        return record.markup if record is not None else None  # type: ignore[return-value]

    def _reply_keyboard_message(self) -> MessageRecord | None:
        """The bot's message whose reply keyboard is shown here, if any."""
        for record in reversed(self.messages):
            if isinstance(record.markup, ReplyKeyboardMarkup):
                return record
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
        if reply_to is not None:
            self._here(reply_to)
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
        if not sim.session.delivers(message, sim.bot.id):
            log.note("  (not delivered to the bot: privacy mode)")
            return message
        await sim.feed(sim._update(message=message), chat_id=self.chat.id)
        return message
