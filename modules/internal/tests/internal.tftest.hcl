# Plan-level checks of the internal building block, with a mocked AWS provider (no credentials, no
# network). Data sources get fixed values so ARNs and policy documents are deterministic.

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

  # The provider still validates ARN arguments during a mocked apply: give ARNs a valid shape.
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::111122223333:role/mock"
    }
  }

  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:ap-northeast-1:111122223333:mock"
      url = "https://sqs.ap-northeast-1.amazonaws.com/111122223333/mock"
    }
  }

  mock_resource "aws_lambda_function" {
    defaults = {
      arn = "arn:aws:lambda:ap-northeast-1:111122223333:function:mock"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:ap-northeast-1:111122223333:log-group:mock"
    }
  }

  mock_resource "aws_dynamodb_table" {
    defaults = {
      arn = "arn:aws:dynamodb:ap-northeast-1:111122223333:table/mock"
    }
  }

  mock_resource "aws_cloudwatch_event_rule" {
    defaults = {
      arn = "arn:aws:events:ap-northeast-1:111122223333:rule/mock"
    }
  }
}

variables {
  name         = "nightly"
  service_name = "test-service"
  functions = {
    planner = {
      handler     = "ops_automation.test.handlers.plan_handler"
      description = "Plans work."
      statements = [
        { sid = "Read", actions = ["ec2:DescribeInstances"], resources = ["*"] },
      ]
      schedule = {
        expression = "cron(0 1 * * ? *)"
        timezone   = "Asia/Tokyo"
        input      = "{\"mode\":\"full\"}"
      }
    }
    worker = {
      handler     = "ops_automation.test.handlers.work_handler"
      description = "Does work."
      timeout     = 300
      statements = [
        { sid = "Create", actions = ["ec2:CreateSnapshot"], resources = ["arn:aws:ec2:*::snapshot/*"], ownership = "request" },
        {
          sid        = "Delete"
          actions    = ["ec2:DeleteSnapshot"]
          resources  = ["arn:aws:ec2:*::snapshot/*"]
          ownership  = "resource"
          conditions = [{ test = "StringLike", variable = "ec2:Description", values = ["x*"] }]
        },
      ]
      consumes_queue = true
    }
  }
  event_patterns = {
    ami-state = "{\"source\":[\"aws.ec2\"]}"
  }
  environment = { OPS_EXTRA = "x" }
}

run "functions_logs_and_layer" {
  command = plan

  assert {
    condition     = aws_cloudwatch_log_group.this["worker"].name == "/aws/lambda/nightly-worker" && aws_cloudwatch_log_group.this["worker"].retention_in_days == 30
    error_message = "Each function must get its /aws/lambda/<name> log group with the default retention."
  }

  assert {
    condition     = aws_lambda_function.this["planner"].runtime == "python3.13" && aws_lambda_function.this["planner"].architectures == tolist(["arm64"])
    error_message = "Functions must default to python3.13 on arm64."
  }

  assert {
    condition     = aws_lambda_function.this["worker"].layers == tolist(["arn:aws:lambda:ap-northeast-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"])
    error_message = "The default Powertools layer must match region, runtime and architecture, at the pinned version."
  }

  assert {
    condition     = aws_lambda_function.this["worker"].timeout == 300 && aws_lambda_function.this["planner"].timeout == 60 && aws_lambda_function.this["planner"].memory_size == 256
    error_message = "Function timeout/memory must come from var.functions with 60 s / 256 MB defaults."
  }

  assert {
    condition     = aws_lambda_function.this["planner"].tracing_config[0].mode == "PassThrough"
    error_message = "Tracing must be off (PassThrough) unless tracing_enabled."
  }

  assert {
    condition = toset(keys(aws_lambda_function.this["worker"].environment[0].variables)) == toset([
      "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "OPS_POLICY_NAME",
      "OPS_WORK_QUEUE_URL", "OPS_LEDGER_TABLE", "OPS_ALERT_TOPIC_ARN", "OPS_MAX_RECEIVE_COUNT", "OPS_EXTRA",
      "AWS_STS_REGIONAL_ENDPOINTS",
    ])
    error_message = "Without groups, functions receive exactly the internal variables plus var.environment (no idempotency table)."
  }

  assert {
    condition = (
      aws_lambda_function.this["worker"].environment[0].variables["POWERTOOLS_SERVICE_NAME"] == "test-service" &&
      aws_lambda_function.this["worker"].environment[0].variables["POWERTOOLS_METRICS_NAMESPACE"] == "OpsAutomation" &&
      aws_lambda_function.this["worker"].environment[0].variables["OPS_POLICY_NAME"] == "nightly" &&
      aws_lambda_function.this["worker"].environment[0].variables["OPS_ALERT_TOPIC_ARN"] == "" &&
      aws_lambda_function.this["worker"].environment[0].variables["OPS_MAX_RECEIVE_COUNT"] == "10" &&
      aws_lambda_function.this["worker"].environment[0].variables["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"
    )
    error_message = "Service name, metrics namespace, policy name and an empty alert topic must follow the contract."
  }

  assert {
    condition     = output.function_handlers["planner"] == "ops_automation.test.handlers.plan_handler"
    error_message = "function_handlers must expose the handler strings."
  }
}

run "environment_groups_are_encoded_once" {
  command = plan

  variables {
    scope      = { regions = ["ap-northeast-1", "us-east-1"], role_arns = ["arn:aws:iam::444455556666:role/target"] }
    targets    = { instance_ids = ["i-0123456789abcdef0"], tags = { Backup = "daily" } }
    retention  = { generations = 3 }
    completion = { timeout_minutes = 240, ledger_ttl_days = 400 }
  }

  assert {
    condition = (
      jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"]) == ["ap-northeast-1", "us-east-1"] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_ROLE_ARNS"]) == ["arn:aws:iam::444455556666:role/target"] &&
      jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"]) == ["i-0123456789abcdef0"] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_TAGS"]) == { Backup = "daily" } &&
      output.function_environment_variables["OPS_GENERATIONS"] == "3" &&
      output.function_environment_variables["OPS_MAX_AGE_DAYS"] == "" &&
      output.function_environment_variables["OPS_DRY_RUN"] == "false" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "240" &&
      output.function_environment_variables["OPS_LEDGER_TTL_DAYS"] == "400"
    )
    error_message = "The typed groups must be encoded as in the contract: JSON lists/maps, strings for numbers, empty for a null max age, true/false."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_VOLUME_IDS"] == "[]" &&
      output.function_environment_variables["OPS_VOLUME_TAGS"] == "{}" &&
      output.function_environment_variables["OPS_EXCLUDE_VOLUME_TAGS"] == "{}" &&
      output.function_environment_variables["OPS_EXCLUDE_ROOT_VOLUME"] == "false"
    )
    error_message = "A targets group without volume attributes still sets the volume variables, to their defaults ([], {}, {}, false)."
  }

  assert {
    condition     = keys(aws_lambda_function.this["planner"].environment[0].variables) == keys(aws_lambda_function.this["worker"].environment[0].variables)
    error_message = "Every function of a module gets the same environment."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["planner"].statement :
      s.sid == "AssumeTargetRoles" && tolist(s.actions) == tolist(["sts:AssumeRole"]) && tolist(s.resources) == tolist(["arn:aws:iam::444455556666:role/target"])
    ])
    error_message = "Every function must be able to assume exactly scope.role_arns."
  }

  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.target_role.statement : !contains(s.actions, "sts:AssumeRole")])
    error_message = "The target role policy must not allow hopping further."
  }

  assert {
    condition = toset([for s in data.aws_iam_policy_document.target_role.statement : s.sid]) == toset([
      "PlannerRead", "WorkerCreate", "WorkerDelete",
    ])
    error_message = "The target role policy is the union of every function's business statements, with sids prefixed by function."
  }
}

