"""The web playground: ``python -m aiostep_dialogs play --web TARGET``.

The API tests drive the aiohttp application with aiohttp's test client (fast); the browser
tests run the command and a real headless Chromium through selenium (``slow``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from aiostep_dialogs import __main__ as cli
from aiostep_dialogs.flowchart import parse_flowchart
from aiostep_dialogs.loading import Target, load_target
from aiostep_dialogs.web_playground import WebPlayground

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SIGNUP = "examples/signup.py"
GADGETS = str(HERE / "gadgets_bot.py")


@asynccontextmanager
async def served(target: str, **options: Any) -> AsyncIterator[tuple[WebPlayground, TestClient]]:
    """A started web playground for ``target`` and a test client of its application."""
    old = Path.cwd()
    os.chdir(ROOT)  # targets are named as a user would, from the project's root
    try:
        loaded: Target = load_target(target)
    finally:
        os.chdir(old)
    playground = WebPlayground(loaded, **options)
    await playground.start()
    client = TestClient(TestServer(playground.app()))
    await client.start_server()
    try:
        yield playground, client
    finally:
        await client.close()
        await playground.aclose()


async def post(client: TestClient, path: str, status: int = 200, **body: Any) -> dict[str, Any]:
    """POST ``body`` as JSON; check the status; return the answer."""
    response = await client.post(path, json=body)
    answer: dict[str, Any] = await response.json()
    assert response.status == status, answer
    return answer


def pane(state: dict[str, Any], key: str) -> dict[str, Any]:
    """The chat ``key`` of a snapshot."""
    return next(p for p in state["panes"] if p["key"] == key)


def bot_texts(state: dict[str, Any], key: str) -> list[str]:
    """The bot's messages in chat ``key``, as HTML, oldest first."""
    return [i["html"] for i in pane(state, key)["items"] if i.get("from_bot")]


def notes(state: dict[str, Any], key: str) -> list[str]:
    """The lines between messages in chat ``key`` (restarts)."""
    return [i["note"] for i in pane(state, key)["items"] if "note" in i]


# --- the page ----------------------------------------------------------------------------------


async def test_the_page_is_one_offline_file_that_follows_the_event_stream() -> None:
    async with served(SIGNUP) as (_, client):
        response = await client.get("/")
        page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert 'new EventSource("/api/events")' in page
    # nothing is fetched from elsewhere: the page works offline and in CI
    assert "<script src" not in page
    assert "<link" not in page


async def test_the_page_shows_two_private_chats_and_their_group() -> None:
    async with served(SIGNUP) as (_, client):
        state = await (await client.get("/api/state")).json()
    assert [p["title"] for p in state["panes"]] == [
        "Alice (private)",
        "Bob (private)",
        "Group: Alice, Bob",
    ]
    assert [m["name"] for m in pane(state, "group")["members"]] == ["Alice", "Bob"]
    # /start was sent in each private chat, not in the group
    assert bot_texts(state, "alice") == ["What is your name?"]
    assert bot_texts(state, "bob") == ["What is your name?"]
    assert bot_texts(state, "group") == []


async def test_each_run_has_its_own_instance_so_an_open_page_reloads() -> None:
    # versions start from 0 in every run: the page tells runs apart by the instance instead
    async with served(SIGNUP) as (_, client):
        first = await (await client.get("/api/state")).json()
        page = await (await client.get("/")).text()
    async with served(SIGNUP) as (_, client):
        second = await (await client.get("/api/state")).json()
    assert first["instance"] != second["instance"]
    assert "snapshot.instance !== state.instance" in page


# --- talking ------------------------------------------------------------------------------------


