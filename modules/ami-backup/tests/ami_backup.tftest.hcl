# Plan-level checks of the ami-backup module with a mocked AWS provider: IAM guard rails, wiring of
# inputs into the internal module, and input validation.

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
  name                = "nightly"
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "daily" }
  generations         = 3
}

run "statements_carry_the_ownership_they_need" {
  command = plan

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "request"
      if anytrue([for r in s.resources : strcontains(r, ":image/") || strcontains(r, ":snapshot/")]) && anytrue([for a in s.actions : startswith(a, "ec2:Create")])
    ])
    error_message = "CreateImage and CreateTags on images and snapshots must require the ownership request tags."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "resource"
      if contains(s.actions, "ec2:DeregisterImage") || contains(s.actions, "ec2:DeleteSnapshot")
    ])
    error_message = "DeregisterImage and DeleteSnapshot must require the ownership resource tags."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : tolist([for c in s.conditions : "${c.variable}=${join(",", c.values)}"]) == tolist(["ec2:CreateAction=CreateImage"])
      if contains(s.actions, "ec2:CreateTags")
    ])
    error_message = "CreateTags must only be allowed as part of CreateImage."
  }

  assert {
    condition = alltrue([
      for s in concat(local.planner_statements, local.worker_statements) : alltrue([for a in s.actions : startswith(a, "ec2:Describe") || a == "ec2:ListImagesInRecycleBin"])
      if contains(s.resources, "*")
    ])
    error_message = "Only read-only Describe* actions (and ListImagesInRecycleBin, which has no resource type) may use a * resource."
  }

  assert {
    condition     = toset(flatten([for s in local.planner_statements : s.actions])) == toset(["ec2:DescribeInstances", "ec2:DescribeImages"])
    error_message = "The planner may only describe instances and images."
  }

  assert {
    condition = toset(flatten([for s in local.worker_statements : s.actions])) == toset([
      "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeLockedSnapshots", "ec2:ListImagesInRecycleBin",
      "ec2:CreateImage", "ec2:CreateTags",
      "ec2:DeregisterImage", "ec2:DeleteSnapshot",
    ])
    error_message = "The worker's actions are exactly the EC2 calls of the handler."
  }
}