run "targets_group_encodes_volume_targets" {
  command = plan

  variables {
    targets = {
      volume_ids          = ["vol-0123456789abcdef0", "vol-12345678"]
      volume_tags         = { Snapshot = "hourly", Env = "prod" }
      exclude_volume_tags = { Scratch = "true" }
      exclude_root_volume = true
    }
  }

  assert {
    condition = (
      jsondecode(output.function_environment_variables["OPS_VOLUME_IDS"]) == ["vol-0123456789abcdef0", "vol-12345678"] &&
      jsondecode(output.function_environment_variables["OPS_VOLUME_TAGS"]) == { Env = "prod", Snapshot = "hourly" } &&
      jsondecode(output.function_environment_variables["OPS_EXCLUDE_VOLUME_TAGS"]) == { Scratch = "true" } &&
      output.function_environment_variables["OPS_EXCLUDE_ROOT_VOLUME"] == "true"
    )
    error_message = "Volume targets must be encoded like the instance ones: JSON lists/maps and true/false."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_INSTANCE_IDS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_TAGS"] == "{}"
    )
    error_message = "Instance targets default to an empty list and map when only volumes are targeted."
  }

  assert {
    condition     = aws_lambda_function.this["planner"].environment[0].variables["OPS_VOLUME_IDS"] == aws_lambda_function.this["worker"].environment[0].variables["OPS_VOLUME_IDS"]
    error_message = "Every function of a module gets the same volume targets."
  }
}

run "ownership_conditions_are_added" {
  command = plan

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["worker"].statement :
      s.sid == "Create" && toset([for c in s.condition : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringEquals aws:RequestTag/ops-automation:managed-by=terraform-aws-ops-automation",
        "StringEquals aws:RequestTag/ops-automation:policy=nightly",
      ])
    ])
    error_message = "ownership = request must require both ownership tags on the request."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["worker"].statement :
      s.sid == "Delete" && toset([for c in s.condition : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringLike ec2:Description=x*",
        "StringEquals aws:ResourceTag/ops-automation:managed-by=terraform-aws-ops-automation",
        "StringEquals aws:ResourceTag/ops-automation:policy=nightly",
      ])
    ])
    error_message = "ownership = resource must require both ownership tags on the resource, next to the statement's own conditions."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.business["planner"].statement : length(s.condition) == 0
    ])
    error_message = "ownership = none adds no condition."
  }

  assert {
    condition     = alltrue([for doc in data.aws_iam_policy_document.business : alltrue([for s in doc.statement : s.sid != "AssumeTargetRoles"])])
    error_message = "Without scope.role_arns no function may assume roles."
  }
}

