from __future__ import annotations

import json
import sqlite3

import pytest

from assistant.dialogue_state import DialogueState
from assistant.privacy import redact
from assistant.sessions import SessionOwnershipError, SessionRecord, SessionStore


def test_session_round_trip_and_persistence(tmp_path) -> None:
    store = SessionStore(tmp_path)
    rec = store.open("s1", "alice")
    state = DialogueState.from_dict({"constraints": {"price_max": 20}})
    rec.state = state.record_cards(["B001", "B002"]).with_feedback("B001", liked=True)
    rec.add_turn("user", "moisturizer under $20, mail me at a@b.com")
    store.save(rec)
    store.close()

    again = SessionStore(tmp_path).get("s1")  # a new process would see the same row
    assert again is not None
    assert again.user_id == "alice"
    assert again.state == rec.state and again.state.constraints.price_max == 20
    assert again.shown == ["B001", "B002"] and again.liked == ["B001"]
    assert again.transcript[0].text == "moisturizer under $20, mail me at [EMAIL]"


def test_one_row_per_session_and_wal(tmp_path) -> None:
    store = SessionStore(tmp_path)
    for n in range(3):
        rec = store.open("s1", "alice")
        rec.add_turn("user", f"turn {n}")
        store.save(rec)
    con = sqlite3.connect(store.db_path)
    assert con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(store.get("s1").transcript) == 3


def test_sessions_are_bound_to_their_user(tmp_path) -> None:
    store = SessionStore(tmp_path)
    rec = store.open("s1", "alice")
    rec.add_turn("user", "hi")
    store.save(rec)
    with pytest.raises(SessionOwnershipError):
        store.open("s1", "bob")
    anon = store.open("s2", None)
    anon.add_turn("user", "hello")
    store.save(anon)
    with pytest.raises(SessionOwnershipError):
        store.open("s2", "bob")  # an anonymous conversation cannot be claimed later
    with pytest.raises(ValueError, match="non-empty"):
        store.open("", "alice")


def test_forget_removes_rows_events_edits_and_log_lines(tmp_path) -> None:
    store = SessionStore(tmp_path)
    for sid, user in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")]:
        rec = store.open(sid, user)
        rec.add_turn("user", f"secret of {user}")
        store.save(rec)
        store.log_turn({"session_id": sid, "user_id": user, "text": f"secret of {user}"})
    store.add_event("alice", "B001", "like", "a1")
    store.add_event("bob", "B002", "purchase", "b1")
    store.set_profile_edits("alice", {"hidden_items": ["B003"]})

    counts = store.forget("alice")
    assert counts == {"sessions": 2, "events": 1, "log_lines": 2}
    assert store.sessions_of("alice") == [] and store.events("alice") == []
    assert store.profile_edits("alice") == {}
    assert [ln["user_id"] for ln in store.log_lines()] == ["bob"]
    assert store.get("b1") is not None and store.events("bob") == [
        ("B002", "purchase", store.events("bob")[0][2])
    ]
    # The text is gone from the files on disk too (secure_delete + WAL checkpoint + log rewrite).
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"secret of alice" not in raw
    assert b"secret of bob" in raw


def test_bad_event_kind(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        SessionStore(tmp_path).add_event("u", "i", "loved")


def test_record_json_round_trip() -> None:
    rec = SessionRecord("s", "u", state=DialogueState().record_cards(["x"]))
    rec.add_turn("assistant", "ok", intent="recommend", item_ids=["x"])
    back = SessionRecord.from_json(rec.to_json())
    assert back == rec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email me at john.doe@example.com", "email me at [EMAIL]"),
        ("call +1 415 555 0134 or (415) 555-0134", "call [PHONE] or [PHONE]"),
        ("ship to 12 Oak Street, Apt 4 please", "ship to [ADDRESS] please"),
        ("手机13812345678 地址南京路123号", "手机[PHONE] 地址[ADDRESS]"),
        ("a moisturizer under $19.99, not Olay, 2 pack", "a moisturizer under $19.99, not Olay, 2 pack"),
        ("movies from 1995 to 2014", "movies from 1995 to 2014"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_sessions_stored_before_the_state_owned_feedback_still_load(tmp_path) -> None:
    """Rows written when the record kept its own shown/liked/disliked lists beside ``state_json``."""
    store = SessionStore(tmp_path)
    legacy_state = DialogueState.from_dict({"constraints": {"price_max": 20}, "liked": ["B003", "B002"]})
    legacy = {
        "session_id": "old",
        "user_id": "alice",
        "state_json": legacy_state.to_json(),
        "transcript": [{"role": "user", "text": "hi", "intent": None, "item_ids": [], "ts": 1.0}],
        "shown": ["B001", "B002", "B003"],
        "last_items": ["B002", "B003"],
        "liked": ["B001"],
        "disliked": ["B002"],
        "created_at": 1.0,
    }
    con = sqlite3.connect(store.db_path)
    con.execute(
        "INSERT INTO sessions(session_id, user_id, data, created_at, updated_at) VALUES (?, ?, ?, 1, 1)",
        ("old", "alice", json.dumps(legacy)),
    )
    con.commit()
    rec = store.open("old", "alice")
    assert rec.state.constraints.price_max == 20
    assert rec.liked == ["B001", "B003"] and rec.disliked == ["B002"]
    assert rec.shown == ["B001", "B002", "B003"] and rec.last_items == ["B002", "B003"]
    store.save(rec)  # rewritten in the current format, same content
    assert store.get("old").state == rec.state
