"""The chaos kill plan: each action at its own mark, spread over the run, servers between worker kills; the
notice-push check."""

from __future__ import annotations

import uuid

from chaos.checks import is_civil_subject, notices_pushed_once
from chaos.supervisor import ChaosPlan, kill_schedule


def test_kill_plan_spreads_actions_over_the_run() -> None:
    schedule = kill_schedule(ChaosPlan(worker_kills=3, bridge_kills=2, temporal_restarts=1, postgres_restarts=1))

    assert [a.kind for a in schedule if a.metric == "received"] == ["bridge", "bridge"]
    on_notices = [a for a in schedule if a.metric == "notices"]
    assert [a.kind for a in on_notices] == ["worker", "temporal", "worker", "postgres", "worker"]
    marks = [a.at for a in schedule if a.metric == "received"], [a.at for a in on_notices]
    for spread in marks:
        assert spread == sorted(spread) and len(set(spread)) == len(spread)
        assert 0 < spread[0] and spread[-1] < 1


def test_a_notice_not_dispatched_or_pushed_to_other_recipients_fails_the_push_check() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    inbox = {a: 2, b: 1, c: 2}

    assert notices_pushed_once([(a, 2, 3), (b, 1, 0), (c, 2, 0)], inbox, 0).passed
    assert "3 repeated announcements" in notices_pushed_once([(a, 2, 3), (b, 1, 0), (c, 2, 0)], inbox, 0).figures
    undispatched = notices_pushed_once([(a, 2, 0), (b, None, None), (c, 2, 0)], inbox, 1)
    assert not undispatched.passed and "2/3 notices dispatched" in undispatched.figures
    assert not notices_pushed_once([(a, 1, 0), (b, 1, 0), (c, 2, 0)], inbox, 0).passed
    assert not notices_pushed_once([(a, 2, 0), (b, 1, 0), (c, 2, 0)], inbox, 1).passed
    assert not notices_pushed_once([], {}, 0).passed


def test_only_civil_dead_letters_count_for_the_civil_stream() -> None:
    assert is_civil_subject("civil.079.birth_registered")
    assert not is_civil_subject("notify.inbox.5b0c0e6e-0b1e-4a52-9d1e-1f2f3a4b5c6d")  # its sequence is NOTIFY's
    assert not is_civil_subject("health.079.vaccination_administered") and not is_civil_subject("")