run "queue_and_consumer" {
  command = plan

  assert {
    condition     = aws_sqs_queue.work.visibility_timeout_seconds >= 6 * var.functions["worker"].timeout
    error_message = "Work queue visibility timeout must be at least 6 x the consuming function's timeout."
  }

  assert {
    condition     = aws_sqs_queue.work.sqs_managed_sse_enabled == true && aws_sqs_queue.dlq.sqs_managed_sse_enabled == true
    error_message = "Queues must use SQS-managed SSE when no KMS key is given."
  }

  assert {
    condition     = aws_sqs_queue.dlq.message_retention_seconds == 1209600
    error_message = "The DLQ must keep messages for 14 days."
  }

  assert {
    condition     = aws_lambda_event_source_mapping.work.batch_size == 10 && contains(aws_lambda_event_source_mapping.work.function_response_types, "ReportBatchItemFailures")
    error_message = "The consumer must receive batches of 10 and report partial batch failures."
  }

  assert {
    condition     = aws_lambda_event_source_mapping.work.scaling_config[0].maximum_concurrency == 5
    error_message = "The event source must cap the consumer's concurrency (default 5)."
  }

  assert {
    condition     = length(aws_sqs_queue_policy.this) == 2
    error_message = "With event patterns, both queues need a policy for events.amazonaws.com."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.queue["work"].statement :
      s.effect != "Deny" && tolist(s.actions) == tolist(["sqs:SendMessage"]) && one([for c in s.condition : c.variable]) == "aws:SourceArn"
    ])
    error_message = "The work queue policy must only let EventBridge rules of this module send messages."
  }
}

run "schedule_and_async_config" {
  command = plan

  assert {
    condition     = aws_scheduler_schedule.this["planner"].schedule_expression_timezone == "Asia/Tokyo" && aws_scheduler_schedule.this["planner"].schedule_expression == "cron(0 1 * * ? *)"
    error_message = "Schedule expression and timezone must be passed through."
  }

  assert {
    condition     = aws_scheduler_schedule.this["planner"].flexible_time_window[0].mode == "OFF"
    error_message = "The flexible time window must be off."
  }

  assert {
    condition = jsondecode(aws_scheduler_schedule.this["planner"].target[0].input) == {
      mode           = "full"
      scheduled_time = "<aws.scheduler.scheduled-time>"
      schedule_arn   = "<aws.scheduler.schedule-arn>"
      execution_id   = "<aws.scheduler.execution-id>"
    }
    error_message = "The target input must merge the caller input with the Scheduler context attributes."
  }

  assert {
    condition     = strcontains(aws_scheduler_schedule.this["planner"].target[0].input, "\"<aws.scheduler.scheduled-time>\"")
    error_message = "Scheduler placeholders must appear literally (not as \\u003c...\\u003e escapes) or Scheduler will not substitute them."
  }

  assert {
    condition     = length(aws_scheduler_schedule.this) == 1 && !contains(keys(aws_scheduler_schedule.this), "worker")
    error_message = "Only functions with a schedule get one."
  }

  assert {
    condition     = aws_lambda_function_event_invoke_config.this["planner"].maximum_retry_attempts == 2 && length(aws_lambda_function_event_invoke_config.this) == 1
    error_message = "Scheduled functions must retry asynchronous invocations twice, with a failure destination."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.scheduler["planner"].statement : tolist(s.actions) == tolist(["lambda:InvokeFunction"])
    ])
    error_message = "The scheduler role must be allowed to invoke its function."
  }
}

run "role_names_carry_the_region" {
  command = plan

  assert {
    condition     = aws_iam_role.this["worker"].name == "nightly-worker-ap-northeast-1" && aws_iam_role.scheduler["planner"].name == "nightly-planner-ap-northeast-1-scheduler"
    error_message = "IAM role names are global per account: they must carry the region."
  }
}

run "rejects_role_names_over_64_characters" {
  command = plan

  variables {
    name = "a-policy-name-of-32-characters-x"
    functions = {
      function-key-16x = { handler = "m.a", description = "a", consumes_queue = true, schedule = { expression = "rate(1 day)" } }
    }
  }

  # 32 + 16 characters and the region fill the function role's 64; "-scheduler" does not fit.
  expect_failures = [aws_iam_role.scheduler]
}

run "tables" {
  command = plan

  assert {
    condition     = aws_dynamodb_table.ledger.hash_key == "pk" && aws_dynamodb_table.ledger.range_key == "sk" && aws_dynamodb_table.ledger.ttl[0].attribute_name == "expires_at"
    error_message = "Ledger keys and TTL must follow DESIGN.md."
  }

  assert {
    condition     = aws_dynamodb_table.ledger.billing_mode == "PAY_PER_REQUEST" && aws_dynamodb_table.ledger.point_in_time_recovery[0].enabled
    error_message = "The ledger must be on demand with point-in-time recovery by default."
  }
}

