"""A local stand-in for an OpenAI-compatible chat-completions server (for the tests of its clients)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeChatServer:
    """Answers POST /v1/chat/completions with ``content``. ``statuses`` are served first (then 200); a request
    whose Authorization header is ``reject_auth`` gets 401. ``requests`` records path, auth and body."""

    def __init__(self, content, statuses=(), reject_auth=None):
        self.requests = []
        self.statuses = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization")
                outer.requests.append({"path": self.path, "auth": auth, "body": body})
                status = 401 if reject_auth is not None and auth == reject_auth else (
                    outer.statuses.pop(0) if outer.statuses else 200)
                payload = ({"id": "x", "object": "chat.completion",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                         "finish_reason": "stop"}]}
                           if status == 200 else {"error": {"message": "nope"}})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