async def test_typing_and_pressing_a_button_finish_the_signup() -> None:
    async with served(SIGNUP) as (_, client):
        await post(client, "/api/send", chat="alice", user=1001, text="Alice")
        state = (await post(client, "/api/send", chat="alice", user=1001, text="30"))["state"]
        prompt = pane(state, "alice")["items"][-1]
        assert prompt["html"] == "Alice, 30. Correct?"
        assert [[b["text"] for b in row] for row in prompt["buttons"]] == [["Yes", "Start over"]]
        answer = await post(
            client, "/api/click", chat="alice", user=1001, message_id=prompt["id"], text="Yes"
        )
    assert bot_texts(answer["state"], "alice")[-1] == "Welcome, Alice!"
    assert answer["state"]["states"]["alice:1001"]["state"] is None


async def test_the_highlighted_step_is_each_conversations_stored_state() -> None:
    async with served(SIGNUP) as (_, client):
        await post(client, "/api/send", chat="alice", user=1001, text="Alice")
        answer = await post(client, "/api/send", chat="group", user=1002, text="/signup")
    states = answer["state"]["states"]
    assert states["alice:1001"] == {"state": "AGE", "wizard": "signup", "data": {"name": "Alice"}}
    assert states["bob:1002"]["state"] == "NAME"
    # in the group only Bob started the wizard: Alice has no step there
    assert states["group:1002"]["state"] == "NAME"
    assert states["group:1001"]["state"] is None
    chart = answer["state"]["wizards"]["signup"]
    assert {"NAME", "AGE", "CONFIRM"} <= {node["id"] for node in chart["nodes"]}
    assert chart["mermaid"].startswith("flowchart TD")


async def test_an_edit_updates_the_message_in_place_and_the_toast_is_shown() -> None:
    async with served(GADGETS, send_start=False) as (_, client):
        state = (await post(client, "/api/send", chat="bob", user=1002, text="/count"))["state"]
        counter = pane(state, "bob")["items"][-1]
        answer = await post(
            client, "/api/click", chat="bob", user=1002, message_id=counter["id"], text="+1"
        )
    chat = pane(answer["state"], "bob")
    edited = next(i for i in chat["items"] if i.get("id") == counter["id"])
    assert edited["html"] == "Count: 1"
    assert edited["edited"] is True
    assert len(chat["items"]) == 2  # /count and the counter: the edit made no new message
    assert chat["toasts"] == [{"text": "now 1", "alert": False}]


async def test_a_one_message_wizard_keeps_one_bubble_that_is_edited() -> None:
    async with served("docs/snippets/one_message.py", send_start=False) as (_, client):
        state = (await post(client, "/api/send", chat="alice", user=1001, text="/start"))["state"]
        prompt = pane(state, "alice")["items"][-1]
        answer = await post(
            client, "/api/click", chat="alice", user=1001, message_id=prompt["id"], text="Latte"
        )
    bubbles = [i for i in pane(answer["state"], "alice")["items"] if i.get("from_bot")]
    assert [(b["id"], b["html"], b["edited"]) for b in bubbles] == [(prompt["id"], "Milk?", True)]
    assert [[b["text"] for b in row] for row in bubbles[0]["buttons"]] == [["Oat", "Cow"]]


async def test_a_reply_keyboard_button_can_be_pressed() -> None:
    async with served(GADGETS, send_start=False) as (_, client):
        state = (await post(client, "/api/send", chat="alice", user=1001, text="/menu"))["state"]
        assert pane(state, "alice")["keyboard"] == [["Tea", "Coffee"]]
        answer = await post(client, "/api/press", chat="alice", user=1001, text="Tea")
    chat = pane(answer["state"], "alice")
    assert bot_texts(answer["state"], "alice")[-1] == "Tea it is."
    assert chat["keyboard"] is None  # the bot removed it


async def test_a_request_button_in_the_group_is_refused_as_the_app_would() -> None:
    # Telegram's request buttons work in private chats only: the page says so (400), it is
    # not shown as the bot's error (500)
    async with served(GADGETS, send_start=False) as (_, client):
        await post(client, "/api/send", chat="group", user=1001, text="/where")
        answer = await post(
            client, "/api/press", status=400, chat="group", user=1001, text="Send my location"
        )
        assert "private chats only" in answer["error"]
        answer = await post(client, "/api/send", chat="alice", user=1001, text="/where")
        assert pane(answer["state"], "alice")["keyboard"] == [["Send my location"]]


