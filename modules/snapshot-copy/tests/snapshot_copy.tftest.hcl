# Plan-level checks of the snapshot-copy module with a mocked AWS provider (source region ap-northeast-1):
# the IAM statements for same-account and cross-account destinations, the events, the environment contract
# and input validation.

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
  name            = "dr-copy"
  source_policies = ["daily"]
  destinations = {
    ap-northeast-3 = {
      kms_key_arn = "arn:aws:kms:ap-northeast-3:111122223333:key/0b1e4c2a-1111-2222-3333-444455556666"
    }
  }
}

run "same_account_destination" {
  command = plan

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CopyFromPoliciesSnapshots" && s.ownership == "source" && tolist(s.actions) == tolist(["ec2:CopySnapshot"])
      && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-1::snapshot/*"])
      && tolist([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == tolist([
        "StringEquals aws:ResourceTag/ops-automation:managed-by=terraform-aws-ops-automation",
        "StringEquals aws:ResourceTag/ops-automation:policy=daily",
      ])
    ])
    error_message = "The sources are copied only when they carry the managed-by tag and a listed policy tag, in the source region only."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CopySnapshotOnlyWithOwnershipTags" && s.ownership == "request" && tolist(s.actions) == tolist(["ec2:CopySnapshot"])
      && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-3::snapshot/*"])
    ])
    error_message = "The copies are created only with the ownership request tags, in the destination region only."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : tolist([for c in s.conditions : "${c.variable}=${join(",", c.values)}"]) == tolist(["ec2:CreateAction=CopySnapshot"]) && s.ownership == "request"
      if contains(s.actions, "ec2:CreateTags")
    ])
    error_message = "CreateTags only as part of CopySnapshot, with the ownership request tags."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "resource" && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-3::snapshot/*"])
      if contains(s.actions, "ec2:DeleteSnapshot")
    ])
    error_message = "DeleteSnapshot only on this policy's copies in the destination region."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : !contains(s.actions, "ec2:ModifySnapshotAttribute") && !contains(s.actions, "sts:AssumeRole") && !contains(s.actions, "ec2:CopyImage")
    ])
    error_message = "A same-account snapshot destination shares nothing, assumes no role and copies no AMI."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "UseCopyKeysThroughEbs" && tolist(s.resources) == tolist([var.destinations["ap-northeast-3"].kms_key_arn, "arn:aws:kms:ap-northeast-1:111122223333:key/*"])
      && toset(s.actions) == toset(["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"])
      && tolist([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == tolist(["StringLike kms:ViaService=ec2.*.amazonaws.com"])
    ])
    error_message = "The documented KMS actions on the destination key and the source region's keys, through EC2 only."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "GrantCopyKeysToEbs" && tolist(s.actions) == tolist(["kms:CreateGrant"])
      && tolist([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == tolist(["Bool kms:GrantIsForAWSResource=true", "StringLike kms:ViaService=ec2.*.amazonaws.com"])
    ])
    error_message = "CreateGrant only for AWS resources, through EC2."
  }

  assert {
    condition     = alltrue([for s in local.planner_statements : alltrue([for a in s.actions : can(regex("^ec2:Describe", a))])])
    error_message = "The planner only reads."
  }

  assert {
    condition = (
      toset(keys(local.event_patterns)) == toset(["snapshot-created", "snapshot-set-created", "copy-result"]) &&
      jsondecode(local.event_patterns["copy-result"]) == {
        source        = ["aws.ec2"]
        region        = ["ap-northeast-3"]
        "detail-type" = ["EBS Snapshot Notification", "EBS Copy Snapshot Missed Completion Duration"]
        detail        = { event = ["copySnapshot"] }
      } &&
      jsondecode(local.event_patterns["snapshot-created"]).detail == { event = ["createSnapshot"], result = ["succeeded"] }
    )
    error_message = "Snapshot sources come from createSnapshot(s) events; copy results only from the destination regions."
  }

  assert {
    condition = (
      jsondecode(output.function_environment_variables["OPS_COPY_DESTINATIONS"]) == {
        ap-northeast-3 = { kms_key_arn = var.destinations["ap-northeast-3"].kms_key_arn, role_arn = null, completion_duration_minutes = null }
      } &&
      output.function_environment_variables["OPS_COPY_IMAGES"] == "false" &&
      output.function_environment_variables["OPS_ENCRYPTED"] == "true" &&
      jsondecode(output.function_environment_variables["OPS_SOURCE_POLICIES"]) == ["daily"] &&
      output.function_environment_variables["OPS_SOURCE_IDS"] == "[]" &&
      output.function_environment_variables["OPS_SOURCE_TAGS"] == "{}" &&
      output.function_environment_variables["OPS_TARGET_REGIONS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_ROLE_ARNS"] == "[]" &&
      output.function_environment_variables["OPS_GENERATIONS"] == "7" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "1440" &&
      output.function_environment_variables["POWERTOOLS_SERVICE_NAME"] == "snapshot-copy" &&
      !contains(keys(output.function_environment_variables), "OPS_VOLUME_IDS")
    )
    error_message = "The functions' environment must follow the contract (every destination key present, no targets group)."
  }

  assert {
    condition = (
      output.schedule.expression == "rate(6 hours)" &&
      output.planner_handler == "ops_automation.snapshot_copy.handlers.plan_handler" &&
      output.worker_handler == "ops_automation.snapshot_copy.handlers.work_handler" &&
      output.event_bus_arn == "arn:aws:events:ap-northeast-1:111122223333:event-bus/default" &&
      tolist(output.destination_regions) == tolist(["ap-northeast-3"]) &&
      output.destination_role_policy_json == null &&
      length(aws_iam_role.forwarder) == 1 && aws_iam_role.forwarder[0].name == "dr-copy-events-ap-northeast-1"
    )
    error_message = "Catch-up every 6 hours, the handlers, the source bus and one forwarding role for the destination sub-modules."
  }
}

run "cross_account_destination" {
  command = plan

  variables {
    source_tags = { Backup = "dr" }
    source_ids  = ["snap-0123456789abcdef0"]
    destinations = {
      ap-northeast-3 = {
        role_arn                    = "arn:aws:iam::444455556666:role/dr-copy"
        kms_key_arn                 = "arn:aws:kms:ap-northeast-3:444455556666:key/0b1e4c2a-1111-2222-3333-444455556666"
        completion_duration_minutes = 120
      }
    }
  }

  assert {
    condition = toset([for s in local.worker_statements : s.sid if contains(s.actions, "ec2:ModifySnapshotAttribute")]) == toset([
      "SharePoliciesSnapshots", "ShareTaggedSnapshots", "ShareListedSnapshots",
    ])
    error_message = "One share statement per kind of source."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements :
      s.ownership == "source" && contains([for c in s.conditions : "${c.variable}=${join(",", c.values)}"], "ec2:Add/userId=444455556666")
      && contains([for c in s.conditions : "${c.variable}=${join(",", c.values)}"], "ec2:Attribute=createVolumePermission")
      if contains(s.actions, "ec2:ModifySnapshotAttribute")
    ])
    error_message = "Sources are shared only with the DR account, only as createVolumePermission."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "ShareTaggedSnapshots" && contains([for c in s.conditions : "${c.variable}=${join(",", c.values)}"], "aws:ResourceTag/Backup=dr")
    ])
    error_message = "Tagged sources are shared only when they carry every source tag."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "ShareListedSnapshots" && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-1::snapshot/snap-0123456789abcdef0"])
    ])
    error_message = "Listed sources are shared by their exact ARNs."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "AssumeDestinationRoles" && tolist(s.actions) == tolist(["sts:AssumeRole"]) && tolist(s.resources) == tolist(["arn:aws:iam::444455556666:role/dr-copy"])
    ])
    error_message = "The worker assumes exactly the destination roles."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : !contains(s.actions, "ec2:CopySnapshot") && !contains(s.actions, "ec2:DeleteSnapshot") && (!startswith(s.actions[0], "kms:") || s.sid == "DescribeSourceKeysBeforeSharing")
    ])
    error_message = "Cross-account copies are made, deleted and encrypted by the DR role, not by the worker."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "DescribeSourceKeysBeforeSharing" && tolist(s.actions) == tolist(["kms:DescribeKey"]) && length(s.conditions) == 0
      && tolist(s.resources) == tolist(["arn:aws:kms:ap-northeast-1:111122223333:key/*"])
    ])
    error_message = "Before sharing, the worker may describe the source region's keys (a direct call: no kms:ViaService)."
  }

  assert {
    condition = (
      jsondecode(output.function_environment_variables["OPS_COPY_DESTINATIONS"])["ap-northeast-3"] == {
        kms_key_arn = var.destinations["ap-northeast-3"].kms_key_arn, role_arn = var.destinations["ap-northeast-3"].role_arn, completion_duration_minutes = 120
      } &&
      jsondecode(output.function_environment_variables["OPS_SOURCE_TAGS"]) == { Backup = "dr" } &&
      jsondecode(output.function_environment_variables["OPS_SOURCE_IDS"]) == ["snap-0123456789abcdef0"]
    )
    error_message = "Role, key and completion duration of the destination, and every source setting, reach the functions."
  }

  assert {
    condition     = length(aws_iam_role.forwarder) == 0 && length(output.destination_regions) == 0 && length(data.aws_iam_policy_document.destination_role) == 1
    error_message = "Cross-account destinations need no forwarding role (their events are not forwarded) but a DR role policy."
  }
}

run "copy_images" {
  command = plan

  variables {
    copy_images     = true
    source_policies = []
    source_ids      = ["ami-0123456789abcdef0"]
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CopyFromListedImages" && s.ownership == "source" && tolist(s.actions) == tolist(["ec2:CopyImage"])
      && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-1::image/ami-0123456789abcdef0"])
    ])
    error_message = "Listed AMIs are copied by their exact ARNs."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CopyImageOnlyWithOwnershipTags" && s.ownership == "request" && tolist(s.actions) == tolist(["ec2:CopyImage"])
      && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-3::image/*", "arn:aws:ec2:ap-northeast-3::snapshot/*"])
    ])
    error_message = "The new AMI and its snapshots are created only with the ownership request tags."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "DeregisterOwnCopies" && s.ownership == "resource" && tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-3::image/*"])
    ])
    error_message = "Only this policy's copied AMIs are deregistered."
  }

  assert {
    condition     = toset(keys(local.event_patterns)) == toset(["ami-state", "copy-result"]) && output.function_environment_variables["OPS_COPY_IMAGES"] == "true"
    error_message = "AMI sources come from EC2 AMI State Change events."
  }
}

run "rejects_bad_region" {
  command = plan

  variables {
    destinations = { osaka = {} }
  }

  expect_failures = [var.destinations]
}

run "rejects_duration_not_a_multiple_of_15" {
  command = plan

  variables {
    destinations = { ap-northeast-3 = { completion_duration_minutes = 20 } }
  }

  expect_failures = [var.destinations]
}

run "rejects_duration_over_48_hours" {
  command = plan

  variables {
    destinations = { ap-northeast-3 = { completion_duration_minutes = 2895 } }
  }

  expect_failures = [var.destinations]
}

run "rejects_kms_key_of_another_region" {
  command = plan

  variables {
    destinations = { ap-northeast-3 = { kms_key_arn = "arn:aws:kms:ap-northeast-1:111122223333:key/abc" } }
  }

  expect_failures = [var.destinations]
}

run "rejects_kms_key_of_another_account_than_the_dr_role" {
  command = plan

  variables {
    destinations = { ap-northeast-3 = {
      role_arn    = "arn:aws:iam::444455556666:role/dr-copy"
      kms_key_arn = "arn:aws:kms:ap-northeast-3:111122223333:key/0b1e4c2a-1111-2222-3333-444455556666"
    } }
  }

  expect_failures = [var.destinations]
}

run "rejects_non_role_arn" {
  command = plan

  variables {
    destinations = { ap-northeast-3 = { role_arn = "arn:aws:iam::444455556666:user/dr" } }
  }

  expect_failures = [var.destinations]
}

run "rejects_no_destination" {
  command = plan

  variables {
    destinations = {}
  }

  expect_failures = [var.destinations]
}

run "rejects_source_region_as_destination" {
  command = plan

  variables {
    destinations = { ap-northeast-1 = {} }
  }

  expect_failures = [data.aws_region.current]
}

run "rejects_kms_key_without_encryption" {
  command = plan

  variables {
    encrypted = false
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_copy_images_with_role_arn" {
  command = plan

  variables {
    copy_images     = true
    source_policies = ["nightly-amis"]
    destinations    = { ap-northeast-3 = { role_arn = "arn:aws:iam::444455556666:role/dr-copy" } }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_no_source" {
  command = plan

  variables {
    source_policies = []
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_snapshot_ids_when_copying_images" {
  command = plan

  variables {
    copy_images = true
    source_ids  = ["snap-0123456789abcdef0"]
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_malformed_source_id" {
  command = plan

  variables {
    source_ids = ["snap-XYZ"]
  }

  expect_failures = [var.source_ids]
}

run "rejects_timeout_shorter_than_duration" {
  command = plan

  variables {
    completion_timeout_minutes = 60
    destinations               = { ap-northeast-3 = { completion_duration_minutes = 120 } }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "1-bad"
  }

  expect_failures = [var.name]
}

run "target_role_external_id_reaches_the_functions" {
  command = plan

  variables {
    target_role_external_id = "hub-7f3a:landing/zone"
  }

  assert {
    condition     = output.function_environment_variables["OPS_TARGET_ROLE_EXTERNAL_ID"] == "hub-7f3a:landing/zone"
    error_message = "target_role_external_id reaches the functions as OPS_TARGET_ROLE_EXTERNAL_ID (sent when the worker assumes a destination role_arn)."
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
