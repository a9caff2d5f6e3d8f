# Plan-level checks of the ssm-runcommand module with a mocked AWS provider: one planner on one schedule and the
# worker; ssm:SendCommand only on the document (AWS-owned, own or shared ARN), on the tagged instances (the
# ssm:resourceTag condition) or the listed ARNs, and on the output bucket when there is one; iam:PassRole only with
# a notification role; the command-status rule on the document; the environment contract; input validation.

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
  name                = "nightly-backup"
  schedule_expression = "cron(30 2 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Role = "database" }
  document_name       = "AWS-RunShellScript"
  parameters          = { commands = ["/opt/backup/run.sh"] }
}

run "tag_targeted" {
  command = plan

  assert {
    condition     = toset(keys(module.this.function_names)) == toset(["planner", "worker"])
    error_message = "One planner and the worker."
  }

  assert {
    condition = (
      output.schedules["planner"].expression == "cron(30 2 * * ? *)" && output.schedules["planner"].timezone == "Asia/Tokyo" &&
      jsondecode(local.functions.planner.schedule.input) == {} &&
      local.functions.planner.handler == "ops_automation.ssm_runcommand.handlers.plan_handler" &&
      output.worker_handler == "ops_automation.ssm_runcommand.handlers.work_handler" &&
      length(local.functions.planner.statements) == 0
    )
    error_message = "The planner runs plan_handler on schedule_expression in schedule_timezone with input {} and no business statement; the worker runs work_handler."
  }

  assert {
    condition = (
      toset(flatten([for s in local.worker_statements : s.actions])) == toset([
        "ec2:DescribeInstances", "ssm:DescribeInstanceInformation", "ssm:ListCommands", "ssm:ListCommandInvocations",
        "ssm:SendCommand",
      ]) &&
      alltrue([for s in local.worker_statements : s.ownership == "none"]) &&
      alltrue([for s in local.worker_statements : tolist(s.resources) == tolist(["*"]) if s.sid == "ReadCommandsAndManagedNodes" || s.sid == "ReadInstances"])
    )
    error_message = "The worker reads (on *, no resource type) and sends; nothing the module owns is involved (ownership none)."
  }

  assert {
    condition = (
      [for s in local.worker_statements : s.resources if s.sid == "SendCommandDocument"] == [["arn:aws:ssm:ap-northeast-1::document/AWS-RunShellScript"]] &&
      output.document_arn == "arn:aws:ssm:ap-northeast-1::document/AWS-RunShellScript"
    )
    error_message = "An AWS-owned document's ARN carries no account."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if s.sid == "SendCommandToTaggedInstances"]) == 1 &&
      alltrue([
        for s in local.worker_statements : (
          tolist(s.actions) == tolist(["ssm:SendCommand"]) &&
          tolist(s.resources) == tolist([
            "arn:aws:ec2:ap-northeast-1:111122223333:instance/*",
            "arn:aws:ssm:ap-northeast-1:111122223333:managed-instance/*",
          ]) &&
          [for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["StringEquals ssm:resourceTag/Role=database"]
        ) if s.sid == "SendCommandToTaggedInstances"
      ]) &&
      length([for s in local.worker_statements : s if s.sid == "SendCommandToListedInstances"]) == 0
    )
    error_message = "Tag targeting: SendCommand on the deployment region's and account's EC2 instances and hybrid managed nodes carrying the target tag only."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if contains(s.actions, "iam:PassRole")]) == 0 &&
      length([for s in local.worker_statements : s if anytrue([for r in s.resources : startswith(r, "arn:aws:s3:::")])]) == 0 &&
      output.instance_output_policy_json == null
    )
    error_message = "Without a notification role no iam:PassRole; without S3 output no bucket statement; without output no instance policy."
  }

  assert {
    condition = (
      keys(local.event_patterns) == ["command-status"] &&
      jsondecode(local.event_patterns["command-status"]) == {
        source        = ["aws.ssm"]
        "detail-type" = ["EC2 Command Status-change Notification", "EC2 Command Invocation Status-change Notification"]
        detail = {
          "document-name" = ["AWS-RunShellScript"]
          status          = [{ "anything-but" = ["Pending", "InProgress", "In Progress", "Delayed"] }]
        }
      }
    )
    error_message = "One rule: both SSM status-change detail-types of the document, to the work queue; neither spelling of in progress (InProgress, In Progress) is forwarded."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_DOCUMENT_NAME"] == "AWS-RunShellScript" &&
      output.function_environment_variables["OPS_DOCUMENT_VERSION"] == "" &&
      jsondecode(output.function_environment_variables["OPS_DOCUMENT_PARAMETERS"]) == { commands = ["/opt/backup/run.sh"] } &&
      output.function_environment_variables["OPS_EXECUTION_TIMEOUT_SECONDS"] == "" &&
      output.function_environment_variables["OPS_DELIVERY_TIMEOUT_SECONDS"] == "600" &&
      output.function_environment_variables["OPS_MAX_CONCURRENCY"] == "50" &&
      output.function_environment_variables["OPS_MAX_ERRORS"] == "0" &&
      output.function_environment_variables["OPS_OUTPUT_S3_BUCKET"] == "" &&
      output.function_environment_variables["OPS_OUTPUT_S3_PREFIX"] == "" &&
      output.function_environment_variables["OPS_OUTPUT_LOG_GROUP"] == "" &&
      output.function_environment_variables["OPS_NOTIFICATION_TOPIC_ARN"] == "" &&
      output.function_environment_variables["OPS_NOTIFICATION_ROLE_ARN"] == "" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "85" &&
      output.function_environment_variables["OPS_LEDGER_TTL_DAYS"] == "400" &&
      jsondecode(output.function_environment_variables["OPS_TARGET_TAGS"]) == { Role = "database" } &&
      output.function_environment_variables["OPS_INSTANCE_IDS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_REGIONS"] == "[]" &&
      output.function_environment_variables["POWERTOOLS_SERVICE_NAME"] == "ssm-runcommand" &&
      output.function_environment_variables["OPS_POLICY_NAME"] == "nightly-backup" &&
      !contains(keys(output.function_environment_variables), "OPS_GENERATIONS") &&
      !contains(keys(output.function_environment_variables), "OPS_SCHEDULE_TIMEZONE")
    )
    error_message = "The contract's variables reach the functions: empty strings for what is not set, the deadline ceil((600 + 3600) / 60) + 15 = 85 minutes, the targets; no retention group."
  }

  assert {
    condition     = output.verify_deadline_minutes == 85 && output.output_log_group_name == null && output.output_log_group_arn == null
    error_message = "Derived deadline 85 minutes; no command output log group unless asked."
  }

  assert {
    condition = (
      local.environment_bytes == sum(concat(
        [for k, v in local.environment_known : length(k) + length(v)],
        [for k, n in local.environment_reserved_bytes : length(k) + n],
      )) &&
      !contains(keys(local.environment_known), "OPS_WORK_QUEUE_URL") &&
      local.environment_bytes < local.environment_limit_bytes
    )
    error_message = "The environment size: every known name and value (ASCII here), the queue URL, ledger table, alert topic and bucket at their longest."
  }
}