async def test_what_the_bot_sends_while_the_user_is_idle_is_pushed_at_once() -> None:
    async with served(GADGETS, send_start=False) as (_, client):
        events = await client.get("/api/events")
        assert events.headers["Content-Type"] == "text/event-stream"
        await post(client, "/api/send", chat="alice", user=1001, text="/echo")
        # no request from here on: the timeout's message must come down the stream by itself

        async def pushed() -> dict[str, Any]:
            while True:
                line = (await events.content.readline()).decode()
                if line.startswith("data: "):
                    state: dict[str, Any] = json.loads(line[len("data: ") :])
                    if "You took too long." in bot_texts(state, "alice"):
                        return state

        state = await asyncio.wait_for(pushed(), timeout=10)
        events.close()
    assert bot_texts(state, "alice") == ["Say something, quickly.", "You took too long."]


async def test_a_reminder_and_the_timeout_are_pushed_while_the_user_is_idle() -> None:
    async with served(str(HERE / "reminding_bot.py")) as (_, client):
        events = await client.get("/api/events")
        # /start was sent when the playground started; nobody does anything from here on

        async def pushed() -> dict[str, Any]:
            while True:
                line = (await events.content.readline()).decode()
                if line.startswith("data: "):
                    state: dict[str, Any] = json.loads(line[len("data: ") :])
                    if any("Time is up" in text for text in bot_texts(state, "alice")):
                        return state

        state = await asyncio.wait_for(pushed(), timeout=10)
        events.close()
    assert bot_texts(state, "alice") == [
        "What is your name?",
        "Still there?\n\nWhat is your name?",
        "Time is up; let's stop here. You can start again any time.",
    ]


# --- restarts ----------------------------------------------------------------------------------


async def test_a_restart_on_file_storage_keeps_the_conversation(tmp_path: Path) -> None:
    async with served(SIGNUP, storage=f"file:{tmp_path / 'state.jsonl'}") as (_, client):
        await post(client, "/api/send", chat="alice", user=1001, text="Alice")
        state = (await post(client, "/api/restart"))["state"]
        assert state["restarts"] == 1
        assert state["persistent"] is True
        assert notes(state, "alice") == [
            "The bot restarted: the conversation goes on from the storage"
        ]
        assert state["states"]["alice:1001"]["state"] == "AGE"
        answer = await post(client, "/api/send", chat="alice", user=1001, text="30")
    assert bot_texts(answer["state"], "alice")[-1] == "Alice, 30. Correct?"


async def test_a_restart_on_memory_storage_forgets_and_says_so() -> None:
    async with served(SIGNUP) as (_, client):
        await post(client, "/api/send", chat="alice", user=1001, text="Alice")
        state = (await post(client, "/api/restart"))["state"]
        assert state["persistent"] is False
        assert notes(state, "bob") == [
            "The bot restarted: memory storage, so every conversation is gone"
        ]
        assert state["states"]["alice:1001"]["state"] is None
        answer = await post(client, "/api/send", chat="alice", user=1001, text="30")
    assert bot_texts(answer["state"], "alice")[-1] == "How old are you?"  # nothing answered 30


# --- mistakes -----------------------------------------------------------------------------------