run "create_image_on_tagged_instances_only" {
  command = plan

  variables {
    target_tags = { Backup = "daily", Env = "prod" }
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateImageFromTaggedInstances" && tolist(s.resources) == tolist(["arn:aws:ec2:*:*:instance/*"])
      && toset([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringEquals aws:ResourceTag/Backup=daily", "StringEquals aws:ResourceTag/Env=prod",
      ])
    ])
    error_message = "Tag-targeted, CreateImage on instances must require every target tag on the instance."
  }

  assert {
    condition     = alltrue([for s in local.worker_statements : s.sid != "CreateImageFromListedInstances"])
    error_message = "Without instance_ids there is no statement on listed instances."
  }
}

run "create_image_on_listed_instances_only" {
  command = plan

  variables {
    target_tags  = {}
    instance_ids = ["i-0123456789abcdef0", "i-12345678"]
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateImageFromListedInstances" && tolist(s.resources) == tolist([
        "arn:aws:ec2:ap-northeast-1:111122223333:instance/i-0123456789abcdef0",
        "arn:aws:ec2:ap-northeast-1:111122223333:instance/i-12345678",
      ])
    ])
    error_message = "Id-targeted, CreateImage is allowed on exactly those instances of the deployment account and region."
  }

  assert {
    condition     = alltrue([for s in local.worker_statements : s.sid != "CreateImageFromTaggedInstances"])
    error_message = "Without target_tags there is no statement on tagged instances."
  }
}

run "listed_instances_in_other_regions_and_accounts" {
  command = plan

  variables {
    instance_ids     = ["i-0123456789abcdef0"]
    regions          = ["ap-northeast-1", "us-east-1"]
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-target"]
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements :
      s.sid == "CreateImageFromListedInstances" && tolist(s.resources) == tolist(["arn:aws:ec2:*:444455556666:instance/i-0123456789abcdef0"])
    ])
    error_message = "Instance ARNs must widen to * only where several regions or accounts are targeted."
  }

  assert {
    condition     = length([for s in local.worker_statements : s if startswith(s.sid, "CreateImageFrom")]) == 2
    error_message = "Both tag- and id-targeted, both instance statements are needed."
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
    condition     = output.planner_handler == "ops_automation.ami_backup.handlers.plan_handler" && output.worker_handler == "ops_automation.ami_backup.handlers.work_handler"
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
      output.function_environment_variables["OPS_NO_REBOOT"] == "true" &&
      output.function_environment_variables["OPS_COPY_INSTANCE_TAGS"] == "true" &&
      output.function_environment_variables["OPS_DRY_RUN"] == "false" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "240" &&
      output.function_environment_variables["OPS_LEDGER_TTL_DAYS"] == "400" &&
      output.function_environment_variables["OPS_ALERT_TOPIC_ARN"] == "" &&
      jsondecode(output.function_environment_variables["OPS_TARGET_TAGS"]) == { Backup = "daily" } &&
      jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"]) == [] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"]) == [] &&
      output.function_environment_variables["POWERTOOLS_SERVICE_NAME"] == "ami-backup" &&
      output.function_environment_variables["OPS_POLICY_NAME"] == "nightly" &&
      !contains(keys(output.function_environment_variables), "OPS_IDEMPOTENCY_TABLE")
    )
    error_message = "The functions' environment must follow the contract (JSON lists/maps, true/false, empty max age, no idempotency table)."
  }
}

run "max_age_and_flags_reach_the_environment" {
  command = plan

  variables {
    max_age_days        = 30
    dry_run             = true
    no_reboot           = false
    copy_instance_tags  = false
    instance_ids        = ["i-0123456789abcdef0", "i-12345678"]
    alarm_sns_topic_arn = "arn:aws:sns:ap-northeast-1:111122223333:alerts"
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_MAX_AGE_DAYS"] == "30" &&
      output.function_environment_variables["OPS_DRY_RUN"] == "true" &&
      output.function_environment_variables["OPS_NO_REBOOT"] == "false" &&
      output.function_environment_variables["OPS_COPY_INSTANCE_TAGS"] == "false" &&
      output.function_environment_variables["OPS_ALERT_TOPIC_ARN"] == var.alarm_sns_topic_arn &&
      tolist(jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"])) == var.instance_ids
    )
    error_message = "Optional inputs must reach the functions' environment."
  }
}

run "instance_ids_alone_are_enough" {
  command = plan

  variables {
    target_tags  = {}
    instance_ids = ["i-0123456789abcdef0"]
  }
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

run "rejects_no_targets" {
  command = plan

  variables {
    target_tags  = {}
    instance_ids = []
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "nightly backup!"
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

run "rejects_aws_tag_key" {
  command = plan

  variables {
    target_tags = { "aws:cloudformation:stack-name" = "x" }
  }

  expect_failures = [var.target_tags]
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
    target_role_name            = "ops-automation-ami-backup"
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
      output.function_environment_variables["OPS_TARGET_ROLE_NAME"] == "ops-automation-ami-backup" &&
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
    condition     = local.instance_account == "*" && local.instance_region == "*"
    error_message = "Resources of target accounts and OUs in every enabled region are named with * account and region, never the hub's."
  }
}

run "one_target_account_names_it_in_the_resources" {
  command = plan

  variables {
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-ami-backup"
    regions          = ["us-east-1"]
  }

  assert {
    condition     = local.instance_account == "444455556666" && local.instance_region == "us-east-1"
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
    target_role_name            = "ops-automation-ami-backup"
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
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-ami-backup"]
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-ami-backup"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_instance_ids_with_organizational_units" {
  command = plan

  variables {
    instance_ids                = ["i-0123456789abcdef0"]
    target_organizational_units = [{ id = "ou-ab12-cdef3456" }]
    target_role_name            = "ops-automation-ami-backup"
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
    target_role_name = "ops-automation-ami-backup"
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
    target_role_name            = "ops-automation-ami-backup"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_organization_id_or_role_without_organizational_units" {
  command = plan

  variables {
    target_accounts        = ["444455556666"]
    target_role_name       = "ops-automation-ami-backup"
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
    target_role_name = "ops-automation-ami-backup"
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
    error_message = "Without restore_test there is no restore function, schedule or instance-state rule."
  }

  assert {
    condition     = output.function_environment_variables["OPS_RESTORE_TEST"] == ""
    error_message = "Without restore_test, OPS_RESTORE_TEST is set and empty (restore tests off)."
  }

  assert {
    condition     = length(local.restore_worker_statements) == 0 && !contains(flatten([for s in local.worker_statements : s.actions]), "ec2:RunInstances")
    error_message = "Without restore_test the worker may not launch or terminate anything."
  }
}

run "restore_tests_reach_the_functions" {
  command = plan

  variables {
    restore_test = {
      schedule_expression   = "cron(0 3 ? * SUN *)"
      subnet_id             = "subnet-0123456789abcdef0"
      security_group_id     = "sg-0123456789abcdef0"
      sources               = "sample"
      sample_size           = 3
      max_concurrent        = 4
      deadline_minutes      = 45
      validation_document   = "AWS-RunShellScript"
      validation_parameters = { commands = ["systemctl is-system-running --wait"] }
      instance_profile_name = "restore-test"
      instance_role_arn     = "arn:aws:iam::111122223333:role/restore-test"
      kms_key_arns          = ["arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
    }
  }

  assert {
    condition     = output.restore_handler == "ops_automation.ami_backup.handlers.restore_handler" && output.function_timeouts["restore"] == 300
    error_message = "restore_test deploys the restore planner (ops_automation.ami_backup.handlers.restore_handler)."
  }

  assert {
    condition     = output.restore_schedule.expression == "cron(0 3 ? * SUN *)" && output.restore_schedule.timezone == "UTC" && output.schedule.expression == "cron(0 1 * * ? *)"
    error_message = "The restore planner runs on restore_test's own schedule (UTC by default); the backup schedule is unchanged."
  }

  assert {
    condition = jsondecode(output.function_environment_variables["OPS_RESTORE_TEST"]) == {
      region                = null
      role_arn              = null
      subnet_id             = "subnet-0123456789abcdef0"
      security_group_id     = "sg-0123456789abcdef0"
      sources               = "sample"
      sample_size           = 3
      source_tags           = {}
      max_concurrent        = 4
      deadline_minutes      = 45
      instance_type         = null
      validation_document   = "AWS-RunShellScript"
      validation_parameters = { commands = ["systemctl is-system-running --wait"] }
      instance_profile_name = "restore-test"
      volume_type           = "gp3"
      allow_routed_subnet   = false
    }
    error_message = "OPS_RESTORE_TEST is one JSON object with every RestoreTestConfig field (no schedule, role or keys: Terraform's only)."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreLaunchIntoIsolatedSubnet" && toset(s.resources) == toset([
        "arn:aws:ec2:ap-northeast-1:111122223333:subnet/subnet-0123456789abcdef0",
        "arn:aws:ec2:ap-northeast-1:111122223333:security-group/sg-0123456789abcdef0",
      ]) && s.ownership == "none"
    ])
    error_message = "RunInstances reaches exactly the named subnet and security group of the restore account and region."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "request" && contains([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"], "Null aws:RequestTag/ops-automation:restore-test=false")
      if contains(["RestoreLaunchTaggedResources", "RestoreTagOnlyAtLaunch"], s.sid)
    ]) && length([for s in local.worker_statements : s if contains(["RestoreLaunchTaggedResources", "RestoreTagOnlyAtLaunch"], s.sid)]) == 2
    error_message = "Launched instances, interfaces and volumes must carry the ownership and restore-test tags (Null = false)."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreLaunchPrivateInterface" && s.ownership == "request" && toset([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "Null aws:RequestTag/ops-automation:restore-test=false", "Bool ec2:AssociatePublicIpAddress=false",
      ])
    ])
    error_message = "The restored instance's network interface is tagged at launch and never gets a public IP address."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : s.ownership == "resource" && contains([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"], "Null aws:ResourceTag/ops-automation:restore-test=false")
      if contains(s.actions, "ec2:TerminateInstances") || (contains(s.actions, "ssm:SendCommand") && anytrue([for r in s.resources : strcontains(r, ":instance/")]))
    ])
    error_message = "Only restored instances of this policy may be terminated or sent the validation command."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreMarkOwnImages" && s.ownership == "resource" && contains([for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"], "ForAllValues:StringEquals aws:TagKeys=ops-automation:restore-result,ops-automation:restore-tested")
    ])
    error_message = "The worker may write only the two restore tags onto this policy's AMIs."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestorePassInstanceRole" && tolist(s.resources) == tolist(["arn:aws:iam::111122223333:role/restore-test"])
      && tolist([for c in s.conditions : "${c.variable}=${join(",", c.values)}"]) == tolist(["iam:PassedToService=ec2.amazonaws.com"])
    ])
    error_message = "iam:PassRole is allowed on exactly instance_role_arn, to EC2 only."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreRunValidationDocument" && toset(s.resources) == toset([
        "arn:aws:ssm:ap-northeast-1::document/AWS-RunShellScript",
        "arn:aws:ssm:ap-northeast-1:111122223333:document/AWS-RunShellScript",
      ])
    ])
    error_message = "SendCommand names exactly the validation document (AWS-owned or own account)."
  }

  assert {
    condition = anytrue([
      for s in local.worker_statements : s.sid == "RestoreGrantBackupKeysToEbs" && contains([for c in s.conditions : "${c.variable}=${join(",", c.values)}"], "kms:GrantIsForAWSResource=true")
    ])
    error_message = "Grants on the backup keys are for AWS resources only."
  }

  assert {
    condition     = toset(flatten([for s in local.restore_statements : s.actions])) == toset(["ec2:DescribeImages"])
    error_message = "The restore planner only reads the AMIs."
  }

  assert {
    condition     = output.missed_run_alarm_hours == 25
    error_message = "The backup planner's missed-run alarm is unchanged by the weekly restore schedule."
  }
}

run "restore_tests_in_a_target_account_and_region" {
  command = plan

  variables {
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-ami-backup", "arn:aws:iam::777788889999:role/ops-automation-ami-backup"]
    regions          = ["ap-northeast-1", "us-east-1"]
    restore_test = {
      schedule_expression = "rate(7 days)"
      region              = "us-east-1"
      role_arn            = "arn:aws:iam::777788889999:role/ops-automation-ami-backup"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
    }
  }

  assert {
    condition     = local.restore_ec2 == "arn:aws:ec2:us-east-1:777788889999"
    error_message = "Restore resources are named in the restore account and region."
  }

  assert {
    condition = (
      jsondecode(output.function_environment_variables["OPS_RESTORE_TEST"]).region == "us-east-1" &&
      jsondecode(output.function_environment_variables["OPS_RESTORE_TEST"]).role_arn == "arn:aws:iam::777788889999:role/ops-automation-ami-backup"
    )
    error_message = "The restore target reaches the functions."
  }

  assert {
    condition     = alltrue([for s in local.worker_statements : !startswith(s.sid, "RestorePass") && !startswith(s.sid, "RestoreRun") && !startswith(s.sid, "RestoreGrant")])
    error_message = "Without a validation document, instance role or keys there is no SSM, PassRole or KMS statement."
  }
}

run "rejects_restore_tests_with_target_accounts" {
  command = plan

  variables {
    target_accounts  = ["444455556666"]
    target_role_name = "ops-automation-ami-backup"
    restore_test = {
      schedule_expression = "rate(7 days)"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
    }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_a_restore_role_outside_target_role_arns" {
  command = plan

  variables {
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-ami-backup"]
    restore_test = {
      schedule_expression = "rate(7 days)"
      role_arn            = "arn:aws:iam::777788889999:role/ops-automation-ami-backup"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
    }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_a_restore_region_outside_regions" {
  command = plan

  variables {
    restore_test = {
      schedule_expression = "rate(7 days)"
      region              = "eu-west-1"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
    }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_an_instance_role_of_another_account" {
  command = plan

  variables {
    restore_test = {
      schedule_expression   = "rate(7 days)"
      subnet_id             = "subnet-12345678"
      security_group_id     = "sg-12345678"
      validation_document   = "AWS-RunShellScript"
      instance_profile_name = "restore-test"
      instance_role_arn     = "arn:aws:iam::444455556666:role/restore-test"
    }
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_malformed_restore_tests" {
  command = plan

  variables {
    restore_test = {
      schedule_expression   = "weekly"
      subnet_id             = "subnet-XYZ"
      security_group_id     = "sg-1"
      sources               = "some"
      sample_size           = 0
      max_concurrent        = 50
      deadline_minutes      = 5
      validation_parameters = { commands = ["true"] }
      instance_profile_name = "restore-test"
    }
  }

  expect_failures = [var.restore_test]
}

run "rejects_tagged_sources_without_tags" {
  command = plan

  variables {
    restore_test = {
      schedule_expression = "rate(7 days)"
      subnet_id           = "subnet-12345678"
      security_group_id   = "sg-12345678"
      sources             = "tagged"
    }
  }

  expect_failures = [var.restore_test]
}
