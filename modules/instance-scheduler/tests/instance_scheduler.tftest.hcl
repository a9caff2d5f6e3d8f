# Plan-level checks of the instance-scheduler module with a mocked AWS provider: one planner per scheduled
# action (either may be omitted), Start/StopInstances only on the targets (tags or listed ARNs), the optional
# kms:CreateGrant, Auto Scaling capacity mode and RDS (IAM, rules, preconditions), the state-change rule (narrowed
# to listed ids), wiring of inputs into the internal module, and input validation.

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
  name              = "office-hours"
  start_schedule    = "cron(0 8 ? * MON-FRI *)"
  stop_schedule     = "cron(0 20 ? * MON-FRI *)"
  schedule_timezone = "Asia/Tokyo"
  target_tags       = { Schedule = "office-hours" }
}

run "tag_targeted" {
  command = plan

  assert {
    condition     = toset(keys(module.this.function_names)) == toset(["starter", "stopper", "worker"])
    error_message = "Both schedules set: a starter, a stopper and the worker."
  }

  assert {
    condition = (
      output.schedules["starter"].expression == "cron(0 8 ? * MON-FRI *)" && output.schedules["starter"].timezone == "Asia/Tokyo" &&
      output.schedules["stopper"].expression == "cron(0 20 ? * MON-FRI *)" && output.schedules["stopper"].timezone == "Asia/Tokyo"
    )
    error_message = "Each planner runs on its own schedule, in schedule_timezone."
  }

  assert {
    condition = (
      jsondecode(local.functions.starter.schedule.input) == { action = "start" } &&
      jsondecode(local.functions.stopper.schedule.input) == { action = "stop" } &&
      local.functions.starter.handler == "ops_automation.instance_scheduler.handlers.plan_handler" &&
      local.functions.stopper.handler == local.functions.starter.handler &&
      output.worker_handler == "ops_automation.instance_scheduler.handlers.work_handler"
    )
    error_message = "Both planners run plan_handler with the action as the schedule's input; the worker runs work_handler."
  }

  assert {
    condition = (
      length(local.planner_statements) == 1 &&
      tolist(local.planner_statements[0].actions) == tolist(["ec2:DescribeInstances"]) &&
      tolist(local.planner_statements[0].resources) == tolist(["*"])
    )
    error_message = "The planners only read instances."
  }

  assert {
    condition = (
      toset(flatten([for s in local.worker_statements : s.actions])) == toset(["ec2:DescribeInstances", "ec2:StartInstances", "ec2:StopInstances"]) &&
      alltrue([for s in local.worker_statements : s.ownership == "none"])
    )
    error_message = "Without volume_kms_key_arns the worker reads, starts and stops instances, nothing else; the instances are not ours (ownership none)."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if contains(s.actions, "ec2:StartInstances")]) == 1 &&
      alltrue([
        for s in local.worker_statements : (
          s.sid == "StartStopTaggedInstances" &&
          toset(s.actions) == toset(["ec2:StartInstances", "ec2:StopInstances"]) &&
          tolist(s.resources) == tolist(["arn:aws:ec2:ap-northeast-1:111122223333:instance/*"]) &&
          [for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["StringEquals aws:ResourceTag/Schedule=office-hours"]
        ) if contains(s.actions, "ec2:StartInstances")
      ])
    )
    error_message = "Tag targeting: Start/StopInstances on the deployment region's and account's instances carrying the target tag only."
  }

  assert {
    condition = (
      keys(local.event_patterns) == ["instance-state"] &&
      jsondecode(local.event_patterns["instance-state"]) == {
        source        = ["aws.ec2"]
        "detail-type" = ["EC2 Instance State-change Notification"]
        detail        = { state = ["running", "stopped"] }
      }
    )
    error_message = "One rule: EC2 Instance State-change Notification, states running and stopped, to the work queue."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_SCHEDULE_TIMEZONE"] == "Asia/Tokyo" &&
      output.function_environment_variables["OPS_EXCLUDED_DATES"] == "[]" &&
      output.function_environment_variables["OPS_OPT_OUT_TAG_KEY"] == "ops-automation:no-schedule" &&
      output.function_environment_variables["OPS_ASG_MODE"] == "skip" &&
      output.function_environment_variables["OPS_HIBERNATE"] == "false" &&
      output.function_environment_variables["OPS_SCHEDULE_RDS"] == "false" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "20" &&
      output.function_environment_variables["OPS_LEDGER_TTL_DAYS"] == "400" &&
      jsondecode(output.function_environment_variables["OPS_TARGET_TAGS"]) == { Schedule = "office-hours" } &&
      output.function_environment_variables["OPS_INSTANCE_IDS"] == "[]" &&
      output.function_environment_variables["POWERTOOLS_SERVICE_NAME"] == "instance-scheduler" &&
      output.function_environment_variables["OPS_POLICY_NAME"] == "office-hours" &&
      !contains(keys(output.function_environment_variables), "OPS_GENERATIONS")
    )
    error_message = "The module's own variables, the completion group (deadline 20 minutes) and the targets reach the functions; no retention group."
  }
}