run "listed_ids_s3_output_and_notifications" {
  command = plan

  variables {
    target_tags               = {}
    instance_ids              = ["i-0123456789abcdef0", "i-0fedcba9"]
    document_name             = "DbOnlineBackup"
    document_version          = "$LATEST"
    execution_timeout_seconds = 5400
    timeout_seconds           = 900
    max_concurrency           = "10%"
    max_errors                = "100%"
    output_s3_bucket_name     = "ops-command-output-111122223333"
    output_s3_key_prefix      = "nightly-backup/"
    notification_topic_arn    = "arn:aws:sns:ap-northeast-1:111122223333:ssm-failures"
    notification_role_arn     = "arn:aws:iam::111122223333:role/ssm-notifications"
  }

  assert {
    condition = (
      [for s in local.worker_statements : s.resources if s.sid == "SendCommandDocument"] == [["arn:aws:ssm:ap-northeast-1:111122223333:document/DbOnlineBackup"]] &&
      length([for s in local.worker_statements : s if s.sid == "SendCommandToTaggedInstances"]) == 0 &&
      alltrue([
        for s in local.worker_statements : (
          length(s.conditions) == 0 &&
          tolist(s.resources) == tolist([
            "arn:aws:ec2:ap-northeast-1:111122223333:instance/i-0123456789abcdef0",
            "arn:aws:ec2:ap-northeast-1:111122223333:instance/i-0fedcba9",
          ])
        ) if s.sid == "SendCommandToListedInstances"
      ]) &&
      length([for s in local.worker_statements : s if s.sid == "SendCommandToListedInstances"]) == 1
    )
    error_message = "Id targeting: SendCommand on the account's own document and exactly the listed instance ARNs."
  }

  assert {
    condition = (
      [for s in local.worker_statements : s.resources if s.sid == "SendCommandOutputBucket"] == [["arn:aws:s3:::ops-command-output-111122223333"]] &&
      [for s in local.worker_statements : s.actions if s.sid == "SendCommandOutputBucket"] == [["ssm:SendCommand"]]
    )
    error_message = "S3 output: SendCommand is also allowed on the output bucket it names."
  }

  assert {
    condition = alltrue([
      for s in local.worker_statements : (
        tolist(s.actions) == tolist(["iam:PassRole"]) &&
        tolist(s.resources) == tolist(["arn:aws:iam::111122223333:role/ssm-notifications"]) &&
        [for c in s.conditions : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["StringEquals iam:PassedToService=ssm.amazonaws.com"]
      ) if contains(s.actions, "iam:PassRole")
    ]) && length([for s in local.worker_statements : s if contains(s.actions, "iam:PassRole")]) == 1
    error_message = "iam:PassRole only on the notification role, only to SSM."
  }

  assert {
    condition = (
      local.output_s3_objects == "arn:aws:s3:::ops-command-output-111122223333/nightly-backup/*" &&
      output.instance_output_policy_json != null
    )
    error_message = "The instances' role writes only under the prefix (one slash, however the prefix ends)."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_DOCUMENT_NAME"] == "DbOnlineBackup" &&
      output.function_environment_variables["OPS_DOCUMENT_VERSION"] == "$LATEST" &&
      output.function_environment_variables["OPS_EXECUTION_TIMEOUT_SECONDS"] == "5400" &&
      output.function_environment_variables["OPS_DELIVERY_TIMEOUT_SECONDS"] == "900" &&
      output.function_environment_variables["OPS_MAX_CONCURRENCY"] == "10%" &&
      output.function_environment_variables["OPS_MAX_ERRORS"] == "100%" &&
      output.function_environment_variables["OPS_OUTPUT_S3_BUCKET"] == "ops-command-output-111122223333" &&
      output.function_environment_variables["OPS_OUTPUT_S3_PREFIX"] == "nightly-backup/" &&
      output.function_environment_variables["OPS_NOTIFICATION_TOPIC_ARN"] == var.notification_topic_arn &&
      output.function_environment_variables["OPS_NOTIFICATION_ROLE_ARN"] == var.notification_role_arn &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "120" &&
      tolist(jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"])) == var.instance_ids &&
      output.function_environment_variables["OPS_TARGET_TAGS"] == "{}"
    )
    error_message = "Version, timeouts, rollout controls, S3 output and notifications reach the functions; deadline ceil((900 + 5400) / 60) + 15 = 120."
  }
}

run "cloudwatch_output_log_group" {
  command = plan

  variables {
    create_output_log_group   = true
    output_log_retention_days = 14
    kms_key_arn               = "arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition = (
      aws_cloudwatch_log_group.output[0].name == "/aws/ssm/nightly-backup" &&
      aws_cloudwatch_log_group.output[0].retention_in_days == 14 &&
      aws_cloudwatch_log_group.output[0].kms_key_id == var.kms_key_arn &&
      output.function_environment_variables["OPS_OUTPUT_LOG_GROUP"] == "/aws/ssm/nightly-backup" &&
      local.output_log_group_arn == "arn:aws:logs:ap-northeast-1:111122223333:log-group:/aws/ssm/nightly-backup" &&
      output.instance_output_policy_json != null
    )
    error_message = "create_output_log_group: /aws/ssm/<name> with the retention and the module's key, named to the worker and the instances' policy."
  }

  assert {
    condition     = length([for s in local.worker_statements : s if anytrue([for r in s.resources : startswith(r, "arn:aws:s3:::")])]) == 0
    error_message = "CloudWatch output needs no SendCommand resource beyond the document and instances."
  }
}