async def test_bad_requests_are_refused_with_the_reason() -> None:
    async with served(SIGNUP) as (_, client):
        answer = await post(client, "/api/send", 400, chat="nowhere", user=1001, text="hi")
        assert "no chat 'nowhere'" in answer["error"]
        answer = await post(client, "/api/send", 400, chat="alice", user=1002, text="hi")
        assert "user 1002 is not in chat 'alice'" in answer["error"]
        answer = await post(
            client, "/api/click", 400, chat="alice", user=1001, message_id=2, text="Nope"
        )
        assert "has no button [Nope]" in answer["error"]
        answer = await post(client, "/api/press", 400, chat="alice", user=1001, text="Tea")
        assert "no reply keyboard button (Tea)" in answer["error"]
        response = await client.post("/api/send", json={"chat": "alice", "user": "1001"})
        assert response.status == 400
        assert "'user' must be a whole number, got '1001'" in await response.text()
        # a form from another site cannot act: the API takes JSON only
        response = await client.post("/api/restart", data="chat=alice")
        assert response.status == 415


async def test_a_failing_handler_is_reported_and_the_playground_goes_on() -> None:
    async with served(GADGETS, send_start=False) as (_, client):
        answer = await post(client, "/api/send", 500, chat="alice", user=1001, text="/boom")
        assert answer["error"] == "RuntimeError: boom"
        answer = await post(client, "/api/send", chat="alice", user=1001, text="/count")
    assert bot_texts(answer["state"], "alice") == ["Count: 0"]


# --- the command line and the diagram -----------------------------------------------------------


