"""Regenerate docs/assets/web-playground.png: the web playground in headless Chromium.

    python docs/screenshot.py [--out docs/assets/web-playground.png]

Needs Chromium and chromedriver (Debian: ``apt-get install chromium chromium-driver``) and the
``selenium`` package (the ``dev`` extra). It runs ``python -m aiostep_dialogs play --web
examples/signup.py`` and plays a short scene in the page itself, by typing and clicking.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
#: what running Chromium as root in a container needs, and no trip to the network
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def start_playground(*args: str, timeout: float = 120.0) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m aiostep_dialogs play --web ARGS``; return the process and its URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "aiostep_dialogs", "play", "--web", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"http://\S+/", line)
        if found:
            # keep reading what it prints, or a full pipe would block the server
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, found.group(0)
    process.kill()
    raise RuntimeError("the web playground printed no URL:\n" + "".join(seen))


def chromium(width: int = 1500, height: int = 900) -> tuple[Any, str]:
    """A headless Chromium driven by selenium, on a fresh profile; returns (driver, profile)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="aiostep-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    return driver, profile


def play_scene(driver: Any, url: str) -> None:
    """Type and click through a short scene that shows every part of the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)

    def bubble(chat: str, text: str) -> None:
        wait.until(
            lambda d: any(
                text in b.text
                for b in d.find_elements(By.CSS_SELECTOR, f'.pane[data-chat="{chat}"] .bubble')
            )
        )

    def say(chat: str, text: str, then: str) -> None:
        box = driver.find_element(By.CSS_SELECTOR, f'.pane[data-chat="{chat}"] .composer input')
        box.send_keys(text + "\n")
        bubble(chat, then)

    driver.get(url)
    bubble("alice", "What is your name?")
    say("bob", "B", "at least 2")
    who = driver.find_element(By.CSS_SELECTOR, '.pane[data-chat="group"] select')
    who.find_element(By.CSS_SELECTOR, 'option[value="1002"]').click()  # Bob types in the group
    say("group", "/signup", "What is your name?")
    driver.find_element(By.CSS_SELECTOR, '.pane[data-chat="alice"] .pane-head').click()
    say("alice", "Alice", "How old are you?")
    say("alice", "30", "Alice, 30. Correct?")
    current = '#graph .node.current[data-id="CONFIRM"]'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, current))


def main() -> int:
    """Play the scene and save the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "assets" / "web-playground.png"))
    args = parser.parse_args()
    process, url = start_playground("examples/signup.py")
    driver = profile = None
    try:
        driver, profile = chromium()
        play_scene(driver, url)
        time.sleep(0.5)  # let the highlight's pulse and the scroll settle
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.out)
    finally:
        if driver is not None:
            driver.quit()
        if profile is not None:
            shutil.rmtree(profile, ignore_errors=True)
        process.terminate()
        process.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