run "existing_output_log_group" {
  command = plan

  variables {
    output_log_group_name = "/aws/ssm/shared-output"
  }

  assert {
    condition = (
      length(aws_cloudwatch_log_group.output) == 0 &&
      output.function_environment_variables["OPS_OUTPUT_LOG_GROUP"] == "/aws/ssm/shared-output"
    )
    error_message = "A named group without create_output_log_group is used, not created."
  }
}

run "shared_document_in_other_regions_and_accounts" {
  command = plan

  variables {
    document_name    = "arn:aws:ssm:ap-northeast-1:444455556666:document/SharedBackup"
    instance_ids     = ["i-0123456789abcdef0"]
    regions          = ["ap-northeast-1", "ap-northeast-3"]
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-target"]
  }

  assert {
    condition = (
      [for s in local.worker_statements : s.resources if s.sid == "SendCommandDocument"] == [["arn:aws:ssm:ap-northeast-1:444455556666:document/SharedBackup"]] &&
      [for s in local.worker_statements : s.resources if s.sid == "SendCommandToTaggedInstances"] == [["arn:aws:ec2:*:444455556666:instance/*", "arn:aws:ssm:*:444455556666:managed-instance/*"]] &&
      [for s in local.worker_statements : s.resources[0] if s.sid == "SendCommandToListedInstances"] == ["arn:aws:ec2:*:444455556666:instance/i-0123456789abcdef0"]
    )
    error_message = "A shared document is named by its ARN as given; tags and ids together, in several regions of the one target account."
  }

  assert {
    condition = jsondecode(local.event_patterns["command-status"]).detail["document-name"] == [
      "arn:aws:ssm:ap-northeast-1:444455556666:document/SharedBackup", "SharedBackup"
    ]
    error_message = "A document run by ARN: the rule matches both the ARN and the name."
  }
}