run "id_targeted_with_volume_keys" {
  command = plan

  variables {
    target_tags             = {}
    instance_ids            = ["i-0123456789abcdef0", "i-0fedcba9"]
    volume_kms_key_arns     = ["arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
    excluded_dates          = ["2027-01-01", "2027-01-11"]
    opt_out_tag_key         = null
    hibernate               = true
    verify_deadline_minutes = 45
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if contains(s.actions, "ec2:StopInstances")]) == 1 &&
      alltrue([
        for s in local.worker_statements : (
          s.sid == "StartStopListedInstances" && length(s.conditions) == 0 &&
          tolist(s.resources) == tolist([
            "arn:aws:ec2:ap-northeast-1:111122223333:instance/i-0123456789abcdef0",
            "arn:aws:ec2:ap-northeast-1:111122223333:instance/i-0fedcba9",
          ])
        ) if contains(s.actions, "ec2:StopInstances")
      ])
    )
    error_message = "Id targeting: Start/StopInstances on exactly the listed instance ARNs."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if contains(s.actions, "kms:CreateGrant")]) == 1 &&
      alltrue([
        for s in local.worker_statements : (
          tolist(s.actions) == tolist(["kms:CreateGrant"]) && tolist(s.resources) == tolist(var.volume_kms_key_arns) &&
          toset([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
            "Bool kms:GrantIsForAWSResource=true",
            "StringLike kms:ViaService=ec2.*.amazonaws.com",
            "ForAllValues:StringEquals kms:GrantOperations=Decrypt",
            "ForAllValues:StringEquals kms:EncryptionContextKeys=aws:ebs:id",
            "Null kms:GrantOperations=false",
            "Null kms:EncryptionContextKeys=false",
          ])
        ) if contains(s.actions, "kms:CreateGrant")
      ])
    )
    error_message = "kms:CreateGrant only on volume_kms_key_arns, only grants for EC2 to decrypt EBS volumes."
  }

  assert {
    condition     = length([for s in local.worker_statements : s if s.sid == "StartWithLicenseConfigurations"]) == 0
    error_message = "No license configuration statement when license_configuration_arns is empty."
  }

  assert {
    condition = (
      tolist(jsondecode(output.function_environment_variables["OPS_EXCLUDED_DATES"])) == tolist(["2027-01-01", "2027-01-11"]) &&
      output.function_environment_variables["OPS_OPT_OUT_TAG_KEY"] == "" &&
      output.function_environment_variables["OPS_HIBERNATE"] == "true" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "45" &&
      tolist(jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"])) == var.instance_ids &&
      output.function_environment_variables["OPS_TARGET_TAGS"] == "{}"
    )
    error_message = "Excluded dates, no opt-out tag, hibernation and the deadline reach the functions."
  }
}

