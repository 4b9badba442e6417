"""A small Language Server Protocol client for the tests: JSON-RPC over a child's stdio.

Drives ``nnspec lsp`` and yaml-language-server the way an editor does: initialize, didOpen,
didChange, then requests (hover, completion, definition) and the diagnostics the server
publishes.  Requests the server sends back (workspace/configuration, registerCapability, ...)
are answered from ``settings`` so that servers which ask for their configuration get it.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class LspClient:
    def __init__(self, command: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: str | Path | None = None,
                 settings: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.proc = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=cwd)
        self.settings = settings or (lambda item: None)
        self.next_id = 0
        self.responses: dict[int, Any] = {}
        self.notifications: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Condition()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    # -- wire ----------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(out.read(length))
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # a request from the server
            self._send({"id": message["id"], "result": self._answer(message)})
        elif "method" in message:
            self.notifications.put(message)
        else:
            with self.lock:
                self.responses[message["id"]] = message
                self.lock.notify_all()

    def _answer(self, request: dict[str, Any]) -> Any:
        if request["method"] == "workspace/configuration":
            return [self.settings(item) for item in request["params"]["items"]]
        return None

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    # -- API -----------------------------------------------------------------------------
    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        self.next_id += 1
        ident = self.next_id
        self._send({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        with self.lock:
            while ident not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no answer to {method}: {self.stderr_text()}")
                self.lock.wait(min(left, 0.5))
            message = self.responses.pop(ident)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait_for(self, method: str, accept: Callable[[Any], bool] = lambda p: True,
                 timeout: float = 30) -> Any:
        """The params of the next notification ``method`` that ``accept`` takes."""
        for message in self.seen:
            if message["method"] == method and accept(message["params"]):
                self.seen.remove(message)
                return message["params"]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} notification: {self.stderr_text()}")
            try:
                message = self.notifications.get(timeout=left)
            except queue.Empty:
                continue
            if message["method"] == method and accept(message["params"]):
                return message["params"]
            self.seen.append(message)

    def initialize(self, root: Path, options: Any = None) -> Any:
        result = self.request("initialize", {
            "processId": None, "rootUri": root.as_uri(), "initializationOptions": options,
            "capabilities": {"textDocument": {
                "hover": {"contentFormat": ["markdown", "plaintext"]},
                "completion": {"completionItem": {"snippetSupport": True,
                                                  "documentationFormat": ["markdown"]}},
                "publishDiagnostics": {"relatedInformation": False},
                "synchronization": {"didSave": True}},
                "workspace": {"configuration": True}},
            "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
        }, timeout=60)
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str, language: str = "yaml") -> str:
        uri = path.resolve().as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": language, "version": 1, "text": text}})
        return uri

    def change(self, uri: str, text: str, version: int) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": [{"text": text}]})

    def diagnostics(self, uri: str, accept: Callable[[list[Any]], bool] = lambda d: True,
                    timeout: float = 30) -> list[dict[str, Any]]:
        params = self.wait_for("textDocument/publishDiagnostics",
                               lambda p: p["uri"] == uri and accept(p["diagnostics"]), timeout)
        return list(params["diagnostics"])

    def at(self, method: str, uri: str, line: int, character: int, **extra: Any) -> Any:
        return self.request(method, {"textDocument": {"uri": uri},
                                     "position": {"line": line, "character": character},
                                     **extra})

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=5)
            self.notify("exit", None)
            self.proc.wait(timeout=5)
        except (TimeoutError, OSError, RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()

    def stderr_text(self) -> str:
        return b"".join(self.stderr).decode(errors="replace")[-2000:]


def position_of(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """(line, character) of ``needle`` in ``text``, plus ``offset`` characters, 0-based."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return line, index - (text.rfind("\n", 0, index) + 1)