run "alarms_without_topic" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.dlq.alarm_actions) == 0
    error_message = "Without a topic, alarms have no actions."
  }

  assert {
    condition = (
      length(aws_cloudwatch_metric_alarm.missed_run) == 1 &&
      aws_cloudwatch_metric_alarm.missed_run["planner"].namespace == "AWS/Lambda" &&
      aws_cloudwatch_metric_alarm.missed_run["planner"].metric_name == "Invocations" &&
      aws_cloudwatch_metric_alarm.missed_run["planner"].comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.missed_run["planner"].threshold == 1 &&
      aws_cloudwatch_metric_alarm.missed_run["planner"].treat_missing_data == "breaching" &&
      aws_cloudwatch_metric_alarm.missed_run["planner"].period == 3600 &&
      aws_cloudwatch_metric_alarm.missed_run["planner"].evaluation_periods == 25
    )
    error_message = "A daily schedule gets a missed-run alarm over 24 h + 1 h of grace, missing data breaching."
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.event_rule_failed_invocations) == 0
    error_message = "Without a KMS key, no FailedInvocations alarm (nothing can drop events silently)."
  }
}

run "missed_run_hours_follow_the_schedule" {
  command = plan

  variables {
    functions = {
      hourly   = { handler = "m.a", description = "a", consumes_queue = true, schedule = { expression = "rate(6 hours)" } }
      minutes  = { handler = "m.b", description = "b", schedule = { expression = "rate(30 minutes)" } }
      weekly   = { handler = "m.c", description = "c", schedule = { expression = "cron(0 1 ? * MON *)" } }
      biweekly = { handler = "m.d", description = "d", schedule = { expression = "rate(14 days)" } }
    }
  }

  assert {
    condition = (
      output.missed_run_alarm_hours["hourly"] == 7 && output.missed_run_alarm_hours["minutes"] == 2 &&
      !contains(keys(output.missed_run_alarm_hours), "weekly") && !contains(keys(output.missed_run_alarm_hours), "biweekly")
    )
    error_message = "rate(N unit) -> its interval plus one hour; schedules beyond CloudWatch's 7 days get no missed-run alarm."
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.missed_run)) == toset(["hourly", "minutes"])
    error_message = "A weekly or rarer schedule must get no missed-run alarm (it would be in ALARM for most of its interval)."
  }
}

run "missed_run_hours_override" {
  command = plan

  variables {
    missed_run_alarm_hours = 30
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.missed_run["planner"].evaluation_periods == 30
    error_message = "missed_run_alarm_hours must override the derived value."
  }
}

run "alarms_with_topic_kms_and_tracing" {
  command = plan

  variables {
    alarm_sns_topic_arn    = "arn:aws:sns:ap-northeast-1:111122223333:alerts"
    kms_key_arn            = "arn:aws:kms:ap-northeast-1:111122223333:key/0b1e4c2a-1111-2222-3333-444455556666"
    tracing_enabled        = true
    point_in_time_recovery = false
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.dlq.alarm_actions == toset([var.alarm_sns_topic_arn]) && aws_cloudwatch_metric_alarm.dlq.ok_actions == toset([var.alarm_sns_topic_arn])
    error_message = "Alarms must notify the topic on alarm and on recovery."
  }

  assert {
    condition     = aws_lambda_function.this["worker"].environment[0].variables["OPS_ALERT_TOPIC_ARN"] == var.alarm_sns_topic_arn
    error_message = "The handlers must learn the alert topic from OPS_ALERT_TOPIC_ARN."
  }

  assert {
    condition     = aws_sqs_queue.work.kms_master_key_id == var.kms_key_arn && aws_sqs_queue.dlq.kms_master_key_id == var.kms_key_arn
    error_message = "Queues must use the customer key when given."
  }

  assert {
    condition     = aws_dynamodb_table.ledger.server_side_encryption[0].kms_key_arn == var.kms_key_arn && !aws_dynamodb_table.ledger.point_in_time_recovery[0].enabled
    error_message = "The ledger must use the customer key when given, and honour the PITR switch."
  }

  assert {
    condition     = aws_lambda_function.this["worker"].kms_key_arn == var.kms_key_arn && aws_cloudwatch_log_group.this["worker"].kms_key_id == var.kms_key_arn
    error_message = "Function environment and logs must use the customer key when given."
  }

  assert {
    condition     = aws_lambda_function.this["worker"].tracing_config[0].mode == "Active"
    error_message = "tracing_enabled must switch X-Ray to Active."
  }

  assert {
    condition = toset([for s in data.aws_iam_policy_document.plumbing["worker"].statement : s.sid]) == toset([
      "OwnLogGroup", "WorkQueueSend", "WorkQueueConsume", "Ledger", "AlertTopic", "Kms", "XRay",
    ])
    error_message = "The worker's plumbing policy must add the alert topic, Kms and XRay statements when enabled."
  }

  assert {
    condition = (
      length(aws_cloudwatch_metric_alarm.event_rule_failed_invocations) == 1 &&
      aws_cloudwatch_metric_alarm.event_rule_failed_invocations["ami-state"].namespace == "AWS/Events" &&
      aws_cloudwatch_metric_alarm.event_rule_failed_invocations["ami-state"].metric_name == "FailedInvocations" &&
      aws_cloudwatch_metric_alarm.event_rule_failed_invocations["ami-state"].dimensions == tomap({ RuleName = "nightly-ami-state" })
    )
    error_message = "With a KMS key, each event rule's FailedInvocations must raise an alarm."
  }
}

