"""The app in headless Chromium, as a visitor meets it: the welcome, the idle avatar and the Head tab's picture at
load; a typed turn whose streamed video plays; a 20,000-character message refused in the message line with every
panel still there and no error badge, and the next turn answered."""
import time

import pytest

from ui.browser import AppBrowser, find_chromium


@pytest.fixture(scope="module")
def browser(server):
    try:
        find_chromium()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with AppBrowser(server) as b:
        yield b


def _panels_visible(b) -> bool:
    text = b.text()
    return (b.visible("a2llm-avatar") and "Dialogue" in text and "TTFA" in text and "Send" in text
            and "New dialogue" in text)


def test_the_page_welcomes_a_visitor(browser):
    assert {"Conversation", "Compare", "Study", "Head"} <= set(browser.text().split("\n"))
    browser.tab("Conversation")
    text = browser.text()
    assert "A²-LLM-nano" in text and "the concert" in text and "How was the tour?" in text   # line + examples
    browser.wait_for(lambda: browser.js("const v = document.querySelector('#a2llm-idle video');"
                                        "return v && v.currentTime > 0.2 && !v.paused;"), 60, "the idle avatar")
    assert not browser.visible("a2llm-avatar")                 # the reply's box waits for the first turn
    browser.tab("Head")
    assert browser.js("return [...document.querySelectorAll('img')].some(i => i.offsetParent && "
                      "i.naturalWidth >= 256)")                # rendered at load, not an empty box
    browser.tab("Study")
    assert "How to take part" in browser.text()


def test_a_typed_turn_plays_a_long_message_is_refused_and_the_next_turn_works(browser):
    browser.tab("Conversation")
    browser.type_turn("How was the concert?")
    video = browser.wait_avatar_playing(timeout=240, seconds=0.5)
    assert video["src"] and video["error"] is None
    assert not browser.visible("a2llm-idle")
    # the reply's text reaches the dialogue and the metrics panel fills in at the end of the turn
    browser.wait_for(lambda: "TTFA" in browser.text() and "ms ·" in browser.text(), 240, "the turn's metrics")
    assert "How was the concert?" in browser.text()

    browser.paste_turn("x" * 20000)
    browser.wait_for(lambda: "at most 1,000" in browser.status(), 30, "the refusal in the message line")
    assert "20,000 characters" in browser.status()
    time.sleep(1.0)
    assert _panels_visible(browser) and browser.error_badges() == 0

    browser.paste_turn("")                                     # an empty message: refused the same way
    browser.wait_for(lambda: "Type a message" in browser.status(), 30, "the empty message's refusal")
    assert _panels_visible(browser) and browser.error_badges() == 0

    browser.type_turn("Did you enjoy the party?")
    browser.wait_avatar_playing(timeout=240, seconds=0.5, other_than=video["src"])
    browser.wait_for(lambda: browser.status() == "", 240, "the message line to clear")
    assert "Did you enjoy the party?" in browser.text() and browser.error_badges() == 0
