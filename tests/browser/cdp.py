"""A headless Chromium driven over the Chrome DevTools Protocol (websocket-client), offline.

Debian's ``chromium``, started with its own throw-away profile; no browser is downloaded. The
network is cut three ways: every host name resolves to nothing (``--host-resolver-rules``),
every request would go through a proxy on a closed port, and the page's target runs with
DevTools' network emulation set offline. Every request the page makes, every console message
and every uncaught exception is recorded, so a test can assert that none left the machine and
that none was an error.

Used by the browser tests (``tests/browser``) and by ``scripts/page_screenshots.py``.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
OFFLINE_FLAGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",  # the discard port: nothing listens
    "--proxy-bypass-list=<-loopback>",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
    "--metrics-recording-only", "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
]
# WebGL without a GPU: Chromium's software rasterizer (SwiftShader), which it allows only when asked
RENDER_FLAGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
                "--hide-scrollbars", "--force-device-scale-factor=1"]


def find_chromium() -> str | None:
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class Chromium:
    """``with Chromium() as browser: page = browser.open(url)``; a page records its events."""

    def __init__(self, executable: str | None = None, width: int = 1400, height: int = 1000, timeout: float = 60):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError(f"no Chromium found (looked for {', '.join(EXECUTABLES)})")
        self.size = (width, height)
        self.timeout = timeout
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> "Chromium":
        import websocket

        self._profile = tempfile.mkdtemp(prefix="lossvista-chromium-")
        args = [self.executable, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={self._profile}",
                f"--window-size={self.size[0]},{self.size[1]}", *OFFLINE_FLAGS, *RENDER_FLAGS, "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self._log = open(Path(self._profile) / "stderr.log", "wb")
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BrowserError(f"Chromium did not start: {self.stderr()[-2000:]}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=self.timeout,
                                               suppress_origin=True)
        return self

    def __exit__(self, *exc) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            try:
                self.send("Browser.close")
            except Exception:  # the browser may be gone already
                pass
            ws.close()
        proc = getattr(self, "_proc", None)
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def stderr(self) -> str:
        return (Path(self._profile) / "stderr.log").read_text(errors="replace")

    # -- the protocol ----------------------------------------------------------------------
    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its answer; events meanwhile go to ``self.events``."""
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise BrowserError(f"{method}: no answer within {self.timeout} s")

    def open(self, url: str) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send("Network.emulateNetworkConditions",
                  {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False})
        page.send("Page.navigate", {"url": url})
        page.wait_for(lambda: page.evaluate("document.readyState") == "complete", "the page to load")
        return page


class Page:
    """One tab: commands, JavaScript, screenshots, mouse, and what it logged."""

    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def events(self, *methods: str) -> list[dict]:
        return [e for e in self.browser.events if e.get("sessionId") == self.session and e["method"] in methods]

    def evaluate(self, expression: str, *, wait: bool = True) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": wait,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.browser.timeout)
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"gave up waiting for {what}")

    def frames(self, n: int = 3) -> None:
        """Let the page draw ``n`` animation frames (WebGL draws on the next frame)."""
        self.evaluate("new Promise(r => { let k = %d; const f = () => (--k ? requestAnimationFrame(f) : r(1)); "
                      "requestAnimationFrame(f); })" % n)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])

    def mouse(self, kind: str, x: float, y: float, button: str = "none", clicks: int = 0) -> None:
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": button,
                                               "clickCount": clicks})

    def click(self, x: float, y: float) -> None:
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, "left", 1)
        self.mouse("mouseReleased", x, y, "left", 1)

    def click_selector(self, selector: str) -> None:
        """A real mouse click at the middle of the element ``selector``."""
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            f".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        self.click(*box)

    # -- what the page did -----------------------------------------------------------------
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (a blocked request is one)."""
        out = []
        for e in self.events("Runtime.consoleAPICalled"):
            if e["params"]["type"] in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                  for a in e["params"]["args"]))
        for e in self.events("Runtime.exceptionThrown"):
            d = e["params"]["exceptionDetails"]
            out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
        for e in self.events("Log.entryAdded"):
            if e["params"]["entry"]["level"] == "error":
                out.append("log: " + e["params"]["entry"]["text"])
        return out

    def requests(self) -> list[str]:
        """URLs of every request the page made."""
        return [e["params"]["request"]["url"] for e in self.events("Network.requestWillBeSent")]
