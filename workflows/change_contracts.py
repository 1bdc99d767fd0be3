"""What crosses the boundary of the move and correction workflows: registry UUIDs, field names and flags only.

A move or a correction is kept in the registry (`residence_changes`, `birth_corrections`); the workflows carry
its id and the person's id, never the new address, name, date of birth or ID number.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

AGENDA_CHANGED_SIGNAL = "agenda_changed"
"""Signal to `CitizenLifecycleWorkflow` (`citizen-<person uuid>`): the registry changed what the agenda is
computed from; reload it (argument: :class:`AgendaChanged`)."""


class _Ref(BaseModel):
    model_config = ConfigDict(frozen=True)


class ChangeCase(_Ref):
    """Workflow input: the stored change (a `residence_changes` or `birth_corrections` row) and whose it is."""

    change_id: uuid.UUID
    person_id: uuid.UUID


class ChangeRef(ChangeCase):
    """An agency step on behalf of a change workflow (the workflow id goes to the data-access log)."""

    workflow_id: str


class MoveOutcome(_Ref):
    moved: bool
    """The citizen lives in the new household (now or since an earlier attempt of this step)."""
    newly_moved: bool = False
    detail: str | None = None
    """Why nothing was done, e.g. `superseded-by-later-residence`; codes only."""


class CorrectionApplied(_Ref):
    changed: list[str]
    """Which fields the civil registry changed (`full_name`, `date_of_birth`, `sex`); empty: nothing differed."""
    newly_applied: bool = False

    @property
    def date_changed(self) -> bool:
        return "date_of_birth" in self.changed

    @property
    def prefix_may_change(self) -> bool:
        """Sex and birth year are encoded in the personal ID number (Decree 137/2015 Art. 13)."""
        return "sex" in self.changed or "date_of_birth" in self.changed


class IdReissued(_Ref):
    reissued: bool
    """A new number replaced the old one (now `cancelled`, linked to it); False: the prefix did not change."""
    detail: str | None = None


class CorrectionNoticeInput(ChangeRef):
    id_reissued: bool = False


class ChangeStep(_Ref):
    done: bool
    detail: str | None = None


class AgendaChanged(_Ref):
    """Signal payload: reload the agenda because `reason` changed (`residence`, `birth-correction`)."""

    reason: str
    change_id: uuid.UUID


class AgendaChangeNotice(_Ref):
    """Input of the `signal_agenda_changed` activity."""

    person_id: uuid.UUID
    reason: str
    change_id: uuid.UUID


class ChangeOutcome(_Ref):
    change_id: uuid.UUID
    person_id: uuid.UUID
    steps: dict[str, str]
    """Step name -> what happened (codes and counts only)."""
