"""The app server the UI tests share: one ``python app.py`` on a free port of 127.0.0.1 for the whole session."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(str):
    """The app's URL, with its log file and its studies folder (a fresh one: tests never touch outputs/studies)."""

    log: Path
    studies: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("app")
    log = folder / "app.log"                               # a file, not a pipe: nobody reads a pipe, it fills up
    out = log.open("w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--studies", str(folder / "studies")],
                            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = Server(f"http://127.0.0.1:{port}/")
    url.log, url.studies = log, folder / "studies"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("app did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    out.close()
