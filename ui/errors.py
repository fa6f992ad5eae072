"""What the page is told when something is refused, and what the server log keeps of it.

Every message shown to a visitor goes through :func:`public`, which replaces any absolute path with its last part
(an upload's temporary folder or a checkpoint's location is no business of the page). A refusal is logged as one
line (``refused <where>: <message>``), never as a traceback: a visitor's empty message is not a server fault.
"""
from __future__ import annotations

import logging
import re

log = logging.getLogger("a2llm.app")

# An absolute POSIX path (two or more parts), or a Windows one, not glued to a word before it ("TTFT/TTFA" stays).
_PATH = re.compile(r"(?<![\w.~])(?:[A-Za-z]:)?(?:[/\\][^\s/\\:'\"`,;()<>]+){2,}")


def public(message: object) -> str:
    """``message`` as a visitor may see it: absolute paths shortened to their file or folder name."""
    return _PATH.sub(lambda m: re.split(r"[/\\]", m.group(0))[-1], str(message)).strip()


def note(where: str, message: object) -> str:
    """Log a refusal in one line; returns the public message."""
    text = public(message)
    log.warning("refused %s: %s", where, text.replace("\n", " "))
    return text


def refuse(where: str, message: object):
    """A ``gr.Error`` for an API caller (logged in one line, no traceback, no server path)."""
    import gradio as gr

    return gr.Error(note(where, message), print_exception=False)


def status(message: str = "", kind: str = "error") -> str:
    """The message line's Markdown: ``kind`` "error" (⚠️), "busy" (⏳), "info" or "" (nothing shown)."""
    if not message:
        return ""
    icon = {"error": "⚠️ ", "busy": "⏳ ", "info": ""}[kind]
    return f"{icon}{message}"