run "own_document_in_several_regions" {
  command = plan

  variables {
    document_name = "DbOnlineBackup"
    regions       = ["ap-northeast-1", "ap-northeast-3"]
  }

  assert {
    condition     = output.document_arn == "arn:aws:ssm:*:111122223333:document/DbOnlineBackup"
    error_message = "The account's own document by name, in any of the targeted regions."
  }
}

run "explicit_deadline" {
  command = plan

  variables {
    execution_timeout_seconds = 600
    verify_deadline_minutes   = 30
  }

  assert {
    condition     = output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "30" && output.function_environment_variables["OPS_EXECUTION_TIMEOUT_SECONDS"] == "600"
    error_message = "An explicit deadline that covers both timeouts (600 + 600 s) is passed as given."
  }
}

run "rejects_a_deadline_shorter_than_the_timeouts" {
  command = plan

  variables {
    verify_deadline_minutes = 60
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_a_deadline_beyond_the_command_history" {
  command = plan

  variables {
    timeout_seconds = 2592000
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

run "rejects_a_topic_without_a_role" {
  command = plan

  variables {
    notification_topic_arn = "arn:aws:sns:ap-northeast-1:111122223333:ssm-failures"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_notifications_with_cross_account_targets" {
  command = plan

  variables {
    notification_topic_arn = "arn:aws:sns:ap-northeast-1:111122223333:ssm-failures"
    notification_role_arn  = "arn:aws:iam::111122223333:role/ssm-notifications"
    target_role_arns       = ["arn:aws:iam::444455556666:role/ops-automation-ssm-runcommand"]
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_a_prefix_without_a_bucket" {
  command = plan

  variables {
    output_s3_key_prefix = "nightly-backup"
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_six_tag_keys" {
  command = plan

  variables {
    target_tags = { A = "1", B = "2", C = "3", D = "4", E = "5", F = "6" }
  }

  expect_failures = [var.target_tags]
}

run "rejects_too_many_instance_ids" {
  command = plan

  variables {
    instance_ids = [for n in range(81) : format("i-%017x", n)]
  }

  expect_failures = [var.instance_ids]
}

run "accepts_eighty_instance_ids" {
  command = plan

  variables {
    target_tags  = {}
    instance_ids = [for n in range(80) : format("i-%017x", n)]
  }

  assert {
    condition     = length(flatten([for s in local.worker_statements : s.resources if s.sid == "SendCommandToListedInstances"])) == 80
    error_message = "More than 50 listed ids: one ARN each (the worker sends them in requests of 50)."
  }
}

run "rejects_bad_instance_ids" {
  command = plan

  variables {
    instance_ids = ["i-123", "mi-0123456789abcdef0"]
  }

  expect_failures = [var.instance_ids]
}

run "rejects_bad_document_name" {
  command = plan

  variables {
    document_name = "run my script"
  }

  expect_failures = [var.document_name]
}

run "rejects_bad_document_version" {
  command = plan

  variables {
    document_version = "latest"
  }

  expect_failures = [var.document_version]
}

run "rejects_execution_timeout_in_parameters" {
  command = plan

  variables {
    parameters = { commands = ["true"], executionTimeout = ["600"] }
  }

  expect_failures = [var.parameters]
}

run "rejects_oversized_parameters" {
  command = plan

  variables {
    parameters = { commands = [for n in range(100) : "echo line ${n} of a script that belongs in its own document"] }
  }

  expect_failures = [var.parameters]
}

run "rejects_bad_max_concurrency" {
  command = plan

  variables {
    max_concurrency = "0"
  }

  expect_failures = [var.max_concurrency]
}

run "rejects_bad_max_errors" {
  command = plan

  variables {
    max_errors = "101%"
  }

  expect_failures = [var.max_errors]
}

run "rejects_a_delivery_timeout_under_30_seconds" {
  command = plan

  variables {
    timeout_seconds = 10
  }

  expect_failures = [var.timeout_seconds]
}

run "rejects_an_execution_timeout_over_48_hours" {
  command = plan

  variables {
    execution_timeout_seconds = 172801
  }

  expect_failures = [var.execution_timeout_seconds]
}

run "rejects_a_short_ledger" {
  command = plan

  variables {
    ledger_ttl_days = 30
  }

  expect_failures = [var.ledger_ttl_days]
}

run "rejects_bad_bucket_name" {
  command = plan

  variables {
    output_s3_bucket_name = "Ops_Output"
  }

  expect_failures = [var.output_s3_bucket_name]
}

run "rejects_bad_schedule" {
  command = plan

  variables {
    schedule_expression = "0 2 * * *"
  }

  expect_failures = [var.schedule_expression]
}

run "counts_the_environment_in_utf8_bytes" {
  command = plan

  variables {
    parameters = { commands = ["echo ééé"] }
  }

  assert {
    condition = local.environment_bytes == 3 + sum(concat(
      [for k, v in local.environment_known : length(k) + length(v)],
      [for k, n in local.environment_reserved_bytes : length(k) + n],
    ))
    error_message = "Each é is two bytes in UTF-8 but one character: the size counts bytes."
  }
}

run "rejects_an_environment_over_4_kb" {
  command = plan

  # Each part is within its own validation (parameters under 2,048 characters as JSON, 80 ids), but together they
  # exceed what Lambda allows for a function's environment.
  variables {
    parameters   = { commands = [for n in range(36) : "echo line ${n} of a script that is long"] }
    instance_ids = [for n in range(80) : format("i-%017x", n)]
  }

  expect_failures = [output.function_environment_variables]
}

run "rejects_a_tag_key_sendcommand_refuses" {
  command = plan

  variables {
    target_tags = { "cost+center" = "db" }
  }

  expect_failures = [var.target_tags]
}

run "accepts_tag_keys_with_letters_spaces_and_marks" {
  command = plan

  variables {
    target_tags = { "Équipe DB" = "nuit", "team:backup/@=_.-" = "yes", "役割" = "database" }
  }

  assert {
    condition     = length([for s in local.worker_statements : s if s.sid == "SendCommandToTaggedInstances"][0].conditions) == 3
    error_message = "Unicode letters, spaces and _ . : / = @ - are SendCommand target key characters."
  }
}

run "rejects_an_aws_tag_key" {
  command = plan

  variables {
    target_tags = { "aws:autoscaling:groupName" = "db-asg" }
  }

  expect_failures = [var.target_tags]
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
