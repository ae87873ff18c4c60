"""Kobold Lite itself (koboldcpp 1.76's ``klite.embd``) as a test oracle.

:func:`run_in_lite` opens the real page in headless Chromium with one script added at the end:
it waits for Lite's own ``init()``, runs a task against Lite's globals (``kai_json_load``,
``generate_savefile``, ``gametext_arr``, ``localsettings``...) and writes the result, base64
JSON, into the DOM, which ``--dump-dom`` prints. No network is used: the page is a local file
and Lite's failed server probes do not matter. Where Chromium is missing the tests that need it
skip; :func:`lite_function` and :func:`lite_object_keys` read Lite's source for static checks.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_FIXTURES

KLITE = SHARED_FIXTURES / "clients" / "klite.embd"

STATE_JS = """
function storytellerState() {
  return {
    gametext: gametext_arr.slice(), memory: current_memory, anote: current_anote,
    anotetemplate: current_anotetemplate, anotestr: anote_strength,
    wi: JSON.parse(JSON.stringify(current_wi)), wisearchdepth: wi_searchdepth,
    wiinsertlocation: wi_insertlocation, extrastopseq: extrastopseq,
    opmode: localsettings.opmode, chatname: localsettings.chatname,
    chatopponent: localsettings.chatopponent,
  };
}
function storytellerLoad(text) {
  // load_selected_file's JSON branch, minus the FileReader.
  const obj = JSON.parse(text);
  if (!(is_kai_json(obj) && !obj.scenarioVersion)) { throw new Error("Lite does not take this as a story"); }
  kai_json_load(obj, false);
}
"""


def chromium() -> str | None:
    """The Chromium (or Chrome) binary, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def needs_klite() -> Path:
    """The klite.embd path; skips the test when the shared fixture is absent."""
    if not KLITE.is_file():
        pytest.skip("../shared/fixtures/clients/klite.embd not found; Kobold Lite tests skipped")
    return KLITE


def needs_chromium() -> str:
    """The browser binary; skips the test when there is none."""
    found = chromium()
    if found is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); Kobold Lite loader tests skipped")
    return found


def run_in_lite(task_js: str, payload: Any, *, timeout: float = 120) -> Any:
    """Run ``task_js`` (a JS function of one argument, the payload) inside Kobold Lite.

    Returns:
        What the function returned, through JSON.

    Raises:
        AssertionError: The page did not answer, or the task threw (with Lite's stack).
    """
    browser = needs_chromium()
    page = needs_klite().read_text(encoding="utf-8")
    data = base64.b64encode(json.dumps(payload, ensure_ascii=False).encode("utf-8")).decode("ascii")
    script = f"""<script>
{STATE_JS}
(function () {{
  const payload = JSON.parse(decodeURIComponent(escape(atob("{data}"))));
  const task = ({task_js});
  function answer(out) {{
    const pre = document.createElement("pre");
    pre.id = "storyteller-result";
    pre.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(out))));
    document.body.appendChild(pre);
  }}
  setTimeout(function () {{
    try {{ answer({{ok: true, result: task(payload)}}); }}
    catch (e) {{ answer({{ok: false, error: String(e) + "\\n" + (e.stack || "")}}); }}
  }}, 500);
}})();
</script>"""
    cut = page.rindex("</html>")
    with tempfile.TemporaryDirectory(prefix="klite-") as tmp:
        html = Path(tmp) / "klite.html"
        html.write_text(page[:cut] + script + page[cut:], encoding="utf-8")
        args = [browser, "--headless=new", "--disable-gpu", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={tmp}/profile", "--virtual-time-budget=10000", "--dump-dom", html.as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        done = subprocess.run(args, capture_output=True, timeout=timeout, text=True)
    found = re.search(r'<pre id="storyteller-result">([A-Za-z0-9+/=]*)</pre>', done.stdout)
    assert found, f"Kobold Lite gave no answer (rc {done.returncode}): {done.stderr[-2000:]}"
    out = json.loads(base64.b64decode(found.group(1)).decode("utf-8"))
    assert out["ok"], f"Kobold Lite threw: {out['error']}"
    return out["result"]


def load_in_lite(saves: list[str]) -> list[dict[str, Any]]:
    """Each save text loaded by Lite's loader in a fresh state; Lite's state and its own re-save.

    ``localsettings`` are put back to what they were after ``init()`` before each load, so
    that one save's settings never leak into the next.
    """
    task = """function (saves) {
      const base = JSON.parse(JSON.stringify(localsettings));
      return saves.map(function (text) {
        import_props_into_object(localsettings, JSON.parse(JSON.stringify(base)));
        storytellerLoad(text);
        return {state: storytellerState(), saved: generate_savefile(true, true, false)};
      });
    }"""
    return run_in_lite(task, saves)


def lite_function(name: str) -> str:
    """The source of one top-level function of Lite (brace-matched), for static checks."""
    source = needs_klite().read_text(encoding="utf-8")
    start = source.index(f"function {name}(")
    depth, i = 0, source.index("{", start)
    while True:
        if source[i] == "{":
            depth += 1
        elif source[i] == "}":
            depth -= 1
            if depth == 0:
                return source[start:i + 1]
        i += 1


def lite_object_keys(declaration: str) -> set[str]:
    """The keys of an object literal in Lite's source, e.g. ``var localsettings = {``."""
    source = needs_klite().read_text(encoding="utf-8")
    start = source.index(declaration) + len(declaration) - 1
    depth, i = 0, start
    while True:
        if source[i] in "{[(":
            depth += 1
        elif source[i] in "}])":
            depth -= 1
            if depth == 0:
                break
        i += 1
    body = source[start:i]
    return set(re.findall(r"^\s*\"?(\w+)\"?\s*:", body, re.M))
