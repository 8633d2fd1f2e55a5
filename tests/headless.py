"""Open a page in headless Chromium over the DevTools protocol (``--remote-debugging-pipe``: no
port, no extra package) and record its console errors, exceptions and network requests.

Chromium comes from Debian's package (``apt-get install -y chromium``); :func:`find_chromium`
returns None where it is absent and the tests skip. Host names never resolve
(``--host-resolver-rules``), so even a page that tried would send nothing off the machine; the
attempt is still seen as a ``Network.requestWillBeSent`` event.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "chrome-extension:")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def find_chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    value: Any = None  # result of the probe expression

    @property
    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int):
        self.proc, self.w, self.r = proc, write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params=None, session=None, timeout: float = 60.0) -> dict:
        want = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, name: str, timeout: float = 60.0) -> dict:
        for ev in self.events:
            if ev["method"] == name:
                return ev
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == name:
                    return msg

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                msg = self._read_one(deadline)
                if "method" in msg:
                    self.events.append(msg)
        except TimeoutError:
            pass


def open_page(
    url: str,
    *,
    probe: str = "null",
    settle: float = 1.0,
    chromium: str | None = None,
    width: int | None = None,
    height: int = 900,
    screenshot: Path | None = None,
) -> PageResult:
    """Load ``url``, wait for its load event (+ ``settle`` s), evaluate ``probe`` (a JS
    expression, JSON-serialisable result) and return what the page logged and requested.

    ``width`` (CSS px): lay the page out in a ``width`` x ``height`` viewport (a laptop is about
    1280 x 800) instead of the headless default. ``screenshot``: also write a PNG of the whole
    page, beyond the viewport (``Page.captureScreenshot`` with ``captureBeyondViewport``)."""
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="binsal-chromium-")

    def child_fds() -> None:  # chromium expects the pipe on fds 3 (in) and 4 (out)
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)  # a is 3 or 4 only where that is free
        os.dup2(a, 3)
        os.dup2(b, 4)
        for fd in (3, 4):  # dup2 onto itself (a == 3) leaves os.dup's close-on-exec flag
            os.set_inheritable(fd, True)

    proc = subprocess.Popen(
        [exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=child_fds,
        # not pass_fds=(3, 4): that fails (EBADF) where the parent has no fd 3 or 4 open (after
        # matplotlib closed its font files, say); Python opens its own fds non-inheritable
        close_fds=False,
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(proc, to_chrome_w, from_chrome_r)
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.call(f"{domain}.enable", session=sid)
        if width is not None:
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
            pipe.call("Emulation.setDeviceMetricsOverride", metrics, session=sid)
        pipe.events.clear()
        pipe.call("Page.navigate", {"url": url}, session=sid)
        while True:
            ev = pipe.wait_event("Page.loadEventFired", timeout=120)
            if ev.get("sessionId") == sid:
                break
            pipe.events.remove(ev)
        pipe.drain(settle)
        value = pipe.call(
            "Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=sid
        )["result"].get("value")
        if screenshot is not None:
            capture_page(pipe, sid, Path(screenshot))
        pipe.drain(0.2)
    finally:
        try:
            pipe.call("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
    out = PageResult(value=value)
    for ev in pipe.events:
        p = ev.get("params", {})
        m = ev["method"]
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.console_errors.append(" ".join(str(a.get("value", "")) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            out.exceptions.append(json.dumps(p.get("exceptionDetails", {}))[:500])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.console_errors.append(p["entry"].get("text", ""))
        elif m == "Network.requestWillBeSent":
            out.requests.append(p.get("request", {}).get("url", ""))
    return out


def capture_page(pipe: _Pipe, session: str, path: Path) -> Path:
    """Write a PNG of the whole page (its full scroll height, at the current viewport width)."""
    size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = pipe.call(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": clip},
        session=session,
        timeout=180,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def file_url(path: Path) -> str:
    return Path(path).resolve().as_uri()
