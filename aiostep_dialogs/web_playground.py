"""The web playground: talk to a bot or wizard in a browser page that looks like Telegram.

``python -m aiostep_dialogs play --web examples/signup.py`` serves a local page (aiohttp) with
two simulated users in their private chats and a group with both of them, side by side. The
page shows bubbles, inline and reply keyboards to press, edits in place, toasts, a restart
button and the wizard's flow with the step of the selected conversation highlighted.

Like the terminal playground it runs the real Dispatcher through
[`aiostep.testing.BotSimulator`][aiostep.testing.BotSimulator], so it needs no token and no network.
Every Bot API call the bot makes bumps a version number; the page follows it over server-sent events
(``/api/events``), so what the bot sends on its own (a ``wait_for`` timeout, a reminder) shows
up while the user is idle.

JSON API (POST bodies are JSON, ``Content-Type: application/json``):

- ``GET /api/state``: the snapshot the page draws (chats, messages, keyboards, toasts,
  each conversation's stored step, the wizards' flowcharts);
- ``GET /api/events``: ``event: state`` with a snapshot at once and after every change;
- ``POST /api/send`` ``{"chat": "alice", "user": 1001, "text": "Hi"}``;
- ``POST /api/click`` ``{"chat": ..., "user": ..., "message_id": 3, "text": "Yes"}``;
- ``POST /api/press`` ``{"chat": ..., "user": ..., "text": "Tea"}`` (a reply keyboard button);
- ``POST /api/restart``: [`BotSimulator.restart`][aiostep.testing.BotSimulator.restart], a simulated
  restart of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TextIO, TypeVar

from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, ReplyKeyboardMarkup, ReplyKeyboardRemove, User
from aiohttp import web

from aiostep import ANYONE, ConversationKey, Listen
from aiostep.keys import storage_key
from aiostep.storage import BaseStorage, StateContext
from aiostep.testing import BotSimulator, Conversation, MessageRecord, RecordingSession
from aiostep_dialogs.flowchart import parse_flowchart
from aiostep_dialogs.loading import Target, load_target
from aiostep_dialogs.playground import make_storage
from aiostep_dialogs.record import stored_wizard_id
from aiostep_dialogs.wizard import Wizard

__all__ = ["WebPlayground", "run_web_playground", "serve"]

logger = logging.getLogger("aiostep_dialogs")

_T = TypeVar("_T")
_TOKEN = "42:TEST"
#: seconds between keep-alive comments on an idle event stream (finds closed tabs)
_PING_EVERY = 15.0


class _NotifyingSession(RecordingSession):
    """A [`RecordingSession`][aiostep.testing.RecordingSession] that reports each Bot API call once
    it is answered."""

    def __init__(self, on_call: Callable[[], None]) -> None:
        super().__init__()
        self._on_call = on_call

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        try:
            return await super().make_request(bot, method, timeout)
        finally:
            self._on_call()


@dataclass(eq=False)
class _Pane:
    """One chat shown on the page, with the users who can type in it."""

    key: str
    title: str
    chat: Chat
    members: list[User]
    #: lines between messages (a restart): (how many messages came before it, text)
    notes: list[tuple[int, str]] = field(default_factory=list)


class BadRequest(ValueError):
    """A request the page should not have sent (unknown chat, user or button)."""


class WebPlayground:
    """The simulated bot, users and chats behind the web page, and its aiohttp application.

    Args:
        target: the bot or wizard to run (see `aiostep_dialogs.loading.load_target`).
        storage: ``memory``, ``file:PATH`` or a ``redis://`` URL, as for the terminal
            playground; a restart resumes conversations on a file or Redis.
        names: the simulated users' first names; each gets a private chat, and all of them
            share one group.
        first_user_id: the first user's id (the next ones follow it).
        send_start: send ``/start`` in each private chat when the playground starts.
        settle_timeout: seconds an action waits for the bot to be idle again.
    """

    def __init__(
        self,
        target: Target,
        *,
        storage: str = "memory",
        names: tuple[str, ...] = ("Alice", "Bob"),
        first_user_id: int = 1001,
        send_start: bool = True,
        settle_timeout: float = 5.0,
    ) -> None:
        self.target = target
        self.storage_spec = storage
        self.send_start = send_start
        self.version = 0
        #: tells one run of the server from the next: a page open across a restart of the
        #: command (versions start again from 0) reloads instead of ignoring "older" states
        self.instance = secrets.token_hex(8)
        self.restarts = 0
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()  # one user action (or restart) at a time, in arrival order
        self._restarting = False
        self._closing = False
        bot = Bot(_TOKEN, session=_NotifyingSession(self.notify))
        self.sim = BotSimulator(self._build, bot=bot, settle_timeout=settle_timeout)
        users = [
            self.sim.user(id=first_user_id + number, first_name=name)
            for number, name in enumerate(names)
        ]
        self.panes: dict[str, _Pane] = {}
        for user in users:
            key = user.first_name.lower()
            chat = self.sim.private_chat(user)
            self.panes[key] = _Pane(key, f"{user.first_name} (private)", chat, [user])
        if len(users) > 1:
            title = ", ".join(u.first_name for u in users)
            group = self.sim.group(title=title)
            self.panes["group"] = _Pane("group", f"Group: {title}", group, list(users))
        self.wizards = _wizards_of(target)
        self._charts = {wizard.wizard_id: _chart(wizard) for wizard in self.wizards.values()}

    # --- the bot -------------------------------------------------------------------------------

    def _build(self) -> Dispatcher:
        storage = make_storage(self.storage_spec)
        if self.target.build is not None:
            built: Dispatcher = self.target.build(storage)
            return built
        assert self.target.wizard is not None  # load_target gives a build or a wizard
        dp = Dispatcher()
        self.target.wizard.setup(dp, entry=Command("start"), storage=storage)
        return dp

    @property
    def persistent(self) -> bool:
        """Whether conversations survive `restart` (a file or Redis storage)."""
        return self.storage_spec != "memory"

    def notify(self) -> None:
        """Tell the event streams that something changed (called on every Bot API call)."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Start the bot (its startup hooks), then send ``/start`` in each private chat."""
        await self.sim.start()
        if self.send_start:
            for pane in self.panes.values():
                if pane.chat.type == "private":
                    await self.send(pane.key, pane.members[0].id, "/start")

    async def aclose(self) -> None:
        """End the event streams and the simulation (shutdown hooks, storages)."""
        self._closing = True
        self.notify()
        await self.sim.aclose()

    # --- actions -------------------------------------------------------------------------------

    def conversation(self, chat: str, user_id: int) -> Conversation:
        """User ``user_id`` in the page's chat ``chat`` (``alice``, ``bob``, ``group``).

        Raises:
            BadRequest: no such chat, or the user is not in it.
        """
        pane = self.panes.get(chat)
        if pane is None:
            raise BadRequest(f"no chat {chat!r} here; the chats are {sorted(self.panes)}")
        user = next((u for u in pane.members if u.id == user_id), None)
        if user is None:
            members = [u.id for u in pane.members]
            raise BadRequest(f"user {user_id!r} is not in chat {chat!r} (members: {members})")
        return self.sim.chat(user, pane.chat)

    async def send(self, chat: str, user_id: int, text: str) -> None:
        """Send ``text`` as the user in the chat, and wait until the bot is idle."""
        if not text.strip():
            raise BadRequest("an empty message; type something")
        talk = self.conversation(chat, user_id)
        await self._act(lambda: talk.send(text))

    async def click(self, chat: str, user_id: int, message_id: int, text: str) -> None:
        """Press inline button ``text`` on the bot's message ``message_id``."""
        talk = self.conversation(chat, user_id)
        record = self.sim.session.chat_log(talk.chat).records.get(message_id)
        if record is None or not record.from_bot or record.find_button(text) is None:
            raise BadRequest(f"message {message_id} in chat {chat!r} has no button [{text}]")
        await self._act(lambda: talk.click(text, message=record))

    async def press(self, chat: str, user_id: int, text: str) -> None:
        """Press the reply keyboard button ``text`` shown in the chat."""
        talk = self.conversation(chat, user_id)
        if not any(text in row for row in talk.keyboard or []):
            raise BadRequest(f"no reply keyboard button ({text}) in chat {chat!r}")
        if talk.chat.type != "private" and _asks_the_app(talk, text):
            raise BadRequest(
                f"({text}) asks the user's app to share something, and Telegram's request "
                "buttons work in private chats only: in a group the app cannot press it"
            )
        await self._act(lambda: talk.press(text))

    async def restart(self) -> None:
        """Simulate a restart of the bot's process
        ([`BotSimulator.restart`][aiostep.testing.BotSimulator.restart]).

        On a file or Redis storage the conversations go on where they were; on memory they
        are gone. Each chat gets a line saying which.
        """
        async with self._lock:
            self._restarting = True
            try:
                await self.sim.restart()
            finally:
                self._restarting = False
            self.restarts += 1
            note = (
                "The bot restarted: the conversation goes on from the storage"
                if self.persistent
                else "The bot restarted: memory storage, so every conversation is gone"
            )
            for pane in self.panes.values():
                count = len(self.sim.session.chat_log(pane.chat).records)
                pane.notes.append((count, note))
            self.notify()

    async def _act(self, action: Callable[[], Awaitable[_T]]) -> _T:
        async with self._lock:
            try:
                # a closed tab must not cancel an update half handled
                return await asyncio.shield(asyncio.ensure_future(action()))
            finally:
                self.notify()  # the user's own message, even if the bot said nothing

    # --- the snapshot the page draws -----------------------------------------------------------

    def storage(self) -> BaseStorage | None:
        """The storage of the current Dispatcher's aiostep ``Listen`` (``None`` if it has none)."""
        try:
            dp = self.sim.dispatcher
        except RuntimeError:
            return None
        for middleware in dp.observers["message"].outer_middleware:
            if isinstance(middleware, Listen):
                return middleware.storage
        return None

    async def _record(self, chat_id: int, user_id: int) -> StateContext | None:
        storage = self.storage()
        if storage is None or self._restarting:
            return None
        for who in (user_id, ANYONE):  # a chat-wide wizard keeps one record per chat
            key = storage_key(ConversationKey(chat_id, who, None, self.sim.bot.id))
            try:
                record = await storage.read(key)
            except Exception:  # a storage closed by a restart under way, Redis gone...
                logger.warning("web playground: cannot read %s", key, exc_info=True)
                return None
            if record is not None and record.current_state is not None:
                return record
        return None

    async def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data."""
        version = self.version
        panes = []
        states: dict[str, Any] = {}
        for pane in self.panes.values():
            log = self.sim.session.chat_log(pane.chat)
            records = list(log.records.values())
            items: list[dict[str, Any]] = []
            notes = sorted(pane.notes)
            for index, record in enumerate(records):
                items.extend({"note": text} for at, text in notes if at == index)
                items.append(_message(record))
            items.extend({"note": text} for at, text in notes if at >= len(records))
            talk = self.sim.chat(pane.members[0], pane.chat)
            panes.append(
                {
                    "key": pane.key,
                    "title": pane.title,
                    "type": pane.chat.type,
                    "chat_id": pane.chat.id,
                    "members": [{"id": u.id, "name": u.first_name} for u in pane.members],
                    "items": items,
                    "keyboard": talk.keyboard,
                    "toasts": [
                        {"text": a.text, "alert": a.show_alert} for a in log.answers if a.text
                    ],
                }
            )
            for user in pane.members:
                stored = await self._record(pane.chat.id, user.id)
                states[f"{pane.key}:{user.id}"] = _state(stored)
        return {
            "version": version,
            "instance": self.instance,
            "bot": self.sim.session.bot_name,
            "storage": self.storage_spec,
            "persistent": self.persistent,
            "restarts": self.restarts,
            "panes": panes,
            "states": states,
            "wizards": self._charts,
            "default_wizard": next(iter(self._charts), None),
        }

    # --- HTTP ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application: the page, the JSON API and the event stream."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/send", self._post_send)
        app.router.add_post("/api/click", self._post_click)
        app.router.add_post("/api/press", self._post_press)
        app.router.add_post("/api/restart", self._post_restart)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing = True
        self.notify()  # event streams return, so the server need not wait for them

    async def _page(self, request: web.Request) -> web.Response:
        page = resources.files("aiostep_dialogs").joinpath("web/index.html").read_text("utf-8")
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(await self.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent = -1
        try:
            while not self._closing:
                if sent == self.version:
                    changed = self._changed
                    try:
                        await asyncio.wait_for(changed.wait(), _PING_EVERY)
                    except asyncio.TimeoutError:
                        await response.write(b": ping\n\n")
                    continue
                sent = self.version
                body = json.dumps(await self.snapshot())
                await response.write(f"event: state\ndata: {body}\n\n".encode())
        except (ConnectionResetError, RuntimeError):
            pass  # the tab was closed (aiohttp raises either, by version)
        return response

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            # a page of another site cannot send JSON here without the browser asking first
            raise web.HTTPUnsupportedMediaType(text="send JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object")
        return body

    async def _answer(self, action: Awaitable[None]) -> web.Response:
        try:
            await action
        except BadRequest as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        except Exception as exc:  # the bot's own error: show it on the page, keep serving
            logger.exception("web playground: the bot failed")
            error = f"{type(exc).__name__}: {exc}"
            snapshot = await self.snapshot()
            return web.json_response({"ok": False, "error": error, "state": snapshot}, status=500)
        return web.json_response({"ok": True, "state": await self.snapshot()})

    async def _post_send(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._answer(
            self.send(
                _field(body, "chat", str), _field(body, "user", int), _field(body, "text", str)
            )
        )

    async def _post_click(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._answer(
            self.click(
                _field(body, "chat", str),
                _field(body, "user", int),
                _field(body, "message_id", int),
                _field(body, "text", str),
            )
        )

    async def _post_press(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._answer(
            self.press(
                _field(body, "chat", str), _field(body, "user", int), _field(body, "text", str)
            )
        )

    async def _post_restart(self, request: web.Request) -> web.Response:
        await self._body(request)  # JSON only, like every action (see _body)
        return await self._answer(self.restart())


def _asks_the_app(talk: Conversation, text: str) -> bool:
    """Whether the reply keyboard button ``text`` shown to ``talk`` is a request button."""
    for record in reversed(talk.messages):
        if isinstance(record.markup, ReplyKeyboardMarkup):
            buttons = [b for row in record.markup.keyboard for b in row if b.text == text]
            button = buttons[0] if buttons else None
            return button is not None and any(
                (button.request_contact, button.request_location, button.request_poll,
                 button.request_users, button.request_chat)
            )  # fmt: skip
        if isinstance(record.markup, ReplyKeyboardRemove):
            return False
    return False


def _field(body: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        wanted = {int: "a whole number", str: "a string"}.get(kind, kind.__name__)
        raise web.HTTPBadRequest(text=f"{name!r} must be {wanted}, got {value!r}")
    return value


def _message(record: MessageRecord) -> dict[str, Any]:
    message = record.message
    sender = message.from_user
    body = message.html_text if record.text is not None else ""
    if record.kind != "text":
        body = f"<i>[{record.kind}]</i> {body}".rstrip()
    return {
        "id": record.message_id,
        "from_bot": record.from_bot,
        "sender": sender.first_name if sender is not None else "",
        "sender_id": sender.id if sender is not None else None,
        "html": body,
        "time": message.date.strftime("%H:%M"),
        "edited": record.edited,
        "deleted": record.deleted,
        "buttons": [
            [
                {
                    "text": button.text,
                    "url": button.url,
                    "callback": button.callback_data is not None,
                }
                for button in row
            ]
            for row in record.inline_keyboard
        ],
    }


def _state(record: StateContext | None) -> dict[str, Any]:
    if record is None or record.current_state is None:
        return {"state": None, "wizard": None, "data": {}}
    return {
        "state": record.current_state.rpartition(":")[2],
        "wizard": stored_wizard_id(record),
        "data": record.data,
    }


def _wizards_of(target: Target) -> dict[str, type[Wizard]]:
    """The wizards the target's module declares (the named one first)."""
    found: dict[str, type[Wizard]] = {}
    if target.wizard is not None:
        found[target.wizard.wizard_id] = target.wizard
    for value in vars(target.module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Wizard)
            and value.__module__ == target.module.__name__
            and value._steps
        ):
            found.setdefault(value.wizard_id, value)
    return found