run "listed_instances_in_other_regions_and_accounts" {
  command = plan

  variables {
    target_tags      = { Schedule = "office-hours" }
    instance_ids     = ["i-0123456789abcdef0"]
    regions          = ["ap-northeast-1", "ap-northeast-3"]
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-target"]
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if contains(s.actions, "ec2:StartInstances")]) == 2 &&
      [for s in local.worker_statements : s.resources[0] if s.sid == "StartStopTaggedInstances"] == ["arn:aws:ec2:*:444455556666:instance/*"] &&
      [for s in local.worker_statements : s.resources[0] if s.sid == "StartStopListedInstances"] == ["arn:aws:ec2:*:444455556666:instance/i-0123456789abcdef0"]
    )
    error_message = "Tags and ids together: one statement each, in any of several regions, in the one target account."
  }
}

run "stop_only" {
  command = plan

  variables {
    start_schedule = null
  }

  assert {
    condition     = toset(keys(module.this.function_names)) == toset(["stopper", "worker"]) && keys(output.schedules) == ["stopper"]
    error_message = "Without start_schedule there is no starter and no start schedule."
  }

  assert {
    condition     = output.starter_function_name == null && output.stopper_function_name == "office-hours-stopper"
    error_message = "The starter's name output is null in a stop-only policy."
  }
}

run "start_only" {
  command = plan

  variables {
    stop_schedule = null
  }

  assert {
    condition     = toset(keys(module.this.function_names)) == toset(["starter", "worker"]) && keys(output.schedules) == ["starter"]
    error_message = "Without stop_schedule there is no stopper and no stop schedule."
  }
}

run "rejects_no_schedule" {
  command = plan

  variables {
    start_schedule = null
    stop_schedule  = null
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_no_targets" {
  command = plan

  variables {
    target_tags = {}
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_rate_schedule" {
  command = plan

  variables {
    start_schedule = "rate(1 day)"
  }

  expect_failures = [var.start_schedule]
}

run "rejects_bad_excluded_dates" {
  command = plan

  variables {
    excluded_dates = ["2027-01-01", "2027-02-30", "01/01/2027"]
  }

  expect_failures = [var.excluded_dates]
}

run "capacity_mode" {
  command = plan

  variables {
    auto_scaling_groups = "capacity"
    target_tags         = { Schedule = "office-hours", Env = "dev" }
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_ASG_MODE"] == "capacity" &&
      toset(flatten([for s in local.planner_statements : s.actions])) == toset([
        "ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups",
      ]) &&
      toset(flatten([for s in local.worker_statements : s.actions if s.sid == "ReadAutoScalingGroups"])) == toset([
        "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities",
      ]) &&
      alltrue([for s in local.worker_statements : s.ownership == "none"])
    )
    error_message = "Capacity mode: the planners also read groups; nothing the module owns is involved (ownership none)."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if s.sid == "ResizeTaggedGroups"]) == 1 &&
      alltrue([
        for s in local.worker_statements : (
          tolist(s.actions) == tolist(["autoscaling:UpdateAutoScalingGroup"]) &&
          tolist(s.resources) == tolist(["arn:aws:autoscaling:ap-northeast-1:111122223333:autoScalingGroup:*:autoScalingGroupName/*"]) &&
          [for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"] == [
            "StringEquals aws:ResourceTag/Env=dev", "StringEquals aws:ResourceTag/Schedule=office-hours",
          ]
        ) if s.sid == "ResizeTaggedGroups"
      ])
    )
    error_message = "UpdateAutoScalingGroup only on groups carrying every target tag."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if s.sid == "TagSavedCapacityOfTaggedGroups"]) == 1 &&
      alltrue([
        for s in local.worker_statements : (
          toset(s.actions) == toset(["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"]) &&
          tolist(s.resources) == tolist(["arn:aws:autoscaling:ap-northeast-1:111122223333:autoScalingGroup:*:autoScalingGroupName/*"]) &&
          toset([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
            "StringEquals aws:ResourceTag/Env=dev",
            "StringEquals aws:ResourceTag/Schedule=office-hours",
            "ForAllValues:StringEquals aws:TagKeys=ops-automation:saved-capacity",
            "Null aws:TagKeys=false",
          ])
        ) if s.sid == "TagSavedCapacityOfTaggedGroups"
      ])
    )
    error_message = "The only tag the worker may write or delete on a tagged group is ops-automation:saved-capacity."
  }

  assert {
    condition = (
      keys(local.event_patterns) == ["auto-scaling", "instance-state"] &&
      jsondecode(local.event_patterns["auto-scaling"]) == {
        source        = ["aws.autoscaling"]
        "detail-type" = ["EC2 Instance Launch Successful", "EC2 Instance Terminate Successful", "EC2 Instance Launch Unsuccessful"]
      }
    )
    error_message = "Capacity mode adds a rule for the groups' launch and terminate events."
  }

  assert {
    condition     = length([for s in local.worker_statements : s if anytrue([for a in s.actions : startswith(a, "rds:")])]) == 0
    error_message = "Without schedule_rds no RDS permission."
  }
}