run "kms_key_policy_names_every_service_principal" {
  command = plan

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.kms_key.statement :
      s.sid == "EventBridgeRulesToEncryptedQueues"
      && toset(flatten([for p in s.principals : p.identifiers])) == toset(["events.amazonaws.com"])
      && length(s.condition) == 0
    ])
    error_message = "EventBridge must be allowed to use the key, without conditions its delivery may not carry."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.kms_key.statement :
      s.sid == "CloudWatchLogsLogGroups"
      && toset(flatten([for p in s.principals : p.identifiers])) == toset(["logs.ap-northeast-1.amazonaws.com"])
      && toset(flatten([for c in s.condition : c.values if c.variable == "kms:EncryptionContext:aws:logs:arn"])) == toset([
        "arn:aws:logs:ap-northeast-1:111122223333:log-group:/aws/lambda/nightly-planner",
        "arn:aws:logs:ap-northeast-1:111122223333:log-group:/aws/lambda/nightly-worker",
      ])
    ])
    error_message = "CloudWatch Logs' regional principal must be bound to the module's log groups by encryption context."
  }
}

# apply (against the mock) because resource ARNs in the policies are unknown at plan time.
run "plumbing_least_privilege" {
  command = apply

  assert {
    condition     = toset([for s in data.aws_iam_policy_document.plumbing["worker"].statement : s.sid]) == toset(["OwnLogGroup", "WorkQueueSend", "WorkQueueConsume", "Ledger"])
    error_message = "Without key, topic and tracing, the consumer's plumbing is logs, queue send/consume and the ledger."
  }

  assert {
    condition     = toset([for s in data.aws_iam_policy_document.plumbing["planner"].statement : s.sid]) == toset(["OwnLogGroup", "WorkQueueSend", "AsyncFailureDestination"])
    error_message = "A scheduled function that does not consume the queue gets no receive/delete and no table access."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.plumbing["worker"].statement :
      toset(s.actions) == toset(["dynamodb:GetItem", "dynamodb:UpdateItem"]) if s.sid == "Ledger"
    ])
    error_message = "The ledger grant is GetItem and UpdateItem only."
  }

  assert {
    condition = alltrue(flatten([
      for doc in data.aws_iam_policy_document.plumbing : [for s in doc.statement : !contains(s.resources, "*")]
    ]))
    error_message = "Without tracing no plumbing statement may use a * resource."
  }
}

run "layer_override" {
  command = plan

  variables {
    architecture         = "x86_64"
    runtime              = "python3.12"
    powertools_layer_arn = "arn:aws:lambda:ap-northeast-1:111122223333:layer:my-powertools:3"
  }

  assert {
    condition     = aws_lambda_function.this["worker"].layers == tolist([var.powertools_layer_arn]) && aws_lambda_function.this["worker"].architectures == tolist(["x86_64"])
    error_message = "powertools_layer_arn must replace the default layer."
  }
}

run "default_layer_follows_runtime_and_architecture" {
  command = plan

  variables {
    architecture = "x86_64"
    runtime      = "python3.12"
  }

  assert {
    condition     = output.powertools_layer_arn == "arn:aws:lambda:ap-northeast-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:27"
    error_message = "The default layer name must encode python version and architecture."
  }
}

run "layer_required_outside_aws_partition" {
  command = plan

  override_data {
    target = data.aws_partition.current
    values = {
      partition = "aws-cn"
    }
  }

  expect_failures = [aws_lambda_function.this]
}

run "no_event_patterns_no_queue_policy" {
  command = plan

  variables {
    event_patterns = {}
  }

  assert {
    condition     = length(aws_sqs_queue_policy.this) == 0 && length(aws_cloudwatch_event_rule.this) == 0
    error_message = "Without event patterns there are no rules and no queue policies."
  }
}

