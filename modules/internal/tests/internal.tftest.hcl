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
      handler     = "ops_automation.test.plan_handler"
      description = "Plans work."
      policy_json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
      schedule = {
        expression = "cron(0 1 * * ? *)"
        timezone   = "Asia/Tokyo"
        input      = "{\"mode\":\"full\"}"
      }
    }
    worker = {
      handler        = "ops_automation.test.work_handler"
      description    = "Does work."
      timeout        = 300
      policy_json    = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
      consumes_queue = true
    }
  }
  event_patterns = {
    ami-state = "{\"source\":[\"aws.ec2\"]}"
  }
  environment     = { OPS_EXTRA = "x" }
  failure_metrics = ["BackupsFailed"]
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
    condition = alltrue([
      for k in ["POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "OPS_POLICY_NAME", "OPS_WORK_QUEUE_URL", "OPS_LEDGER_TABLE", "OPS_IDEMPOTENCY_TABLE", "OPS_EXTRA"] :
      contains(keys(aws_lambda_function.this["worker"].environment[0].variables), k)
    ])
    error_message = "Functions must receive the internal variables plus var.environment."
  }

  assert {
    condition = (
      aws_lambda_function.this["worker"].environment[0].variables["POWERTOOLS_SERVICE_NAME"] == "test-service" &&
      aws_lambda_function.this["worker"].environment[0].variables["POWERTOOLS_METRICS_NAMESPACE"] == "OpsAutomation" &&
      aws_lambda_function.this["worker"].environment[0].variables["OPS_POLICY_NAME"] == "nightly"
    )
    error_message = "Service name, metrics namespace and policy name must follow DESIGN.md."
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

run "tables" {
  command = plan

  assert {
    condition     = aws_dynamodb_table.ledger.hash_key == "pk" && aws_dynamodb_table.ledger.range_key == "sk" && aws_dynamodb_table.ledger.ttl[0].attribute_name == "expires_at"
    error_message = "Ledger keys and TTL must follow DESIGN.md."
  }

  assert {
    condition     = aws_dynamodb_table.idempotency.hash_key == "id" && aws_dynamodb_table.idempotency.ttl[0].attribute_name == "expiration"
    error_message = "Idempotency table must use Powertools' layout (id, expiration)."
  }

  assert {
    condition     = aws_dynamodb_table.ledger.billing_mode == "PAY_PER_REQUEST" && aws_dynamodb_table.ledger.point_in_time_recovery[0].enabled
    error_message = "Tables must be on demand with point-in-time recovery by default."
  }
}

run "alarms_without_topic" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.function_errors) == 2 && aws_cloudwatch_metric_alarm.function_errors["worker"].metric_name == "Errors"
    error_message = "Every function needs an Errors alarm."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.failure_metrics["BackupsFailed"].namespace == "OpsAutomation" &&
      aws_cloudwatch_metric_alarm.failure_metrics["BackupsFailed"].dimensions == tomap({ service = "test-service", policy = "nightly" })
    )
    error_message = "Failure metric alarms must watch the EMF metric with the service and policy dimensions."
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.dlq.alarm_actions) == 0
    error_message = "Without a topic, alarms have no actions."
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
    condition     = aws_sqs_queue.work.kms_master_key_id == var.kms_key_arn && aws_sqs_queue.dlq.kms_master_key_id == var.kms_key_arn
    error_message = "Queues must use the customer key when given."
  }

  assert {
    condition     = aws_dynamodb_table.ledger.server_side_encryption[0].kms_key_arn == var.kms_key_arn && !aws_dynamodb_table.ledger.point_in_time_recovery[0].enabled
    error_message = "Tables must use the customer key when given, and honour the PITR switch."
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
    condition     = toset([for s in data.aws_iam_policy_document.plumbing["worker"].statement : s.sid]) == toset(["OwnLogGroup", "WorkQueue", "Tables", "Kms", "XRay"])
    error_message = "The worker's plumbing policy must add Kms and XRay statements when enabled."
  }
}

# apply (against the mock) because resource ARNs in the policies are unknown at plan time.
run "plumbing_minimal_without_options" {
  command = apply

  assert {
    condition     = toset([for s in data.aws_iam_policy_document.plumbing["worker"].statement : s.sid]) == toset(["OwnLogGroup", "WorkQueue", "Tables"])
    error_message = "Without key and tracing, the worker's plumbing is logs, queue and tables only."
  }

  assert {
    condition     = toset([for s in data.aws_iam_policy_document.plumbing["planner"].statement : s.sid]) == toset(["OwnLogGroup", "WorkQueue", "AsyncFailureDestination", "Tables"])
    error_message = "A scheduled function may also send to the DLQ (its async failure destination)."
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
      a = { handler = "m.a", description = "a", policy_json = "{\"Statement\":[]}", consumes_queue = true }
      b = { handler = "m.b", description = "b", policy_json = "{\"Statement\":[]}", consumes_queue = true }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_bad_schedule_expression" {
  command = plan

  variables {
    functions = {
      a = { handler = "m.a", description = "a", policy_json = "{\"Statement\":[]}", consumes_queue = true, schedule = { expression = "0 1 * * *" } }
    }
  }

  expect_failures = [var.functions]
}

run "rejects_reserved_environment_key" {
  command = plan

  variables {
    environment = { OPS_POLICY_NAME = "other" }
  }

  expect_failures = [var.environment]
}

run "rejects_unsupported_log_retention" {
  command = plan

  variables {
    log_retention_days = 10
  }

  expect_failures = [var.log_retention_days]
}
