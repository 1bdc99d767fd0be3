"""The chaos kill plan: each action at its own mark, spread over the run, servers between worker kills."""

from __future__ import annotations

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
