"""Local-only mode (``SHOPASSIST_LOCAL_ONLY=1`` / ``app.py --local-only``): no outbound network.

Tested with the network really blocked: the child processes run in a new network namespace
(``unshare -rn``: only a loopback interface, brought up inside) where any outbound connect
fails at the OS level, and a ``sitecustomize`` recorder logs every non-loopback connect / DNS
lookup a library even attempts (the OS would refuse it, the recorder makes it visible). The
product's own socket guard (``llm.local_only.install_socket_guard``) refuses such attempts
first; its record is dumped at exit too. Where the box forbids namespaces, the recorder and the
guard still run (``NETNS`` says which).

* unit: ``ensure_local_url`` (the one check every configurable endpoint calls), the settings;
* default suite: an index build from scratch + chat turns through the Python API;
* slow: ``python app.py --local-only`` builds its index, loads the tiny LLM and answers a chat
  turn from a ``gradio_client`` over loopback.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _servers import die_with_parent

import llm.local_only as local_only_mode
from llm.local_only import LocalOnlyError, ensure_local_url, is_loopback_host

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# --------------------------------------------------------------------------- the blocked network
RECORDER = r"""
import atexit, ipaddress, json, os, socket
_log = os.environ["NET_ATTEMPTS_LOG"]

def _note(rec):
    import sys, traceback
    where = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()[-8:-2]]
    with open(_log, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "argv": sys.argv[:1], **rec, "stack": where}) + "\n")

def _local(family, address):
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True
    host = str(address[0])
    return host in ("::1", "0.0.0.0", "::") or host.startswith("127.") or host.startswith("::ffff:127.")

_connect, _connect_ex, _gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

def connect(self, address):
    if not _local(self.family, address):
        _note({"connect": repr(address)})
    return _connect(self, address)

def connect_ex(self, address):
    if not _local(self.family, address):
        _note({"connect": repr(address)})
    return _connect_ex(self, address)

def getaddrinfo(host, *a, **k):
    h = host.decode() if isinstance(host, bytes) else host
    try:
        ipaddress.ip_address(str(h).strip("[]"))  # a literal address: no lookup, connect() decides
    except ValueError:
        if h not in (None, "", "localhost"):
            _note({"dns": str(h)})
    return _gai(host, *a, **k)

socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo

# SIGTERM ends a process like Ctrl+C (a background job in a script ignores SIGINT), so the app
# shuts down through its normal path and the atexit dump below runs.
import signal
signal.signal(signal.SIGTERM, signal.default_int_handler)

@atexit.register
def _dump_guard():
    import sys
    mod = sys.modules.get("llm.local_only")
    for what in getattr(mod, "BLOCKED_ATTEMPTS", []) if mod else []:
        _note({"blocked_by_guard": what})
"""


def _netns_prefix() -> list[str]:
    """``unshare -rn`` (or ``-n`` as root) plus bringing ``lo`` up, when this box allows it."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    for flags in ("-rn", "-n"):
        cmd = ["unshare", flags, "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
        try:
            if subprocess.run([*cmd, "true"], capture_output=True, timeout=20).returncode == 0:
                return cmd
        except (OSError, subprocess.TimeoutExpired):
            continue
    return []


NETNS = _netns_prefix()


def _env(tmp_path: Path, local_only: bool = True) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(RECORDER)
    # Start from a clean slate: no proxies, no offline switches (local-only mode must set them).
    drop = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ANONYMIZED_TELEMETRY", "GRADIO_ANALYTICS_ENABLED"}
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k not in drop}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO), str(TESTS)]),
        "NET_ATTEMPTS_LOG": str(tmp_path / "attempts.jsonl"),
        "OMP_NUM_THREADS": "1",
        "SHOPASSIST_THREADS": "1",
    }
    if local_only:
        env[local_only_mode.LOCAL_ONLY_ENV] = "1"
    else:
        env.pop(local_only_mode.LOCAL_ONLY_ENV, None)
    return env


def _attempts(tmp_path: Path) -> list[dict]:
    log = tmp_path / "attempts.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.skipif(not NETNS, reason="this box does not allow network namespaces (unshare -n)")
