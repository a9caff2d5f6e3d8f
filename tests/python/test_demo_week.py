"""The in-process path of `make demo` (used where terraform is absent) runs the same week as tier 3 and ends in
the same state: this keeps the demo's fallback honest without terraform."""

from __future__ import annotations

from scripts.local_aws import in_process_aws
from tests.e2e import scenario

POLICY = "ops-automation:policy"
SOURCE_INSTANCE = "ops-automation:source-instance"
SLOT = "ops-automation:slot"


def test_in_process_week_keeps_generations_and_purges_only_managed_backups() -> None:
    region = scenario.example_region()
    with in_process_aws(region) as aws:
        deployment = scenario.in_process_deployment(aws)
        week = scenario.run_week(aws, deployment)
        state = scenario.final_state(aws, deployment)

    kept: dict[str, list[str]] = {}
    for image in state.images.values():
        tags = {tag["Key"]: tag["Value"] for tag in image.get("Tags", [])}
        if tags.get(POLICY) == deployment.policy_name:
            kept.setdefault(tags[SOURCE_INSTANCE], []).append(tags[SLOT])
    slots = [day.slot for day in week.days]
    for instance_id in week.fleet.backed_up:
        assert sorted(kept[instance_id]) == slots[-deployment.generations :], instance_id
    assert week.fleet.untagged not in kept
    assert week.fleet.unmanaged_image in state.images
    assert week.purged
    purged_snapshots = {snapshot for backup in week.purged for snapshot in backup.snapshots}
    assert purged_snapshots
    assert not purged_snapshots & set(state.snapshots)
    assert state.dlq_messages == 0
    assert week.log.at("ERROR", "CRITICAL") == []
