"""Workflow payloads are stored encrypted on the real Temporal server: read without the key, a birth's history
holds no personal data and no registry reference; read with the service's converter, it decodes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from infra.codec import load_keys
from infra.settings import Settings
from registry.seed import family
from starter import publish_raw
from tests.helpers import codec_of, encryption_key_ids, history_plaintext
from tests.integration.test_birth_end_to_end import birth_event, child_of, wait_all_stages
from workflows.birth import BirthRegistrationWorkflow
from workflows.client import birth_workflow_id

pytestmark = pytest.mark.integration


async def test_history_read_without_the_key_shows_nothing_personal(settings: Settings, service: Any) -> None:
    fam = family(7)
    reg, raw = birth_event(7)
    await publish_raw(settings, [raw], progress=False)
    await wait_all_stages(service, [reg])
    child = await child_of(service, reg)
    assert child.personal_id_number is not None
    workflow_id = birth_workflow_id(fam.province_code, reg)
    # The notices commit inside the local steps; their markers reach history when the workflow task completes.
    handle = service.client.get_workflow_handle_for(BirthRegistrationWorkflow.run, workflow_id)
    assert (await handle.result()).child_person_id == child.id

    plain = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                 data_converter=pydantic_data_converter)  # no codec: what the server stores
    stored = (await plain.get_workflow_handle(workflow_id).fetch_history()).to_json_dict()
    text = history_plaintext(stored)
    for personal in (child.full_name, child.personal_id_number, fam.mother.full_name, fam.mother.id_number,
                     fam.street, str(child.id)):  # (the registration number is in the workflow id, not sealed)
        assert personal not in text and json.dumps(personal)[1:-1] not in text
    assert load_keys(settings).current_id in encryption_key_ids(stored)

    decoded = history_plaintext(stored, codec_of(service.client))
    assert str(child.id) in decoded and reg in decoded