def _chart(wizard: type[Wizard]) -> dict[str, Any]:
    source = wizard.to_mermaid()
    return {"title": wizard.__qualname__, "mermaid": source, **parse_flowchart(source).to_json()}


async def serve(
    playground: WebPlayground, *, host: str = "127.0.0.1", port: int = 0
) -> web.AppRunner:
    """Start ``playground`` and serve its page on ``host:port`` (0: a free port).

    Returns the running ``AppRunner``; its ``addresses`` name the port taken.
    """
    await playground.start()
    runner = web.AppRunner(playground.app(), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


async def _run(playground: WebPlayground, host: str, port: int, out: TextIO) -> None:
    runner = await serve(playground, host=host, port=port)
    try:
        bound = runner.addresses[0]
        out.write(f"Web playground: http://{host}:{bound[1]}/  (Ctrl-C stops it)\n")
        out.flush()
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            # `kill` stops it as cleanly as Ctrl-C (which cancels this task)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        await playground.aclose()


def run_web_playground(
    target: str,
    *,
    storage: str = "memory",
    port: int = 0,
    host: str = "127.0.0.1",
    user_id: int = 1001,
    send_start: bool = True,
    stdout: TextIO | None = None,
) -> int:
    """Load ``target`` and serve the web playground until Ctrl-C; returns the exit status.

    The URL (with the port taken, when ``port`` is 0) is printed to ``stdout`` first.
    """
    loaded = load_target(target)
    if loaded.build is None and loaded.wizard is None:
        # a Dispatcher made at import time: the page's restart button needs to build a new one
        raise SystemExit(
            f"{loaded.name}: the web playground needs a build(storage=None) -> Dispatcher "
            "function or a wizard; play a module-level Dispatcher in the terminal"
        )
    out = stdout or sys.stdout

    async def main() -> None:
        playground = WebPlayground(
            loaded, storage=storage, first_user_id=user_id, send_start=send_start
        )
        await _run(playground, host, port, out)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