run "rds" {
  command = plan

  variables {
    schedule_rds = true
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_SCHEDULE_RDS"] == "true" &&
      toset(flatten([for s in local.planner_statements : s.actions])) == toset([
        "ec2:DescribeInstances", "rds:DescribeDBInstances", "rds:DescribeDBClusters",
      ]) &&
      alltrue([for s in local.planner_statements : tolist(s.resources) == tolist(["arn:aws:rds:ap-northeast-1:111122223333:db:*"]) if s.sid == "ReadDbInstances"]) &&
      alltrue([for s in local.planner_statements : tolist(s.resources) == tolist(["arn:aws:rds:ap-northeast-1:111122223333:cluster:*"]) if s.sid == "ReadDbClusters"])
    )
    error_message = "schedule_rds: the planners list DB instances and clusters on their resource types, not *."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if startswith(s.sid, "StartStopTaggedDb")]) == 2 &&
      alltrue([
        for s in local.worker_statements : (
          s.sid == "StartStopTaggedDbInstances" ?
          (toset(s.actions) == toset(["rds:StartDBInstance", "rds:StopDBInstance"]) && tolist(s.resources) == tolist(["arn:aws:rds:ap-northeast-1:111122223333:db:*"])) :
          (toset(s.actions) == toset(["rds:StartDBCluster", "rds:StopDBCluster"]) && tolist(s.resources) == tolist(["arn:aws:rds:ap-northeast-1:111122223333:cluster:*"]))
        ) && [for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["StringEquals aws:ResourceTag/Schedule=office-hours"]
        if startswith(s.sid, "StartStopTaggedDb")
      ]) &&
      !contains(flatten([for s in local.worker_statements : s.resources]), "arn:aws:rds:ap-northeast-1:111122223333:snapshot:*")
    )
    error_message = "Start/Stop of DB instances (db ARNs) and Aurora clusters (cluster ARNs) carrying the target tags only; no snapshot resource."
  }

  assert {
    condition = (
      keys(local.event_patterns) == ["instance-state", "rds"] &&
      jsondecode(local.event_patterns["rds"]) == {
        source        = ["aws.rds"]
        "detail-type" = ["RDS DB Instance Event", "RDS DB Cluster Event"]
        detail = {
          EventID = ["RDS-EVENT-0087", "RDS-EVENT-0088", "RDS-EVENT-0150", "RDS-EVENT-0151", "RDS-EVENT-0153", "RDS-EVENT-0154"]
        }
      }
    )
    error_message = "schedule_rds adds a rule for the stopped, started and auto-started RDS events only."
  }
}