run "rejects_two_queue_consumers" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true }
      b = { handler = "m.b", description = "b", consumes_queue = true }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_unowned_destruction" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        { sid = "Delete", actions = ["ec2:DeleteSnapshot"], resources = ["arn:aws:ec2:*::snapshot/*"] },
      ] }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_unowned_image_creation" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        { sid = "Create", actions = ["ec2:CreateImage"], resources = ["arn:aws:ec2:*::image/*"], ownership = "none" },
      ] }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_wildcard_resource_on_mutating_action" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        { sid = "Create", actions = ["ec2:CreateImage"], resources = ["*"], ownership = "request" },
      ] }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_unknown_ownership_and_wildcard_actions" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        { sid = "Any", actions = ["ec2:*"], resources = ["arn:aws:ec2:*::image/*"], ownership = "mine" },
      ] }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_bad_schedule_expression" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, schedule = { expression = "0 1 * * *" } }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_reserved_environment_key" {
  command = plan

  variables {
    environment = { OPS_TARGET_REGIONS = "[]" }
  }

  expect_failures = [var.environment]
}

run "rejects_reserved_volume_environment_key" {
  command = plan

  variables {
    environment = { OPS_EXCLUDE_ROOT_VOLUME = "true" }
  }

  expect_failures = [var.environment]
}

run "rejects_malformed_volume_id" {
  command = plan

  variables {
    targets = { volume_ids = ["vol-0123456789ABCDEF0", "vol-123", "i-0123456789abcdef0"] }
  }

  expect_failures = [var.targets]
}

run "rejects_max_concurrency_below_two" {
  command = plan

  variables {
    queue_consumer_max_concurrency = 1
  }

  expect_failures = [var.queue_consumer_max_concurrency]
}

run "rejects_missed_run_hours_over_seven_days" {
  command = plan

  variables {
    missed_run_alarm_hours = 169
  }

  expect_failures = [var.missed_run_alarm_hours]
}

run "rejects_unsupported_log_retention" {
  command = plan

  variables {
    log_retention_days = 10
  }

  expect_failures = [var.log_retention_days]
}

run "project_resource_ownership_unowned_and_denials" {
  command = plan

  variables {
    resource_ownership = "project"
    scope              = { role_arns = ["arn:aws:iam::444455556666:role/target"] }
    functions = {
      worker = {
        handler        = "m.w"
        description    = "w"
        consumes_queue = true
        statements = [
          { sid = "DeleteOwned", actions = ["ec2:DeleteSnapshot"], resources = ["arn:aws:ec2:*::snapshot/*"], ownership = "resource" },
          { sid = "DeleteAny", actions = ["ec2:DeleteSnapshot"], resources = ["arn:aws:ec2:*::snapshot/*"], ownership = "unowned" },
        ]
        denials = [
          {
            sid        = "Keep"
            actions    = ["ec2:DeleteSnapshot"]
            resources  = ["arn:aws:ec2:*::snapshot/*"]
            conditions = [{ test = "Null", variable = "aws:ResourceTag/keep", values = ["false"] }]
          },
        ]
      }
    }
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["worker"].statement :
      s.sid == "DeleteOwned" && [for c in s.condition : "${c.test} ${c.variable}=${join(",", c.values)}"] == [
        "StringEquals aws:ResourceTag/ops-automation:managed-by=terraform-aws-ops-automation",
      ]
    ])
    error_message = "resource_ownership = project must require the managed-by tag only (resources of any policy of the project)."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["worker"].statement :
      s.sid == "DeleteAny" && length(s.condition) == 0 && s.effect != "Deny"
    ])
    error_message = "ownership = unowned adds no condition."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["worker"].statement :
      s.sid == "Keep" && s.effect == "Deny" && [for c in s.condition : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["Null aws:ResourceTag/keep=false"]
    ])
    error_message = "denials are rendered as Deny statements with their own conditions only."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.target_role.statement : s.sid == "WorkerKeep" && s.effect == "Deny"
    ])
    error_message = "The target role policy carries the denials too."
  }
}

run "rejects_unowned_creation" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        { sid = "Create", actions = ["ec2:CreateSnapshot"], resources = ["arn:aws:ec2:*::snapshot/*"], ownership = "unowned" },
      ] }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_unknown_resource_ownership" {
  command = plan

  variables {
    resource_ownership = "account"
  }

  expect_failures = [var.resource_ownership]
}

run "accepts_source_statements_limited_by_tags_or_ids" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        {
          sid        = "CopyTagged"
          actions    = ["ec2:CopySnapshot"]
          resources  = ["arn:aws:ec2:ap-northeast-1::snapshot/*"]
          ownership  = "source"
          conditions = [{ test = "StringEquals", variable = "aws:ResourceTag/Backup", values = ["dr"] }]
        },
        { sid = "CopyListed", actions = ["ec2:CopySnapshot"], resources = ["arn:aws:ec2:ap-northeast-1::snapshot/snap-0123456789abcdef0"], ownership = "source" },
      ] }
    }
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.business["a"].statement :
      s.sid == "CopyTagged" ? tolist([for c in s.condition : c.variable]) == tolist(["aws:ResourceTag/Backup"]) : length(s.condition) == 0
    ])
    error_message = "ownership = source adds no condition: the statement's own tag condition or ids limit it."
  }
}

run "rejects_source_statement_on_any_snapshot" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        { sid = "CopyAny", actions = ["ec2:CopySnapshot"], resources = ["arn:aws:ec2:*::snapshot/*"], ownership = "source" },
      ] }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_source_statement_that_destroys" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", consumes_queue = true, statements = [
        {
          sid        = "DeleteTagged"
          actions    = ["ec2:DeleteSnapshot"]
          resources  = ["arn:aws:ec2:*::snapshot/*"]
          ownership  = "source"
          conditions = [{ test = "StringEquals", variable = "aws:ResourceTag/Backup", values = ["dr"] }]
        },
      ] }
    }
  }

  expect_failures = [var.functions]
}

run "scope_external_id_is_encoded" {
  command = plan

  variables {
    scope = { role_arns = ["arn:aws:iam::444455556666:role/target"], external_id = "hub-7f3a" }
  }

  assert {
    condition     = output.function_environment_variables["OPS_TARGET_ROLE_EXTERNAL_ID"] == "hub-7f3a"
    error_message = "scope.external_id is encoded as OPS_TARGET_ROLE_EXTERNAL_ID."
  }
}

run "scope_without_external_id_encodes_an_empty_one" {
  command = plan

  variables {
    scope = { role_arns = ["arn:aws:iam::444455556666:role/target"] }
  }

  assert {
    condition     = output.function_environment_variables["OPS_TARGET_ROLE_EXTERNAL_ID"] == ""
    error_message = "A scope without external_id sets OPS_TARGET_ROLE_EXTERNAL_ID to the empty string (none)."
  }
}

run "rejects_an_external_id_over_1224_characters" {
  command = plan

  variables {
    scope = { external_id = join("", [for i in range(612) : "ab"], ["a"]) }
  }

  expect_failures = [var.scope]
}

################################################################################
# Landing-zone targeting: accounts and OUs through one role name, Organizations reads, all-enabled regions
################################################################################

run "landing_zone_scope_is_encoded" {
  command = plan

  variables {
    scope = {
      regions              = ["all-enabled"]
      accounts             = ["444455556666"]
      organizational_units = [{ id = "ou-ab12-cdef3456" }, { id = "r-ab12", recursive = false }]
      role_name            = "ops/ops-automation-test"
      organization_id      = "o-a1b2c3d4e5"
      excluded_accounts    = ["777788889999"]
    }
  }

  assert {
    condition     = jsondecode(output.function_environment_variables["OPS_EXCLUDE_ACCOUNTS"]) == ["777788889999"]
    error_message = "excluded_accounts reach every function as OPS_EXCLUDE_ACCOUNTS."
  }

  assert {
    condition = (
      jsondecode(output.function_environment_variables["OPS_TARGET_ACCOUNTS"]) == ["444455556666"] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_ORGANIZATIONAL_UNITS"]) == [
        { id = "ou-ab12-cdef3456", recursive = true }, { id = "r-ab12", recursive = false },
      ] &&
      output.function_environment_variables["OPS_TARGET_ROLE_NAME"] == "ops/ops-automation-test" &&
      output.function_environment_variables["OPS_ORGANIZATIONS_ROLE_ARN"] == "" &&
      jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"]) == ["all-enabled"] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_ROLE_ARNS"]) == []
    )
    error_message = "Accounts, OUs (recursive by default), the role name and the regions reach every function; no organizations role is an empty variable."
  }

  assert {
    condition = alltrue([
      for key in ["planner", "worker"] : anytrue([
        for s in data.aws_iam_policy_document.business[key].statement :
        s.sid == "AssumeTargetRoles" && tolist(s.actions) == tolist(["sts:AssumeRole"]) &&
        tolist(s.resources) == tolist(["arn:aws:iam::444455556666:role/ops/ops-automation-test"]) && length(s.condition) == 0
      ])
    ])
    error_message = "Every function may assume the role of each listed account, by its exact ARN (path included)."
  }

  assert {
    condition = alltrue([
      for key in ["planner", "worker"] : anytrue([
        for s in data.aws_iam_policy_document.business[key].statement :
        s.sid == "AssumeOrganizationTargetRoles" && tolist(s.actions) == tolist(["sts:AssumeRole"]) &&
        tolist(s.resources) == tolist(["arn:aws:iam::*:role/ops/ops-automation-test"]) &&
        [for c in s.condition : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["StringEquals aws:ResourceOrgID=o-a1b2c3d4e5"]
      ])
    ])
    error_message = "With OUs every function may assume the role name in any account only of the organization (aws:ResourceOrgID)."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["planner"].statement :
      s.sid == "ReadOrganizationUnits" &&
      toset(s.actions) == toset(["organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"]) &&
      toset(s.resources) == toset([
        "arn:aws:organizations::*:ou/o-a1b2c3d4e5/ou-*", "arn:aws:organizations::*:root/o-a1b2c3d4e5/r-*",
      ])
    ])
    error_message = "The planner (scheduled) reads the OUs and root of this organization only, with exactly the two List calls of core/organization.py."
  }

  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.business["worker"].statement : !startswith(s.sid, "ReadOrganization") && s.sid != "AssumeOrganizationsRole"])
    error_message = "The worker (not scheduled) never reads the organization."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.target_role.statement :
      s.sid == "DescribeEnabledRegions" && tolist(s.actions) == tolist(["ec2:DescribeRegions"]) && tolist(s.resources) == tolist(["*"])
    ])
    error_message = "With all-enabled regions the target role may list the account's regions."
  }

  assert {
    condition     = alltrue([for doc in data.aws_iam_policy_document.business : alltrue([for s in doc.statement : !contains(s.actions, "ec2:DescribeRegions")])])
    error_message = "DescribeRegions is made through the target role, not with the functions' own roles."
  }

  assert {
    condition     = output.organizations_policy_json != null
    error_message = "With OUs the organizations role policy is an output."
  }
}

run "organizations_role_replaces_the_direct_reads" {
  command = plan

  variables {
    scope = {
      organizational_units   = [{ id = "ou-ab12-cdef3456" }]
      role_name              = "ops-automation-test"
      organization_id        = "o-a1b2c3d4e5"
      organizations_role_arn = "arn:aws:iam::999988887777:role/ops-automation-organizations"
    }
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.business["planner"].statement :
      s.sid == "AssumeOrganizationsRole" && tolist(s.resources) == tolist(["arn:aws:iam::999988887777:role/ops-automation-organizations"])
    ])
    error_message = "With organizations_role_arn the planner assumes that role for the Organizations reads."
  }

  assert {
    condition     = alltrue([for doc in data.aws_iam_policy_document.business : alltrue([for s in doc.statement : s.sid != "ReadOrganizationUnits"])])
    error_message = "With organizations_role_arn no function reads Organizations with its own role."
  }

  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.business["worker"].statement : s.sid != "AssumeOrganizationsRole"])
    error_message = "Only the planners assume the organizations role."
  }

  assert {
    condition     = output.function_environment_variables["OPS_ORGANIZATIONS_ROLE_ARN"] == "arn:aws:iam::999988887777:role/ops-automation-organizations"
    error_message = "organizations_role_arn reaches the functions as OPS_ORGANIZATIONS_ROLE_ARN."
  }

  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.business["planner"].statement : s.sid != "AssumeTargetRoles"])
    error_message = "Without role_arns or accounts there is no statement on exact role ARNs."
  }
}

run "classic_scope_sets_the_landing_zone_variables_empty" {
  command = plan

  variables {
    scope = { regions = ["us-east-1"], role_arns = ["arn:aws:iam::444455556666:role/target"] }
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_TARGET_ACCOUNTS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_ORGANIZATIONAL_UNITS"] == "[]" &&
      output.function_environment_variables["OPS_TARGET_ROLE_NAME"] == "" &&
      output.function_environment_variables["OPS_ORGANIZATIONS_ROLE_ARN"] == "" &&
      output.function_environment_variables["OPS_EXCLUDE_ACCOUNTS"] == "[]"
    )
    error_message = "Every scope sets the landing-zone variables, empty when unused."
  }

  assert {
    condition = alltrue(flatten([
      for doc in data.aws_iam_policy_document.business : [
        for s in doc.statement : !contains(["AssumeOrganizationTargetRoles", "ReadOrganizationUnits", "AssumeOrganizationsRole"], s.sid)
      ]
    ]))
    error_message = "Without OUs no function reads Organizations or assumes roles by name."
  }

  assert {
    condition     = alltrue([for s in data.aws_iam_policy_document.target_role.statement : s.sid != "DescribeEnabledRegions"])
    error_message = "Without all-enabled regions the target role does not list regions."
  }

  assert {
    condition     = output.organizations_policy_json == null
    error_message = "Without OUs there is no organizations role policy."
  }
}

run "rejects_all_enabled_with_other_regions" {
  command = plan

  variables {
    scope = { regions = ["all-enabled", "us-east-1"], accounts = ["444455556666"], role_name = "r" }
  }

  expect_failures = [var.scope]
}

run "rejects_malformed_landing_zone_ids" {
  command = plan

  variables {
    scope = {
      accounts               = ["4444-5555-6666"]
      organizational_units   = [{ id = "OU-AB12" }]
      role_name              = "bad name"
      organization_id        = "org-1"
      organizations_role_arn = "arn:aws:iam::999988887777:user/alice"
    }
  }

  expect_failures = [var.scope]
}

run "rejects_a_malformed_excluded_account" {
  command = plan

  variables {
    scope = { accounts = ["444455556666"], role_name = "r", excluded_accounts = ["7777-8888-9999"] }
  }

  expect_failures = [var.scope]
}

################################################################################
# Restore tests: the restore_test group (OPS_RESTORE_TEST) and a second schedule's own missed-run alarm
################################################################################

run "restore_test_group_is_one_json_object" {
  command = plan

  variables {
    restore_test = {
      config = {
        subnet_id         = "subnet-12345678"
        security_group_id = "sg-12345678"
        source_tags       = { Tier = "gold" }
      }
    }
  }

  assert {
    condition = jsondecode(output.function_environment_variables["OPS_RESTORE_TEST"]) == {
      region                = null
      role_arn              = null
      subnet_id             = "subnet-12345678"
      security_group_id     = "sg-12345678"
      sources               = "all"
      sample_size           = 1
      source_tags           = { Tier = "gold" }
      max_concurrent        = 2
      deadline_minutes      = 30
      instance_type         = null
      validation_document   = null
      validation_parameters = {}
      instance_profile_name = null
      volume_type           = "gp3"
      allow_routed_subnet   = false
    }
    error_message = "restore_test.config is encoded as one JSON object holding every field (null where unused, defaults filled in)."
  }
}

run "restore_test_group_without_config_is_off" {
  command = plan

  variables {
    restore_test = {}
  }

  assert {
    condition     = output.function_environment_variables["OPS_RESTORE_TEST"] == ""
    error_message = "A restore_test group with a null config sets OPS_RESTORE_TEST to \"\" (tests off)."
  }
}

run "no_restore_test_group_sets_nothing" {
  command = plan

  assert {
    condition     = !contains(keys(output.function_environment_variables), "OPS_RESTORE_TEST")
    error_message = "Without the restore_test group OPS_RESTORE_TEST is not set at all."
  }
}

run "rejects_restore_test_in_environment" {
  command = plan

  variables {
    environment = { OPS_RESTORE_TEST = "{}" }
  }

  expect_failures = [var.environment]
}

run "own_missed_run_alarm_ignores_the_override" {
  command = plan

  variables {
    missed_run_alarm_hours = 30
    functions = {
      planner = { handler = "m.a", description = "a", consumes_queue = true, schedule = { expression = "cron(0 1 * * ? *)" } }
      daily   = { handler = "m.b", description = "b", schedule = { expression = "rate(2 days)", own_missed_run_alarm = true } }
      weekly  = { handler = "m.c", description = "c", schedule = { expression = "cron(0 3 ? * SUN *)", own_missed_run_alarm = true } }
    }
  }

  assert {
    condition     = output.missed_run_alarm_hours == { planner = 30, daily = 49 }
    error_message = "missed_run_alarm_hours overrides the main schedule only; a schedule with its own alarm derives it (none beyond 7 days)."
  }
}