def test_the_namespace_really_has_no_network(tmp_path) -> None:
    """The control: inside, an outbound connect fails at the OS level; loopback works."""
    code = textwrap.dedent(
        """
        import errno, socket
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=5)
            print("OUTBOUND-OK")
        except OSError as e:
            print("outbound refused", errno.errorcode.get(e.errno, e.errno))
        srv = socket.create_server(("127.0.0.1", 0))
        socket.create_connection(srv.getsockname(), timeout=5).close()
        print("loopback ok")
        """
    )
    out = subprocess.run(
        [*NETNS, sys.executable, "-c", code],
        env=_env(tmp_path, local_only=False),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OUTBOUND-OK" not in out.stdout and "outbound refused ENETUNREACH" in out.stdout
    assert "loopback ok" in out.stdout
    assert [a.get("connect") for a in _attempts(tmp_path)] == ["('1.1.1.1', 53)"]  # the recorder works


# ------------------------------------------------------------------------------------- the switch
@pytest.fixture
def local_only_env(monkeypatch):
    """Local-only mode on for this test; every variable it sets is restored afterwards."""
    for key, value in local_only_mode.OFFLINE_ENV.items():  # setenv registers each for restoring
        monkeypatch.setenv(key, os.environ.get(key, value))
    monkeypatch.setenv(local_only_mode.LOCAL_ONLY_ENV, "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a stray setting the switch must override
    return monkeypatch


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000",
        "https://LOCALHOST./v1",
        "http://[::1]:8000/v1",
        "http://127.1.2.3:9000?tenant=t&database=d",
        "http://0.0.0.0:8000",
        "localhost:8000",
        "http://api.localhost:8000/v1",
    ],
)
def test_loopback_urls_pass(local_only_env, url) -> None:
    assert ensure_local_url(url, "LLM endpoint") == url


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "http://10.0.0.5:8000",
        "http://192.168.1.20:8000/v1",
        "http://[2001:db8::1]:8000",
        "http://127.0.0.1.nip.io:8000",  # a public name that resolves to loopback: still DNS
        "http://localhost.example.com",
        "http://chroma:8000",  # a docker-compose service name: another machine as far as we know
        "https://user:pw@example.com/v1",
    ],
)
def test_remote_urls_are_refused_with_a_clear_message(local_only_env, url) -> None:
    with pytest.raises(LocalOnlyError, match=r"local-only mode \(SHOPASSIST_LOCAL_ONLY=1\) refuses the LLM"):
        ensure_local_url(url, "LLM endpoint")


