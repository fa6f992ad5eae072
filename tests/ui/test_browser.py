"""The app in headless Chromium: the page loads, a typed turn is answered and the avatar's video plays."""
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


def test_typed_turn_streams_a_video_that_plays(browser):
    assert {"Conversation", "Compare", "Study", "Head"} <= set(browser.text().split("\n"))
    browser.tab("Conversation")
    browser.type_turn("How was the concert?")
    video = browser.wait_video_playing(timeout=240, seconds=0.5)
    assert video["src"] and video["error"] is None
    # the reply's text reaches the dialogue and the metrics panel fills in at the end of the turn
    browser.wait_for(lambda: "TTFA" in browser.text() and "ms ·" in browser.text(), 240, "the turn's metrics")
    assert "How was the concert?" in browser.text()
