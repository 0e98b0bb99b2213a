"""Socket Mode in the Slack fake: ``apps.connections.open`` (with the app-level token,
``xapp-…``) answers a ``ws://`` URL; on that WebSocket the fake says ``hello``, then
sends the envelopes a test queues (an interaction, a slash command, an event), and keeps
the acknowledgement the app sends back for each ``envelope_id``, as Slack does."""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import threading
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect


class SocketMode:
    def __init__(self, app_token: str) -> None:
        self.app_token = app_token
        self._outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._acks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.connections = 0

    def open(self, header: str, base_url: str) -> tuple[int, dict[str, Any]]:
        """``apps.connections.open``."""
        if header != f"Bearer {self.app_token}":
            return 200, {"ok": False, "error": "invalid_auth"}
        ws_url = base_url.replace("http://", "ws://") + f"/socket/{secrets.token_hex(6)}"
        return 200, {"ok": True, "url": ws_url}

    def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Queue an envelope (``interactive``, ``slash_commands``, ``events_api``); its id."""
        envelope_id = secrets.token_hex(8)
        self._outbox.put(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    def ack(self, envelope_id: str, within: float = 10.0) -> dict[str, Any]:
        """The app's acknowledgement of an envelope (waits for it)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                if envelope_id in self._acks:
                    return self._acks[envelope_id]
            time.sleep(0.02)
        raise TimeoutError(f"no acknowledgement of {envelope_id}")

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        with self._lock:
            self.connections += 1
        await websocket.send_text(
            json.dumps({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}})
        )
        receiving = asyncio.create_task(self._receive(websocket))
        try:
            while not receiving.done():
                try:
                    envelope = self._outbox.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.02)
                    continue
                await websocket.send_text(json.dumps(envelope))
        finally:
            receiving.cancel()

    async def _receive(self, websocket: WebSocket) -> None:
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                if "envelope_id" in message:
                    with self._lock:
                        self._acks[message["envelope_id"]] = message
        except (WebSocketDisconnect, RuntimeError, ValueError):
            return