def test_without_local_only_urls_pass_untouched(monkeypatch) -> None:
    monkeypatch.delenv(local_only_mode.LOCAL_ONLY_ENV, raising=False)
    assert not local_only_mode.local_only()
    assert ensure_local_url("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert ensure_local_url(None) is None and ensure_local_url("") == ""


def test_loopback_host_check_does_no_dns() -> None:
    assert (
        is_loopback_host("127.0.0.1") and is_loopback_host("::ffff:127.0.0.1") and is_loopback_host("[::1]")
    )
    assert not is_loopback_host("example.com") and not is_loopback_host(None) and not is_loopback_host("")


def test_enable_sets_the_offline_and_telemetry_switches(local_only_env) -> None:
    local_only_mode.enable_local_only(guard=False)  # the guard itself is exercised in the subprocesses
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["ANONYMIZED_TELEMETRY"] == "False" and os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1" and local_only_mode.local_only()


def test_a_remote_chroma_url_is_refused_before_anything_connects(local_only_env, tmp_path) -> None:
    from assistant_catalog import make_dataset

    from assistant.index import AssistantIndex

    with pytest.raises(LocalOnlyError, match=re.escape("Chroma server URL 'http://chroma.example.com:8000'")):
        AssistantIndex.build_or_load(
            make_dataset(),
            cache_dir=tmp_path,
            show_progress=False,
            store_url="http://chroma.example.com:8000",
        )
    local_only_env.setenv("SHOPASSIST_CHROMA_URL", "http://10.1.2.3:8000")
    with pytest.raises(LocalOnlyError, match=re.escape("'http://10.1.2.3:8000'")):
        AssistantIndex.build_or_load(make_dataset(), cache_dir=tmp_path, show_progress=False)


@pytest.mark.parametrize(
    "spec,env_url",
    [
        ("openai:gpt-4o-mini", None),  # no URL at all: the SDK would call the OpenAI API
        ("openai:some-model@https://llm.example.com/v1", None),
        ("openai:some-model", "http://10.0.0.7:8000/v1"),  # from $SHOPASSIST_LLM_URL
    ],
)
def test_a_remote_llm_endpoint_is_refused(local_only_env, spec, env_url) -> None:
    from llm.openai_backend import URL_ENV, openai_chat_model

    local_only_env.delenv("OPENAI_BASE_URL", raising=False)
    if env_url:
        local_only_env.setenv(URL_ENV, env_url)
    else:
        local_only_env.delenv(URL_ENV, raising=False)
    with pytest.raises(LocalOnlyError, match="refuses the LLM endpoint"):
        openai_chat_model(spec)


def test_from_dataset_refuses_a_remote_llm_url(local_only_env, tmp_path) -> None:
    from assistant_catalog import make_dataset

    from assistant import ShoppingAssistant

    with pytest.raises(LocalOnlyError, match=re.escape("LLM endpoint 'https://llm.example.com/v1'")):
        ShoppingAssistant.from_dataset(
            make_dataset(),
            llm="qwen",
            llm_url="https://llm.example.com/v1",
            cache_dir=tmp_path,
            show_progress=False,
        )


def test_a_loopback_llm_endpoint_is_accepted(local_only_env) -> None:
    from llm.openai_backend import openai_chat_model

    llm = openai_chat_model("openai:tiny@http://127.0.0.1:9/v1")  # built, not called: no server needed
    assert str(llm.openai_api_base).startswith("http://127.0.0.1:9")


def test_app_refuses_a_public_bind_address_in_local_only_mode(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "app.py", "--local-only", "--host", "0.0.0.0", "--no-preload"],
        cwd=REPO,
        env=_env(tmp_path, local_only=False),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "local-only mode serves on loopback only" in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


# ------------------------------------------------------------------------- runs with no network
API_RUN = """
import json, os, sys, urllib.request
from llm.runtime import configure
configure()  # the Python API's set-up, first: SHOPASSIST_LOCAL_ONLY=1 turns local-only mode on here
import llm.local_only as local_only_mode
from assistant_catalog import make_dataset
from assistant import ShoppingAssistant
assert local_only_mode.local_only() and configure().local_only
bot = ShoppingAssistant.from_dataset(make_dataset(), llm=None, cache_dir=sys.argv[1], show_progress=False)
r1 = bot.chat("a moisturizer under $40, not Olay", session_id="net", user_id="n1")
r2 = bot.chat("compare the first two", session_id="net", user_id="n1")
bot.feedback("net", r1.items[0].item_id, liked=True, user_id="n1")
counts = bot.forget("n1")
built = list(bot.index.info.built)
clean = list(local_only_mode.BLOCKED_ATTEMPTS)  # nothing tried to leave during the real work
try:  # the guard is live in this process: an explicit outbound call is refused and recorded
    urllib.request.urlopen("https://example.com/", timeout=5)
    refused = None
except Exception as e:
    refused = type(e).__name__ + ": " + str(e)
hub = sys.modules.get("huggingface_hub.constants")
print(json.dumps({
    "items": [i.item_id for i in r1.items], "intent2": r2.intent, "built": built, "forget": counts,
    "blocked_during_work": clean, "refused": refused, "blocked_after": list(local_only_mode.BLOCKED_ATTEMPTS),
    "env": {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ANONYMIZED_TELEMETRY")},
    "hub_offline": getattr(hub, "HF_HUB_OFFLINE", None),
}))
"""


def test_index_build_and_chat_with_the_network_blocked(tmp_path) -> None:
    """A fresh index build (embedding, Chroma, BM25, scorer) and chat turns, local-only, no network."""
    env = _env(tmp_path)
    cmd = [*NETNS, sys.executable, "-c", textwrap.dedent(API_RUN), str(tmp_path / "cache")]
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, preexec_fn=die_with_parent()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["items"] and out["intent2"] == "compare" and "store" in out["built"]
    assert out["forget"]["profile_vectors"] == 1
    assert out["env"] == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    assert out["hub_offline"] in (None, True)
    assert out["blocked_during_work"] == [], "something tried to reach the network"
    assert out["refused"] and "LocalOnlyError" in out["refused"] and "example.com" in out["refused"]
    assert out["blocked_after"] == ["DNS lookup example.com"]
    # The recorder below the guard saw no attempt at all (the refused one never got past the guard).
    assert [a for a in _attempts(tmp_path) if "blocked_by_guard" not in a] == []


CLIENT = """
import json, sys, time
from gradio_client import Client
url = f"http://127.0.0.1:{sys.argv[1]}/"
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        client = Client(url, verbose=False, download_files=False)
        break
    except Exception as e:
        if time.monotonic() > deadline:
            raise SystemExit(f"the app never answered at {url}: {e}")
        time.sleep(2)
out = client.predict("a moisturizer under $40, not Olay", api_name="/chat")
content = out[0][-1]["content"]  # a string, or gradio 6's [{"type": "text", "text": ...}]
text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
print(json.dumps({"reply": text}))
"""

NETNS_SCRIPT = r"""
trap 'trap - TERM; kill -TERM 0; exit 143' TERM  # pytest died (die_with_parent): take the group down
"$PY" app.py --local-only --dataset "$DATA" --llm "$LLM" --cache-dir "$CACHE" --port 7861 --threads 1 \
    >"$WORK/app.out" 2>"$WORK/app.err" &
APP=$!
# The client stands in for the browser; huggingface_hub (under gradio_client) fetches an agent
# registry and sends telemetry to huggingface.co unless told it is offline, as local-only mode
# tells every process that calls llm.runtime.configure().
HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 "$PY" -c "$CLIENT" 7861 420 >"$WORK/client.out" 2>"$WORK/client.err" &
wait $!  # in the background + wait: bash runs the TERM trap at once, not after a foreground job
RC=$?
kill -TERM $APP 2>/dev/null
wait $APP
echo "app exit $?" >>"$WORK/app.out"
exit $RC
"""


@pytest.mark.slow
def test_app_local_only_starts_builds_and_chats_with_the_network_blocked(tmp_path, tiny_llm_dir) -> None:
    """``python app.py --local-only`` (the switch as a flag, nothing in the environment): builds
    the index of a new dataset folder, loads the tiny LLM, serves on loopback and answers a
    ``gradio_client`` chat turn, inside a namespace with no network; nothing tries to leave."""
    from finetune.toydata import write_toy_dataset

    data = write_toy_dataset(tmp_path / "shop", n_items=60, n_users=40)
    env = _env(tmp_path, local_only=False) | {
        "PY": sys.executable,
        "DATA": str(data),
        "LLM": str(tiny_llm_dir),
        "CACHE": str(tmp_path / "cache"),
        "WORK": str(tmp_path),
        "CLIENT": textwrap.dedent(CLIENT),
    }
    proc = subprocess.Popen(
        [*NETNS, "bash", "-c", NETNS_SCRIPT],
        cwd=REPO,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent(),  # bash's TERM trap then stops the app and the client
    )
    try:
        rc = proc.wait(timeout=540)
    except subprocess.TimeoutExpired:
        pytest.fail("the local-only app run did not finish in 540 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # never leave the app running
    app_err = (tmp_path / "app.err").read_text()
    assert rc == 0, (tmp_path / "client.err").read_text()[-3000:] + app_err[-3000:]
    reply = json.loads((tmp_path / "client.out").read_text().strip().splitlines()[-1])["reply"]
    assert reply.strip() and not reply.startswith("Sorry"), reply
    assert "Shopping assistant running at http://127.0.0.1:7861" in (tmp_path / "app.out").read_text()
    assert "local-only mode blocked" not in app_err
    assert "app exit 0" in (tmp_path / "app.out").read_text(), "the app did not shut down cleanly"
    assert _attempts(tmp_path) == [], "something tried to reach the network"
    assert (tmp_path / "cache" / "indexes").is_dir(), "the index was built in the namespace"
