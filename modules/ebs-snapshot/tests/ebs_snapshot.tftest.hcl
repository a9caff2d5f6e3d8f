# Plan-level checks of the ebs-snapshot module with a mocked AWS provider: IAM guard rails per snapshot mode,
# the event rule of each mode, wiring of inputs into the internal module, and input validation.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      id   = "ap-northeast-1"
      name = "ap-northeast-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  name                = "hourly"
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  volume_tags         = { Snapshot = "daily" }
  generations         = 3
}

run "statements_carry_the_ownership_they_need" {
  command = plan

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "request"
      if anytrue([for r in s.resources : strcontains(r, ":snapshot/")]) && anytrue([for a in s.actions : startswith(a, "ec2:Create")])
    ])
    error_message = "CreateSnapshot(s) and CreateTags on snapshots must require the ownership request tags."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "none"
      if anytrue([for r in s.resources : strcontains(r, ":volume/") || strcontains(r, ":instance/")])
    ])
    error_message = "Statements on the source volumes and instances (not ours) must not require the ownership tags."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : length(s.resources) > 0 && alltrue([for r in s.resources : !(strcontains(r, ":snapshot/") && (strcontains(r, ":volume/") || strcontains(r, ":instance/")))])
    ])
    error_message = "Source and snapshot resources must be in separate statements: their condition keys differ."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "resource" && tolist(s.resources) == tolist(["arn:aws:ec2:*::snapshot/*"])
      if contains(s.actions, "ec2:DeleteSnapshot")
    ])
    error_message = "DeleteSnapshot must require the ownership resource tags, on snapshots only."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : tolist([for c in s.conditions : "${c.variable}=${join(",", c.values)}"]) == tolist(["ec2:CreateAction=CreateSnapshot"])
      if contains(s.actions, "ec2:CreateTags")
    ])
    error_message = "In volume mode CreateTags must only be allowed as part of CreateSnapshot."
  }

  assert {
    condition = alltrue([
      for s in concat(local.planner_statements, local.worker_statements) : alltrue([for a in s.actions : startswith(a, "ec2:Describe")])
      if contains(s.resources, "*")
    ])
    error_message = "Only read-only Describe* actions may use a * resource."
  }

  assert {
    condition     = toset(flatten([for s in local.planner_statements : s.actions])) == toset(["ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"])
    error_message = "The planner may only describe instances, volumes and snapshots."
  }

  assert {
    condition = toset(flatten([for s in local.worker_statements : s.actions])) == toset([
      "ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:DescribeLockedSnapshots",
      "ec2:CreateSnapshot", "ec2:CreateTags", "ec2:DeleteSnapshot",
    ])
    error_message = "In volume mode the worker's actions are exactly the EC2 calls of the handler, without CreateSnapshots and, without volume_kms_key_arns, without KMS."
  }
}

