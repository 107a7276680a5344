"""Durable, per-session conversation state and per-user event history (sqlite, WAL).

One row per ``session_id`` holds the whole session (the ``DialogueState``, which alone
owns the shown/liked/disliked items, and the transcript) as JSON and is replaced in one transaction, so a
crash never leaves half a turn behind and two sessions never share state. A
session is bound to the first user id it sees; another user cannot read or
continue it. User events added during chat (likes, dislikes, purchases) live
in their own table so ``forget`` can delete everything about a user: sessions,
events, profile edits and the user's lines in the turn log.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from assistant.dialogue_state import DialogueState
from assistant.privacy import redact
from retrieval.files import atomic_write, default_cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT,
    data TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    session_id TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id);
CREATE TABLE IF NOT EXISTS profile_edits (
    user_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS forgotten (
    digest TEXT PRIMARY KEY,
    ts REAL NOT NULL
);
"""
KEY_FILE = "forget.key"

EVENT_KINDS = ("like", "dislike", "purchase", "view")
MAX_TRANSCRIPT_TURNS = (
    200  # older turns are dropped from the stored transcript (the state keeps what matters)
)


class SessionOwnershipError(PermissionError):
    """A session id was used by a different user than the one it belongs to."""


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    text: str  # redacted
    intent: str | None = None
    item_ids: list[str] = field(default_factory=list)
    ts: float = field(default_factory=time.time)


@dataclass
class SessionRecord:
    """Everything the assistant remembers about one conversation: its owner, the dialogue state
    (the only owner of what was shown, liked and disliked) and the transcript."""

    session_id: str
    user_id: str | None = None
    state: DialogueState = field(default_factory=DialogueState)
    transcript: list[Turn] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    # Read-only views of the state, for callers of ``ShoppingAssistant.session``.
    @property
    def liked(self) -> list[str]:
        return list(self.state.liked)

    @property
    def disliked(self) -> list[str]:
        return list(self.state.disliked)

    @property
    def shown(self) -> list[str]:
        """Every item shown, oldest first."""
        return list(self.state.shown)

    @property
    def last_items(self) -> list[str]:
        """The cards of the last answer that had cards, in order."""
        return list(self.state.last_items)

    def to_json(self) -> str:
        d = {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "state": self.state.to_dict(),
            "transcript": [asdict(t) for t in self.transcript[-MAX_TRANSCRIPT_TURNS:]],
            "created_at": self.created_at,
        }
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SessionRecord:
        d = json.loads(text)
        state = DialogueState.from_dict(d["state"]) if "state" in d else _legacy_state(d)
        return cls(
            session_id=d["session_id"],
            user_id=d.get("user_id"),
            state=state,
            transcript=[Turn(**t) for t in d.get("transcript", [])],
            created_at=d.get("created_at", time.time()),
        )

    def add_turn(
        self, role: str, text: str, intent: str | None = None, item_ids: list[str] | None = None
    ) -> None:
        self.transcript.append(Turn(role, redact(text), intent, list(item_ids or [])))