run "listed_instances_only_narrow_the_state_rule" {
  command = plan

  variables {
    target_tags  = {}
    instance_ids = ["i-0123456789abcdef0", "i-0fedcba9"]
  }

  assert {
    condition = jsondecode(local.event_patterns["instance-state"]) == {
      source        = ["aws.ec2"]
      "detail-type" = ["EC2 Instance State-change Notification"]
      detail = {
        state         = ["running", "stopped"]
        "instance-id" = ["i-0123456789abcdef0", "i-0fedcba9"]
      }
    }
    error_message = "With listed instances only, the state rule matches only their ids."
  }
}

run "rejects_capacity_mode_without_tags" {
  command = plan

  variables {
    auto_scaling_groups = "capacity"
    target_tags         = {}
    instance_ids        = ["i-0123456789abcdef0"]
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_rds_without_tags" {
  command = plan

  variables {
    schedule_rds = true
    target_tags  = {}
    instance_ids = ["i-0123456789abcdef0"]
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_unknown_group_mode" {
  command = plan

  variables {
    auto_scaling_groups = "suspend"
  }

  expect_failures = [var.auto_scaling_groups]
}

run "rejects_bad_instance_ids" {
  command = plan

  variables {
    instance_ids = ["i-123"]
  }

  expect_failures = [var.instance_ids]
}

run "rejects_deadline_out_of_range" {
  command = plan

  variables {
    verify_deadline_minutes = 0
  }

  expect_failures = [var.verify_deadline_minutes]
}

run "rejects_alias_as_volume_key" {
  command = plan

  variables {
    volume_kms_key_arns = ["arn:aws:kms:ap-northeast-1:111122223333:alias/ebs"]
  }

  expect_failures = [var.volume_kms_key_arns]
}

run "licensed_instances" {
  command = plan

  variables {
    license_configuration_arns = ["arn:aws:license-manager:ap-northeast-1:111122223333:license-configuration:lic-0123456789abcdef0123456789abcdef"]
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : (
        tolist(s.actions) == tolist(["ec2:StartInstances"]) && tolist(s.resources) == tolist(var.license_configuration_arns)
      )
    ])
    error_message = "StartInstances is allowed on the listed license configurations."
  }
}

run "rejects_too_many_instance_ids" {
  command = plan

  variables {
    instance_ids = [for n in range(51) : format("i-%017x", n)]
  }

  expect_failures = [var.instance_ids]
}

run "rejects_a_deadline_shorter_than_a_start" {
  command = plan

  variables {
    verify_deadline_minutes = 5
  }

  expect_failures = [var.verify_deadline_minutes]
}

run "rejects_a_ledger_shorter_than_the_rds_auto_start" {
  command = plan

  variables {
    ledger_ttl_days = 7
  }

  expect_failures = [var.ledger_ttl_days]
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
    target_role_name            = "ops-automation-instance-scheduler"
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
      output.function_environment_variables["OPS_TARGET_ROLE_NAME"] == "ops-automation-instance-scheduler" &&
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

  assert {
    condition     = tolist(local.start_stop_tagged[0].resources) == tolist(["arn:aws:ec2:*:*:instance/*"])
    error_message = "Tagged instances of target accounts and OUs are started and stopped in any account and region, still only with every target tag."
  }
}

run "one_target_account_names_it_in_the_resources" {
  command = plan

  variables {
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-instance-scheduler"
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
    target_role_name            = "ops-automation-instance-scheduler"
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
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-instance-scheduler"]
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-instance-scheduler"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_instance_ids_with_organizational_units" {
  command = plan

  variables {
    instance_ids                = ["i-0123456789abcdef0"]
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }]
    target_role_name            = "ops-automation-instance-scheduler"
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
    target_role_name = "ops-automation-instance-scheduler"
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
    target_role_name            = "ops-automation-instance-scheduler"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_organization_id_or_role_without_organizational_units" {
  command = plan

  variables {
    target_accounts        = ["444455556666"]
    target_role_name       = "ops-automation-instance-scheduler"
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
    target_role_name = "ops-automation-instance-scheduler"
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