def test_play_web_passes_port_storage_and_user_to_the_web_playground(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiostep_dialogs.web_playground as web

    seen: dict[str, Any] = {}

    def fake(target: str, **options: Any) -> int:
        seen.update(options, target=target)
        return 0

    monkeypatch.setattr(web, "run_web_playground", fake)
    argv = ["play", "--web", SIGNUP, "--port", "8089", "--storage", "file:s.jsonl", "--no-start"]
    assert cli.main(argv) == 0
    assert seen == {
        "target": SIGNUP,
        "storage": "file:s.jsonl",
        "port": 8089,
        "user_id": 1001,
        "send_start": False,
    }


def test_the_flowchart_is_read_back_from_the_wizards_mermaid() -> None:
    from examples.signup import Signup

    chart = parse_flowchart(Signup.to_mermaid())
    shapes = {node.id: node.shape for node in chart.nodes}
    assert shapes == {
        "start": "terminal",
        "finish": "terminal",
        "NAME": "step",
        "AGE": "step",
        "CONFIRM": "step",
        "back": "note",
        "cancel": "note",
    }
    age = next(node for node in chart.nodes if node.id == "AGE")
    assert (age.title, age.detail) == ("AGE", "How old are you?")
    edges = {(e.src, e.dst, e.label, e.dashed) for e in chart.edges}
    assert ("NAME", "AGE", "", False) in edges
    assert ("CONFIRM", "NAME", "branch", True) in edges


# --- in a real browser --------------------------------------------------------------------------


def _screenshot_tools() -> ModuleType:
    """docs/screenshot.py: how the docs' screenshot starts the playground and Chromium."""
    spec = importlib.util.spec_from_file_location(
        "docs_screenshot", ROOT / "docs" / "screenshot.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium under selenium; missing tools fail the test on CI, else skip it."""
    tools = _screenshot_tools()
    missing = [path for path in (tools.CHROMIUM, tools.CHROMEDRIVER) if not shutil.which(path)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if missing:
        message = f"the browser test needs {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (.ci/run installs them)")
        pytest.skip(message)
    driver, profile = tools.chromium()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def play_web() -> Iterator[Any]:
    """Start ``python -m aiostep_dialogs play --web ARGS`` (stopped after the test)."""
    tools = _screenshot_tools()
    processes = []

    def start(*args: str) -> str:
        process, url = tools.start_playground(*args)
        processes.append(process)
        return str(url)

    yield start
    for process in processes:
        process.terminate()  # SIGTERM: it stops as cleanly as with Ctrl-C
        assert process.wait(timeout=30) == 0


class _Page:
    """The page in the browser, read and used as a person would."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.by = By
        self.wait = WebDriverWait(driver, 30)

    def find(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(self.by.CSS_SELECTOR, css))

    def texts(self, css: str) -> list[str]:
        """The text of each element ``css`` selects, read in one go (the page redraws often,
        so element handles kept across reads go stale)."""
        script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)"
        return list(self.driver.execute_script(script, css))

    def bubbles(self, chat: str) -> list[str]:
        return self.texts(f'.pane[data-chat="{chat}"] .bubble .text')

    def wait_bubble(self, chat: str, text: str) -> None:
        self.wait.until(lambda _: text in self.bubbles(chat), f"no bubble {text!r} in {chat}")

    def type(self, chat: str, text: str) -> None:
        box = self.find(f'.pane[data-chat="{chat}"] .composer input')[0]
        box.send_keys(text + "\n")

    def current_step(self) -> str | None:
        script = "return document.querySelector('#graph .node.current')?.dataset.id ?? null"
        step: str | None = self.driver.execute_script(script)
        return step

    def wait_step(self, step: str | None) -> None:
        self.wait.until(lambda _: self.current_step() == step, f"the step is not {step}")


@pytest.mark.slow
def test_the_page_plays_a_signup_that_survives_a_restart(
    browser: Any, play_web: Any, tmp_path: Path
) -> None:
    url = play_web(SIGNUP, "--storage", f"file:{tmp_path / 'state.jsonl'}")
    browser.get(url)
    page = _Page(browser)
    page.wait_bubble("alice", "What is your name?")
    page.wait_step("NAME")
    assert "file:" in page.find("#storage")[0].text

    page.type("alice", "Alice")
    page.wait_bubble("alice", "How old are you?")
    page.wait_step("AGE")
    page.type("alice", "30")
    page.wait_bubble("alice", "Alice, 30. Correct?")
    page.wait_step("CONFIRM")

    page.find("#restart")[0].click()
    page.wait.until(
        lambda _: any("goes on from the storage" in n for n in page.texts(".note")),
        "no restart note",
    )
    page.wait_step("CONFIRM")  # read again from the file after the restart

    page.find('.pane[data-chat="alice"] button.inline[data-text="Yes"]')[0].click()
    page.wait_bubble("alice", "Welcome, Alice!")
    page.wait_step(None)
    assert page.texts("#current-step") == ["no step pending"]

    # the group: Bob types there, and the flow follows his conversation
    select = page.find('.pane[data-chat="group"] select')[0]
    select.find_element(page.by.CSS_SELECTOR, 'option[value="1002"]').click()
    page.type("group", "/signup")
    page.wait_bubble("group", "What is your name?")
    page.wait_step("NAME")
    assert page.texts("#flow-who")[0].startswith("Bob in Group: Alice, Bob")


@pytest.mark.slow
def test_the_page_shows_edits_toasts_and_messages_sent_while_idle(
    browser: Any, play_web: Any
) -> None:
    browser.get(play_web(GADGETS, "--no-start"))
    page = _Page(browser)
    page.wait.until(lambda _: page.find('.pane[data-chat="bob"] .composer input'))

    page.type("bob", "/count")
    page.wait_bubble("bob", "Count: 0")
    page.find('.pane[data-chat="bob"] button.inline[data-text="+1"]')[0].click()
    page.wait_bubble("bob", "Count: 1")
    assert page.bubbles("bob") == ["/count", "Count: 1"]  # edited in place
    # shown for a moment only: the page counts the toasts it popped up
    toast = '.pane[data-chat="bob"] .toast[data-shown="1"]'
    page.wait.until(lambda _: page.texts(toast) == ["now 1"], "no toast")

    page.type("alice", "/menu")
    page.wait_bubble("alice", "Tea or coffee?")
    page.find('.pane[data-chat="alice"] .reply-kb button[data-text="Coffee"]')[0].click()
    page.wait_bubble("alice", "Coffee it is.")

    page.type("alice", "/echo")
    page.wait_bubble("alice", "You took too long.")  # nobody did anything: pushed by the server