class SessionStore:
    """sqlite-backed sessions + events, and a JSONL turn log, in one directory."""

    @staticmethod
    def root_for(dataset: str, sessions_dir: str | None, cache_dir: str | None) -> Path:
        """A dataset's folder under ``sessions_dir``, else under ``<cache_dir>/sessions``."""
        base = Path(sessions_dir).expanduser() if sessions_dir else default_cache_dir(cache_dir) / "sessions"
        return base / re.sub(r"[^\w.-]+", "_", dataset)

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.db_path = self.directory / "sessions.sqlite"
        self.log_path = self.directory / "turns.jsonl"
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        # Overwrite deleted rows on disk, so forget() really removes a user's text.
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.executescript(SCHEMA)
        self._key: bytes | None = None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- sessions ------------------------------------------------------------------
    def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return None if row is None else SessionRecord.from_json(row[0])

    def open(self, session_id: str, user_id: str | None = None) -> SessionRecord:
        """The stored session, or a new one; refuses a session that belongs to someone else."""
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        rec = self.get(session_id)
        if rec is None:
            return SessionRecord(session_id=session_id, user_id=user_id)
        if rec.user_id is not None and user_id is not None and rec.user_id != user_id:
            raise SessionOwnershipError(
                f"session {session_id!r} belongs to another user; start a new session id"
            )
        if rec.user_id is None and user_id is not None:
            if rec.transcript:
                # An anonymous conversation cannot be claimed later: it may be someone else's.
                raise SessionOwnershipError(
                    f"session {session_id!r} was started anonymously; start a new session id to sign in"
                )
            rec.user_id = user_id
        return rec

    def save(self, record: SessionRecord) -> None:
        """Replace the session row in one transaction (all of the turn or none of it)."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO sessions(session_id, user_id, data, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET "
                    "user_id = excluded.user_id, data = excluded.data, updated_at = excluded.updated_at",
                    (record.session_id, record.user_id, record.to_json(), record.created_at, now),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def sessions_of(self, user_id: str) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT session_id FROM sessions WHERE user_id = ? ORDER BY created_at", (user_id,)
            ).fetchall()
        return [r[0] for r in rows]

    # --- events --------------------------------------------------------------------
    def add_event(self, user_id: str, item_id: str, kind: str, session_id: str | None = None) -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
        with self._lock:
            self._conn.execute(
                "INSERT INTO events(user_id, item_id, kind, session_id, ts) VALUES (?, ?, ?, ?, ?)",
                (user_id, item_id, kind, session_id, time.time()),
            )

    def events(self, user_id: str, kinds: tuple[str, ...] = EVENT_KINDS) -> list[tuple[str, str, float]]:
        """(item_id, kind, ts) for the user, oldest first."""
        marks = ",".join("?" * len(kinds))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT item_id, kind, ts FROM events WHERE user_id = ? AND kind IN ({marks}) ORDER BY id",
                (user_id, *kinds),
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    # --- profile edits ---------------------------------------------------------------
    def profile_edits(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM profile_edits WHERE user_id = ?", (user_id,)
            ).fetchone()
        return {} if row is None else json.loads(row[0])

    def set_profile_edits(self, user_id: str, edits: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO profile_edits(user_id, data) VALUES (?, ?) "
                "ON CONFLICT(user_id) DO UPDATE SET data = excluded.data",
                (user_id, json.dumps(edits)),
            )

    # --- turn log ------------------------------------------------------------------
    def log_turn(self, entry: dict[str, Any]) -> None:
        """Append one JSON line; free text in it must already be redacted by the caller."""
        line = json.dumps({"ts": time.time(), **entry}, ensure_ascii=False)
        with self._lock, open(self.log_path, "a", encoding="utf-8") as f:
            # After a crash mid-append the file may end in a torn line: start on a fresh one.
            f.write(("\n" if _ends_torn(self.log_path) else "") + line + "\n")

    def log_lines(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        with self._lock:
            text = self.log_path.read_text(encoding="utf-8")
        return [rec for rec in map(_parse_line, text.splitlines()) if rec is not None]

    def _rewrite_log(self, keep: Any) -> int:
        """Rewrite the log keeping lines where ``keep(record)``; atomic (temp file + rename)."""
        with self._lock:
            if not self.log_path.exists():
                return 0
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
            # A torn line (crash mid-append) parses to None and is dropped here.
            kept = [ln for ln in lines if (rec := _parse_line(ln)) is not None and keep(rec)]
            atomic_write(self.log_path, "".join(ln + "\n" for ln in kept))
            return len(lines) - len(kept)

    # --- forgetting ------------------------------------------------------------------
    def forget(self, user_id: str) -> dict[str, int]:
        """Delete the user's sessions, events, profile edits and log lines; returns counts."""
        sessions = set(self.sessions_of(user_id))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                n_sessions = self._conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount
                n_events = self._conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
                self._conn.execute("DELETE FROM profile_edits WHERE user_id = ?", (user_id,))
                self._conn.execute(
                    "INSERT OR IGNORE INTO forgotten (digest, ts) VALUES (?, ?)",
                    (self._digest(user_id), time.time()),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            # WAL pages may still hold the deleted rows; checkpoint so they leave the disk too.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            n_logs = self._rewrite_log(
                lambda rec: rec.get("user_id") != user_id and rec.get("session_id") not in sessions
            )
        return {"sessions": n_sessions, "events": n_events, "log_lines": n_logs}

    # --- the forgotten -----------------------------------------------------------------
    # A forgotten user's dataset history (a read-only input file) must stay hidden after a
    # restart, without keeping the id itself: a keyed hash (HMAC-SHA256, key in forget.key
    # beside the database) answers "was this id forgotten?" and nothing else.
    def _digest(self, user_id: str) -> str:
        if self._key is None:
            self._key = _load_or_create_key(self.directory / KEY_FILE)
        return hmac.new(self._key, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def is_forgotten(self, user_id: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM forgotten WHERE digest = ?", (self._digest(user_id),)
            ).fetchone()
        return row is not None

    @property
    def forgotten(self) -> ForgottenUsers:
        """The persistent set of forgotten user ids (``uid in store.forgotten``)."""
        return ForgottenUsers(self)


@dataclass(frozen=True)
class ForgottenUsers:
    """Set-like view of ``SessionStore``'s forgotten users: membership and ``add`` (via forget)."""

    store: SessionStore

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.store.is_forgotten(user_id)

    def add(self, user_id: str) -> None:
        if user_id not in self:
            self.store.forget(user_id)


def _load_or_create_key(path: Path) -> bytes:
    """A random 32-byte key, created once (atomically: a crash or a second process never sees
    half a key) and readable by the owner only."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return bytes.fromhex(path.read_text().strip())


def _legacy_state(d: dict[str, Any]) -> DialogueState:
    """A session stored before the dialogue state owned everything: its ``state_json`` plus the
    record's own shown/last_items/liked/disliked lists (the ones the ranker read then; likes said
    in chat, kept only in the state, are added unless the record says otherwise)."""
    state = DialogueState.from_json(d["state_json"]) if d.get("state_json") else DialogueState()
    rec_liked, rec_disliked = list(d.get("liked", [])), list(d.get("disliked", []))
    liked = [*rec_liked, *(i for i in state.liked if i not in rec_liked and i not in rec_disliked)]
    disliked = [*rec_disliked, *(i for i in state.disliked if i not in rec_disliked and i not in liked)]
    return replace(
        state,
        liked=tuple(liked),
        disliked=tuple(disliked),
        shown=tuple(d.get("shown", [])),
        last_items=tuple(d.get("last_items", [])),
    )


def _parse_line(line: str) -> dict[str, Any] | None:
    """One turn-log record, or None for a blank or torn line (a crash mid-append leaves one)."""
    if not line.strip():
        return None
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def _ends_torn(path: Path) -> bool:
    """True when the file is non-empty and does not end with a newline."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False
