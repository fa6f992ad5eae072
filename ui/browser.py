"""Headless Chromium on the running app, for the browser test and the README screenshots (not used by the app).

    with AppBrowser("http://127.0.0.1:7860/") as b:
        b.tab("Conversation")
        b.type_turn("How was the concert?")
        b.wait_avatar_playing()
        b.screenshot("docs/screenshots/conversation.png")

Needs Debian's ``chromium`` and ``chromium-driver`` (scripts/setup.sh installs them) and the selenium package.
Chromium starts with the flags that work on a machine without GPU, sandbox or network; Selenium Manager is never
asked to download a driver (the system one is named explicitly).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--mute-audio")


def find_chromium() -> tuple[str, str]:
    """(chromium binary, chromedriver) or a clear error naming the Debian packages."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        raise FileNotFoundError("headless Chromium needs the Debian packages chromium and chromium-driver "
                                "(apt-get install chromium chromium-driver, or bash scripts/setup.sh)")
    return browser, driver


class AppBrowser:
    """One headless Chromium window on the app (a fresh, empty profile each time)."""

    def __init__(self, url: str, width: int = 1400, height: int = 1000):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        browser, driver = find_chromium()
        self.profile = tempfile.mkdtemp(prefix="a2llm-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            opts.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
        self.driver.get(url)
        self.wait_for(lambda: self.js("return !!document.querySelector('button[role=tab]')"), 60, "the page")

    def __enter__(self) -> "AppBrowser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # --- helpers ----------------------------------------------------------------------------------------------
    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait_for(self, condition, timeout: float, what: str, poll: float = 0.5):
        """Poll ``condition()`` until it is truthy; a TimeoutError naming ``what`` after ``timeout`` s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}")

    def tab(self, name: str) -> None:
        """Open a top-level tab by its label."""
        self.js("""for (const b of document.querySelectorAll('button[role=tab]'))
                     if (b.innerText.trim() === arguments[0]) { b.click(); return; }""", name)
        time.sleep(0.5)

    def click(self, label: str) -> None:
        """Click the visible button whose text is ``label``."""
        ok = self.js("""for (const b of document.querySelectorAll('button'))
                          if (b.innerText.trim() === arguments[0] && b.offsetParent !== null) { b.click(); return true; }
                        return false;""", label)
        if not ok:
            raise LookupError(f"no visible button {label!r}")

    def fill(self, placeholder_or_label: str, text: str) -> None:
        """Type into the visible textbox with this placeholder (or label)."""
        from selenium.webdriver.common.by import By

        for el in self.driver.find_elements(By.CSS_SELECTOR, "textarea, input[type=text]"):
            label = self.js("const l = arguments[0].closest('label'); return l ? l.innerText : '';", el)
            if el.is_displayed() and placeholder_or_label in (el.get_attribute("placeholder") or "", label.strip()):
                el.clear()
                el.send_keys(text)
                return
        raise LookupError(f"no visible textbox {placeholder_or_label!r}")

    def set_number(self, label: str, value: str) -> None:
        """Set the number box of the visible slider labelled ``label`` (as a person typing it would)."""
        from selenium.webdriver.common.keys import Keys

        box = self.js("""for (const el of document.querySelectorAll('input[type=number]')) {
                           const block = el.closest('.block');
                           if (el.offsetParent && block && block.innerText.split('\\n')[0].trim() === arguments[0])
                             return el; }
                         return null;""", label)
        if box is None:
            raise LookupError(f"no visible slider {label!r}")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(value, Keys.TAB)

    def type_turn(self, text: str) -> None:
        self.fill("How was the concert?", text)
        self.click("Send")

    def paste_turn(self, text: str) -> None:
        """Put ``text`` into the message box at once (as a paste would: send_keys of 20,000 characters takes
        minutes) and press Send."""
        box = self.js("""for (const el of document.querySelectorAll('textarea'))
                           if (el.offsetParent && el.placeholder === 'How was the concert?') return el;
                         return null;""")
        if box is None:
            raise LookupError("no visible message box")
        self.js("""const el = arguments[0], text = arguments[1];
                   Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set.call(el, text);
                   el.dispatchEvent(new Event('input', {bubbles: true}));""", box, text)
        time.sleep(0.3)
        self.click("Send")

    def status(self, elem_id: str = "a2llm-status") -> str:
        """The text of a message line (the Conversation tab's by default)."""
        return self.js("const e = document.getElementById(arguments[0]); return e ? e.innerText.trim() : '';",
                       elem_id)

    def visible(self, elem_id: str) -> bool:
        """Whether the element with this id is displayed (it and its parents, with a size)."""
        return bool(self.js("""const e = document.getElementById(arguments[0]);
                               if (!e) return false;
                               const r = e.getBoundingClientRect();
                               return e.offsetParent !== null && r.width > 0 && r.height > 0;""", elem_id))

    def error_badges(self) -> int:
        """How many components show Gradio's error state (the red "Error" badge over a panel)."""
        return int(self.js("""return Array.from(document.querySelectorAll('.wrap, .error, span'))
                                .filter(e => e.offsetParent && e.innerText && e.innerText.trim() === 'Error')
                                .length;"""))

    def videos(self) -> list[dict]:
        """Every visible <video>: its source, position, paused flag, readiness and error code."""
        return self.js("""return Array.from(document.querySelectorAll('video')).filter(v => v.offsetParent !== null)
                          .map(v => ({src: v.currentSrc, time: v.currentTime, paused: v.paused,
                                      ready: v.readyState, error: v.error ? v.error.code : null}));""")

    def wait_video_playing(self, timeout: float = 180, seconds: float = 0.5) -> dict:
        """Until a visible video has played ``seconds`` of its media; returns its state."""
        def playing():
            return next((v for v in self.videos() if v["time"] >= seconds and v["error"] is None), None)
        return self.wait_for(playing, timeout, f"a video to play {seconds} s")

    def avatar(self) -> dict | None:
        """The streamed reply's <video> (``#a2llm-avatar``; not the idle loop): source, position, state."""
        return self.js("""const v = document.querySelector('#a2llm-avatar video');
                          return v && v.offsetParent !== null ? {src: v.currentSrc, time: v.currentTime,
                                 paused: v.paused, ready: v.readyState, error: v.error ? v.error.code : null}
                                 : null;""")

    def wait_avatar_playing(self, timeout: float = 180, seconds: float = 0.5, other_than: str | None = None) -> dict:
        """Until the streamed reply (a source other than ``other_than``: the reply before) has played ``seconds``."""
        def playing():
            v = self.avatar()
            ok = v and v["src"] and v["src"] != other_than and v["time"] >= seconds and v["error"] is None
            return v if ok else None
        return self.wait_for(playing, timeout, f"the avatar's reply to play {seconds} s")

    def text(self) -> str:
        return self.js("return document.body.innerText")

    def screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path