run "volume_mode_on_tagged_volumes_only" {
  command = plan

  variables {
    volume_tags = { Snapshot = "daily", Env = "prod" }
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateSnapshotOfTaggedVolumes" && tolist(s.actions) == tolist(["ec2:CreateSnapshot"]) && tolist(s.resources) == tolist(["arn:aws:ec2:*:*:volume/*"])
      && toset([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringEquals aws:ResourceTag/Env=prod", "StringEquals aws:ResourceTag/Snapshot=daily",
      ])
    ])
    error_message = "Tag-targeted, CreateSnapshot on volumes must require every volume tag on the volume."
  }

  assert {
    condition = (
      toset([for s in local.worker_statements : s.sid if anytrue([for r in s.resources : strcontains(r, ":volume/")])]) == toset(["CreateSnapshotOfTaggedVolumes"])
    )
    error_message = "Without volume_ids or instance targets, the tagged-volume statement is the only one on volumes."
  }
}

run "volume_mode_on_listed_volumes_only" {
  command = plan

  variables {
    volume_tags = {}
    volume_ids  = ["vol-0123456789abcdef0", "vol-12345678"]
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateSnapshotOfListedVolumes" && tolist(s.resources) == tolist([
        "arn:aws:ec2:ap-northeast-1:111122223333:volume/vol-0123456789abcdef0",
        "arn:aws:ec2:ap-northeast-1:111122223333:volume/vol-12345678",
      ]) && length(s.conditions) == 0
    ])
    error_message = "Id-targeted, CreateSnapshot is allowed on exactly those volumes of the deployment account and region."
  }

  assert {
    condition     = alltrue([for s in local.worker_statements : s.sid != "CreateSnapshotOfTaggedVolumes" && s.sid != "CreateSnapshotOfInstanceVolumes"])
    error_message = "Without volume_tags or instance targets there is no statement on tagged volumes or on every volume."
  }

  assert {
    condition     = tolist(jsondecode(output.function_environment_variables["OPS_VOLUME_IDS"])) == var.volume_ids
    error_message = "volume_ids must reach the functions as a JSON list."
  }
}

run "volume_mode_with_instance_targets_needs_every_volume" {
  command = plan

  variables {
    volume_ids    = ["vol-0123456789abcdef0"]
    instance_tags = { Backup = "volumes" }
  }

  assert {
    condition = (
      toset([for s in local.worker_statements : s.sid if anytrue([for r in s.resources : strcontains(r, ":volume/")])]) == toset(["CreateSnapshotOfInstanceVolumes"]) &&
      anytrue([
        for s in local.worker_statements :
        s.sid == "CreateSnapshotOfInstanceVolumes" && tolist(s.resources) == tolist(["arn:aws:ec2:*:*:volume/*"]) && length(s.conditions) == 0 && s.ownership == "none"
      ])
    )
    error_message = "The volumes of targeted instances carry no known tag: CreateSnapshot must be allowed on volume/*, which covers listed and tagged volumes too."
  }

  assert {
    condition     = alltrue([for s in local.worker_statements : !contains(s.actions, "ec2:CreateSnapshots")])
    error_message = "Volume mode never calls CreateSnapshots."
  }
}

run "instance_mode_on_tagged_and_listed_instances" {
  command = plan

  variables {
    snapshot_mode       = "instance"
    volume_tags         = {}
    instance_tags       = { Backup = "sets", Env = "prod" }
    instance_ids        = ["i-0123456789abcdef0"]
    exclude_root_volume = true
    exclude_volume_tags = { Scratch = "true" }
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateSnapshotsOfTaggedInstances" && tolist(s.actions) == tolist(["ec2:CreateSnapshots"]) && tolist(s.resources) == tolist(["arn:aws:ec2:*:*:instance/*"])
      && toset([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringEquals aws:ResourceTag/Backup=sets", "StringEquals aws:ResourceTag/Env=prod",
      ])
    ])
    error_message = "Tag-targeted, CreateSnapshots on instances must require every instance tag on the instance."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateSnapshotsOfListedInstances" && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-1:111122223333:instance/i-0123456789abcdef0"])
    ])
    error_message = "Id-targeted, CreateSnapshots is allowed on exactly those instances of the deployment account and region."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateSnapshotsOfInstanceVolumes" && tolist(s.actions) == tolist(["ec2:CreateSnapshots"]) && tolist(s.resources) == tolist(["arn:aws:ec2:*:*:volume/*"]) && s.ownership == "none"
    ])
    error_message = "CreateSnapshots is authorised on each volume of the instance too: volume/* without ownership."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateSnapshotsOnlyWithOwnershipTags" && tolist(s.actions) == tolist(["ec2:CreateSnapshots"]) && tolist(s.resources) == tolist(["arn:aws:ec2:*::snapshot/*"]) && s.ownership == "request"
    ])
    error_message = "The snapshots of a set must be created with the ownership request tags."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : tolist([for c in s.conditions : "${c.variable}=${join(",", c.values)}"]) == tolist(["ec2:CreateAction=CreateSnapshots"])
      if contains(s.actions, "ec2:CreateTags")
    ])
    error_message = "In instance mode CreateTags must only be allowed as part of CreateSnapshots."
  }

  assert {
    condition = toset(flatten([for s in local.worker_statements : s.actions])) == toset([
      "ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:DescribeLockedSnapshots",
      "ec2:CreateSnapshots", "ec2:CreateTags", "ec2:DeleteSnapshot",
    ])
    error_message = "In instance mode the worker's actions are exactly the EC2 calls of the handler, without CreateSnapshot."
  }

  assert {
    condition = (
      keys(local.event_patterns) == ["snapshot-set-state"] &&
      jsondecode(local.event_patterns["snapshot-set-state"]) == {
        source        = ["aws.ec2"]
        "detail-type" = ["EBS Multi-Volume Snapshots Completion Status"]
        detail        = { event = ["createSnapshots"] }
      }
    )
    error_message = "Instance mode forwards only the multi-volume completion events (succeeded and failed) of createSnapshots."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_SNAPSHOT_MODE"] == "instance" &&
      output.function_environment_variables["OPS_EXCLUDE_ROOT_VOLUME"] == "true" &&
      jsondecode(output.function_environment_variables["OPS_EXCLUDE_VOLUME_TAGS"]) == { Scratch = "true" } &&
      jsondecode(output.function_environment_variables["OPS_TARGET_TAGS"]) == { Backup = "sets", Env = "prod" } &&
      tolist(jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"])) == var.instance_ids &&
      output.function_environment_variables["OPS_VOLUME_IDS"] == "[]" &&
      output.function_environment_variables["OPS_VOLUME_TAGS"] == "{}"
    )
    error_message = "Mode, instance targets and volume filters must reach the functions' environment."
  }
}

run "volume_keys_only_when_listed" {
  command = plan

  variables {
    volume_kms_key_arns = ["arn:aws:kms:ap-northeast-1:111122223333:key/0b1e4c2a-1111-2222-3333-444455556666"]
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "GrantVolumeKeysToEbs" && tolist(s.actions) == tolist(["kms:CreateGrant"]) && tolist(s.resources) == var.volume_kms_key_arns
      && tolist([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == tolist(["Bool kms:GrantIsForAWSResource=true", "StringLike kms:ViaService=ec2.*.amazonaws.com"])
    ])
    error_message = "CreateGrant on the volume keys must be limited to grants for AWS resources, through EC2."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "UseVolumeKeysThroughEbs" && tolist(s.resources) == var.volume_kms_key_arns && toset(s.actions) == toset([
        "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo",
      ])
      && tolist([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == tolist(["StringLike kms:ViaService=ec2.*.amazonaws.com"])
    ])
    error_message = "The worker gets the EBS encryption actions on exactly the listed volume keys, through EC2 only."
  }

  assert {
    condition     = alltrue([for s in local.planner_statements : alltrue([for a in s.actions : !startswith(a, "kms:")])])
    error_message = "The planner never needs the volume keys."
  }
}

run "volume_mode_event_rule" {
  command = plan

  assert {
    condition = (
      keys(local.event_patterns) == ["snapshot-state"] &&
      jsondecode(local.event_patterns["snapshot-state"]) == {
        source        = ["aws.ec2"]
        "detail-type" = ["EBS Snapshot Notification"]
        detail        = { event = ["createSnapshot"], result = ["succeeded", "failed"] }
      }
    )
    error_message = "Volume mode forwards only the createSnapshot results (succeeded, failed), not copySnapshot or others."
  }
}

run "listed_sources_in_other_regions_and_accounts" {
  command = plan

  variables {
    volume_tags      = {}
    volume_ids       = ["vol-0123456789abcdef0"]
    regions          = ["ap-northeast-1", "us-east-1"]
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-target"]
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateSnapshotOfListedVolumes" && tolist(s.resources) == tolist(["arn:aws:ec2:*:444455556666:volume/vol-0123456789abcdef0"])
    ])
    error_message = "Volume ARNs must widen to * only where several regions or accounts are targeted."
  }

  assert {
    condition = (
      tolist(jsondecode(output.function_environment_variables["OPS_TARGET_ROLE_ARNS"])) == var.target_role_arns &&
      tolist(jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"])) == var.regions
    )
    error_message = "Target roles and regions must reach the functions as JSON lists."
  }
}

run "schedule_queue_and_environment_wiring" {
  command = plan

  assert {
    condition     = output.schedule.timezone == "Asia/Tokyo" && output.schedule.expression == "cron(0 1 * * ? *)"
    error_message = "Schedule expression and timezone must be passed through to EventBridge Scheduler."
  }

  assert {
    condition     = output.function_timeouts["worker"] == 300 && output.function_timeouts["planner"] == 300 && output.work_queue_visibility_timeout_seconds >= 6 * output.function_timeouts["worker"]
    error_message = "Planner and worker get 300 s; the work queue visibility timeout must be at least 6 x the worker timeout."
  }

  assert {
    condition     = output.planner_handler == "ops_automation.ebs_snapshot.handlers.plan_handler" && output.worker_handler == "ops_automation.ebs_snapshot.handlers.work_handler"
    error_message = "The handler strings must follow the ops_automation/<module>/handlers.py layout."
  }

  assert {
    condition     = output.missed_run_alarm_hours == 25
    error_message = "A daily schedule alarms after 24 h + 1 h without a planner run."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_GENERATIONS"] == "3" &&
      output.function_environment_variables["OPS_MAX_AGE_DAYS"] == "" &&
      output.function_environment_variables["OPS_SNAPSHOT_MODE"] == "volume" &&
      output.function_environment_variables["OPS_COPY_VOLUME_TAGS"] == "true" &&
      output.function_environment_variables["OPS_DRY_RUN"] == "false" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "720" &&
      output.function_environment_variables["OPS_LEDGER_TTL_DAYS"] == "400" &&
      output.function_environment_variables["OPS_ALERT_TOPIC_ARN"] == "" &&
      jsondecode(output.function_environment_variables["OPS_VOLUME_TAGS"]) == { Snapshot = "daily" } &&
      output.function_environment_variables["OPS_VOLUME_IDS"] == "[]" &&
      output.function_environment_variables["OPS_INSTANCE_IDS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_TAGS"] == "{}" &&
      output.function_environment_variables["OPS_EXCLUDE_VOLUME_TAGS"] == "{}" &&
      output.function_environment_variables["OPS_EXCLUDE_ROOT_VOLUME"] == "false" &&
      jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"]) == [] &&
      output.function_environment_variables["POWERTOOLS_SERVICE_NAME"] == "ebs-snapshot" &&
      output.function_environment_variables["OPS_POLICY_NAME"] == "hourly" &&
      !contains(keys(output.function_environment_variables), "OPS_NO_REBOOT")
    )
    error_message = "The functions' environment must follow the contract (JSON lists/maps, true/false, empty max age, the mode)."
  }
}

run "max_age_and_flags_reach_the_environment" {
  command = plan

  variables {
    max_age_days        = 30
    dry_run             = true
    copy_volume_tags    = false
    exclude_root_volume = true
    instance_ids        = ["i-0123456789abcdef0", "i-12345678"]
    alarm_sns_topic_arn = "arn:aws:sns:ap-northeast-1:111122223333:alerts"
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_MAX_AGE_DAYS"] == "30" &&
      output.function_environment_variables["OPS_DRY_RUN"] == "true" &&
      output.function_environment_variables["OPS_COPY_VOLUME_TAGS"] == "false" &&
      output.function_environment_variables["OPS_EXCLUDE_ROOT_VOLUME"] == "true" &&
      output.function_environment_variables["OPS_ALERT_TOPIC_ARN"] == var.alarm_sns_topic_arn &&
      tolist(jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"])) == var.instance_ids
    )
    error_message = "Optional inputs must reach the functions' environment."
  }
}

run "each_target_alone_is_enough" {
  command = plan

  variables {
    volume_tags  = {}
    instance_ids = ["i-0123456789abcdef0"]
  }
}

run "rejects_no_targets" {
  command = plan

  variables {
    volume_tags = {}
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_instance_mode_without_instance_targets" {
  command = plan

  variables {
    snapshot_mode = "instance"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_instance_mode_with_volume_targets" {
  command = plan

  variables {
    snapshot_mode = "instance"
    volume_tags   = {}
    volume_ids    = ["vol-0123456789abcdef0"]
    instance_tags = { Backup = "sets" }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_unknown_snapshot_mode" {
  command = plan

  variables {
    snapshot_mode = "fleet"
  }

  expect_failures = [var.snapshot_mode]
}

run "rejects_malformed_volume_id" {
  command = plan

  variables {
    volume_ids = ["vol-0123456789ABCDEF0", "vol-123", "i-0123456789abcdef0"]
  }

  expect_failures = [var.volume_ids]
}

run "rejects_malformed_instance_id" {
  command = plan

  variables {
    instance_ids = ["i-0123456789ABCDEF0", "i-123"]
  }

  expect_failures = [var.instance_ids]
}

run "rejects_zero_generations" {
  command = plan

  variables {
    generations = 0
  }

  expect_failures = [var.generations]
}

run "rejects_too_many_generations" {
  command = plan

  variables {
    generations = 1001
  }

  expect_failures = [var.generations]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "hourly snapshots!"
  }

  expect_failures = [var.name]
}

run "rejects_bad_schedule_expression" {
  command = plan

  variables {
    schedule_expression = "0 1 * * *"
  }

  expect_failures = [var.schedule_expression]
}

run "rejects_bad_region" {
  command = plan

  variables {
    regions = ["tokyo"]
  }

  expect_failures = [var.regions]
}

run "rejects_non_role_arn" {
  command = plan

  variables {
    target_role_arns = ["arn:aws:iam::444455556666:user/alice"]
  }

  expect_failures = [var.target_role_arns]
}

run "rejects_zero_max_age" {
  command = plan

  variables {
    max_age_days = 0
  }

  expect_failures = [var.max_age_days]
}

run "rejects_short_completion_timeout" {
  command = plan

  variables {
    completion_timeout_minutes = 10
  }

  expect_failures = [var.completion_timeout_minutes]
}

run "rejects_unsupported_log_retention" {
  command = plan

  variables {
    log_retention_days = 10
  }

  expect_failures = [var.log_retention_days]
}

run "rejects_aws_tag_keys" {
  command = plan

  variables {
    volume_tags   = { "aws:cloudformation:stack-name" = "x" }
    instance_tags = { "AWS:backup" = "x" }
  }

  expect_failures = [var.volume_tags, var.instance_tags]
}

run "rejects_key_alias_for_volume_keys" {
  command = plan

  variables {
    volume_kms_key_arns = ["arn:aws:kms:ap-northeast-1:111122223333:alias/ebs"]
  }

  expect_failures = [var.volume_kms_key_arns]
}

run "rejects_worker_concurrency_below_two" {
  command = plan

  variables {
    worker_max_concurrency = 1
  }

  expect_failures = [var.worker_max_concurrency]
}

run "rejects_missed_run_hours_over_seven_days" {
  command = plan

  variables {
    missed_run_alarm_hours = 200
  }

  expect_failures = [var.missed_run_alarm_hours]
}

run "target_role_external_id_reaches_the_functions" {
  command = plan

  variables {
    target_role_external_id = "hub-7f3a:landing/zone"
  }

  assert {
    condition     = output.function_environment_variables["OPS_TARGET_ROLE_EXTERNAL_ID"] == "hub-7f3a:landing/zone"
    error_message = "target_role_external_id reaches the functions as OPS_TARGET_ROLE_EXTERNAL_ID."
  }
}

run "no_target_role_external_id_is_an_empty_variable" {
  command = plan

  assert {
    condition     = output.function_environment_variables["OPS_TARGET_ROLE_EXTERNAL_ID"] == ""
    error_message = "Without target_role_external_id, OPS_TARGET_ROLE_EXTERNAL_ID is empty (no ExternalId is sent)."
  }
}

run "rejects_a_target_role_external_id_with_white_space" {
  command = plan

  variables {
    target_role_external_id = "hub id"
  }

  expect_failures = [var.target_role_external_id]
}

################################################################################
# Landing-zone targeting: target_accounts, target_organizational_units, target_role_name,
# target_organization_id, organizations_role_arn, regions = ["all-enabled"]
################################################################################

run "organization_targeting_reaches_the_functions" {
  command = plan

  variables {
    target_accounts             = ["444455556666"]
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }, { id = "r-ab12", recursive = false }]
    target_role_name            = "ops-automation-ebs-snapshot"
    target_organization_id      = "o-a1b2c3d4e5"
    regions                     = ["all-enabled"]
    exclude_accounts            = ["777788889999"]
  }

  assert {
    condition     = jsondecode(output.function_environment_variables["OPS_EXCLUDE_ACCOUNTS"]) == ["777788889999"]
    error_message = "exclude_accounts reaches the functions as OPS_EXCLUDE_ACCOUNTS."
  }

  assert {
    condition = (
      jsondecode(output.function_environment_variables["OPS_TARGET_ACCOUNTS"]) == ["444455556666"] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_ORGANIZATIONAL_UNITS"]) == [
        { id = "ou-ab12-cdef3456", recursive = true }, { id = "r-ab12", recursive = false },
      ] &&
      output.function_environment_variables["OPS_TARGET_ROLE_NAME"] == "ops-automation-ebs-snapshot" &&
      output.function_environment_variables["OPS_ORGANIZATIONS_ROLE_ARN"] == "" &&
      jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"]) == ["all-enabled"] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_ROLE_ARNS"]) == []
    )
    error_message = "Accounts, OUs (recursive unless said otherwise), the role name and all-enabled regions reach the functions."
  }

  assert {
    condition     = output.organizations_role_policy_json != null
    error_message = "With OUs the policy of the organizations role is an output."
  }

  assert {
    condition     = local.listed_account == "*" && local.listed_region == "*"
    error_message = "Resources of target accounts and OUs in every enabled region are named with * account and region, never the hub's."
  }
}

run "one_target_account_names_it_in_the_resources" {
  command = plan

  variables {
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-ebs-snapshot"
    regions          = ["us-east-1"]
  }

  assert {
    condition     = local.listed_account == "444455556666" && local.listed_region == "us-east-1"
    error_message = "One target account and one region narrow the resource ARNs to them."
  }

  assert {
    condition     = output.organizations_role_policy_json == null && output.function_environment_variables["OPS_TARGET_ORGANIZATIONAL_UNITS"] == "[]"
    error_message = "Explicit accounts need no Organizations access."
  }
}

run "organizations_role_reaches_the_functions" {
  command = plan

  variables {
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }]
    target_role_name            = "ops-automation-ebs-snapshot"
    target_organization_id      = "o-a1b2c3d4e5"
    organizations_role_arn      = "arn:aws:iam::999988887777:role/ops-automation-organizations"
  }

  assert {
    condition     = output.function_environment_variables["OPS_ORGANIZATIONS_ROLE_ARN"] == "arn:aws:iam::999988887777:role/ops-automation-organizations"
    error_message = "organizations_role_arn reaches the functions as OPS_ORGANIZATIONS_ROLE_ARN."
  }
}

run "classic_targeting_sets_the_landing_zone_variables_empty" {
  command = plan

  assert {
    condition = (
      output.function_environment_variables["OPS_TARGET_ACCOUNTS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_ORGANIZATIONAL_UNITS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_ROLE_NAME"] == "" &&
      output.function_environment_variables["OPS_ORGANIZATIONS_ROLE_ARN"] == "" &&
      output.organizations_role_policy_json == null
    )
    error_message = "Without landing-zone targeting its variables are set, empty."
  }
}

run "rejects_target_role_arns_with_target_accounts" {
  command = plan

  variables {
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-ebs-snapshot"]
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-ebs-snapshot"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_instance_ids_with_organizational_units" {
  command = plan

  variables {
    instance_ids                = ["i-0123456789abcdef0"]
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }]
    target_role_name            = "ops-automation-ebs-snapshot"
    target_organization_id      = "o-a1b2c3d4e5"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_volume_ids_with_organizational_units" {
  command = plan

  variables {
    volume_ids                  = ["vol-0123456789abcdef0"]
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }]
    target_role_name            = "ops-automation-ebs-snapshot"
    target_organization_id      = "o-a1b2c3d4e5"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_target_accounts_without_target_role_name" {
  command = plan

  variables {
    target_accounts = ["444455556666"]
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_target_role_name_without_accounts" {
  command = plan

  variables {
    target_role_name = "ops-automation-ebs-snapshot"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_exclude_accounts_without_accounts" {
  command = plan

  variables {
    exclude_accounts = ["777788889999"]
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_organizational_units_without_organization_id" {
  command = plan

  variables {
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }]
    target_role_name            = "ops-automation-ebs-snapshot"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_organization_id_or_role_without_organizational_units" {
  command = plan

  variables {
    target_accounts        = ["444455556666"]
    target_role_name       = "ops-automation-ebs-snapshot"
    target_organization_id = "o-a1b2c3d4e5"
    organizations_role_arn = "arn:aws:iam::999988887777:role/ops-automation-organizations"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_all_enabled_regions_without_target_accounts" {
  command = plan

  variables {
    regions = ["all-enabled"]
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_all_enabled_next_to_other_regions" {
  command = plan

  variables {
    regions          = ["all-enabled", "us-east-1"]
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-ebs-snapshot"
  }

  expect_failures = [var.regions]
}

run "rejects_malformed_landing_zone_inputs" {
  command = plan

  variables {
    target_accounts             = ["4444-5555-6666"]
    target_organizational_units = [{ id = "OU-AB12" }]
    target_role_name            = "bad name"
    target_organization_id      = "org-1"
    organizations_role_arn      = "arn:aws:iam::999988887777:user/alice"
    exclude_accounts            = ["7777-8888-9999"]
  }

  expect_failures = [
    var.exclude_accounts,
    var.target_accounts,
    var.target_organizational_units,
    var.target_role_name,
    var.target_organization_id,
    var.organizations_role_arn,
  ]
}

################################################################################
# Restore tests (restore_test)
################################################################################

run "restore_tests_are_off_by_default" {
  command = plan

  assert {
    condition     = output.restore_function_name == null && output.restore_schedule == null && output.restore_event_rule_arn == null
    error_message = "Without restore_test there is no restore function, schedule or volume-state rule."
  }

  assert {
    condition     = output.function_environment_variables["OPS_RESTORE_TEST"] == ""
    error_message = "Without restore_test, OPS_RESTORE_TEST is set and empty (restore tests off)."
  }

  assert {
    condition     = length(local.restore_worker_statements) == 0 && !contains(flatten([for s in local.worker_statements : s.actions]), "ec2:CreateVolume")
    error_message = "Without restore_test the worker may not create or delete volumes."
  }
}

run "restore_tests_reach_the_functions" {
  command = plan

  variables {
    restore_test = {
      schedule_expression = "cron(0 3 ? * SUN *)"
      schedule_timezone   = "Asia/Tokyo"
      subnet_id           = "subnet-0123456789abcdef0"
      security_group_id   = "sg-0123456789abcdef0"
      sources             = "tagged"
      source_tags         = { Tier = "gold" }
      volume_type         = "gp2"
      kms_key_arns        = ["arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
    }
  }

  assert {
    condition     = output.restore_handler == "ops_automation.ebs_snapshot.handlers.restore_handler" && output.restore_schedule.expression == "cron(0 3 ? * SUN *)" && output.restore_schedule.timezone == "Asia/Tokyo"
    error_message = "restore_test deploys the restore planner on its own schedule."
  }

  assert {
    condition = jsondecode(output.function_environment_variables["OPS_RESTORE_TEST"]) == {
      region                = null
      role_arn              = null
      subnet_id             = "subnet-0123456789abcdef0"
      security_group_id     = "sg-0123456789abcdef0"
      sources               = "tagged"
      sample_size           = 1
      source_tags           = { Tier = "gold" }
      max_concurrent        = 2
      deadline_minutes      = 30
      instance_type         = null
      validation_document   = null
      validation_parameters = {}
      instance_profile_name = null
      volume_type           = "gp2"
      allow_routed_subnet   = false
    }
    error_message = "OPS_RESTORE_TEST is one JSON object with every RestoreTestConfig field (the AMI-only ones null or empty)."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "request" && contains([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"], "Null aws:RequestTag/ops-automation:restore-test=false")
      if contains(["RestoreCreateTaggedVolumes", "RestoreTagOnlyOnCreateVolume"], s.sid)
    ])
    error_message = "Restored volumes must carry the ownership and restore-test tags (Null = false)."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreDeleteRestoredVolumes" && s.ownership == "resource" && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-1:111122223333:volume/*"])
      && contains([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"], "Null aws:ResourceTag/ops-automation:restore-test=false")
    ])
    error_message = "Only restored volumes of this policy may be deleted."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreFromOwnSnapshots" && s.ownership == "resource" && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-1::snapshot/*"])
    ])
    error_message = "Volumes are created only from this policy's snapshots."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreMarkOwnSnapshots" && contains([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"], "ForAllValues:StringEquals aws:TagKeys=ops-automation:restore-result,ops-automation:restore-tested")
    ])
    error_message = "The worker may write only the two restore tags onto this policy's snapshots."
  }

  assert {
    condition     = toset(flatten([for s in local.restore_statements : s.actions])) == toset(["ec2:DescribeSnapshots"])
    error_message = "The restore planner only reads the snapshots."
  }

  assert {
    condition     = output.missed_run_alarm_hours == 25
    error_message = "The backup planner's missed-run alarm is unchanged by the weekly restore schedule."
  }
}

run "rejects_restore_tests_with_organizational_units" {
  command = plan

  variables {
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }]
    target_role_name            = "ops-automation-ebs-snapshot"
    target_organization_id      = "o-a1b2c3d4e5"
    restore_test = {
      schedule_expression = "rate(7 days)"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
    }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_a_restore_role_without_target_role_arns" {
  command = plan

  variables {
    restore_test = {
      schedule_expression = "rate(7 days)"
      role_arn            = "arn:aws:iam::777788889999:role/ops-automation-ebs-snapshot"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
    }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_a_restore_region_outside_regions" {
  command = plan

  variables {
    regions = ["us-east-1"]
    restore_test = {
      schedule_expression = "rate(7 days)"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
    }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_malformed_restore_tests" {
  command = plan

  variables {
    restore_test = {
      schedule_expression = "rate(7 days)"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
      volume_type         = "gp9"
      kms_key_arns        = ["alias/backups"]
    }
  }

  expect_failures = [var.restore_test]
}
