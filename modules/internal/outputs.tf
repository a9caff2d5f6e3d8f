################################################################################
# Functions
################################################################################

output "function_names" {
  description = "Lambda function names, keyed like var.functions."
  value       = { for key, fn in aws_lambda_function.this : key => fn.function_name }
}

output "function_arns" {
  description = "Lambda function ARNs, keyed like var.functions."
  value       = { for key, fn in aws_lambda_function.this : key => fn.arn }
}

output "function_environment_variables" {
  description = "Environment variables of the functions (the same set for every function)."
  value       = local.function_environment
}

output "function_timeouts" {
  description = "Timeouts of the functions in seconds, keyed like var.functions."
  value       = { for key, fn in aws_lambda_function.this : key => fn.timeout }
}

output "function_handlers" {
  description = "Lambda handler strings of the functions, keyed like var.functions."
  value       = { for key, fn in aws_lambda_function.this : key => fn.handler }
}

output "role_arns" {
  description = "Execution role ARNs of the functions, keyed like var.functions."
  value       = { for key, role in aws_iam_role.this : key => role.arn }
}

output "role_names" {
  description = "Execution role names of the functions, keyed like var.functions."
  value       = { for key, role in aws_iam_role.this : key => role.name }
}

output "business_policy_jsons" {
  description = "Business IAM policy of each function as attached to its role (ownership conditions and sts:AssumeRole included), keyed like var.functions."
  value       = { for key, doc in data.aws_iam_policy_document.business : key => doc.json }
}

output "plumbing_policy_jsons" {
  description = "Plumbing IAM policy of each function (logs, queue, ledger, alert topic, key, X-Ray), keyed like var.functions."
  value       = { for key, doc in data.aws_iam_policy_document.plumbing : key => doc.json }
}

output "target_role_policy_json" {
  description = "IAM policy each role in scope.role_arns (or scope.role_name in each account) needs: the business statements of every function with their ownership conditions (ec2:DescribeRegions with all-enabled regions), without sts:AssumeRole."
  value       = data.aws_iam_policy_document.target_role.json
}

output "organizations_policy_json" {
  description = "IAM policy the role in scope.organizations_role_arn needs (the planners' Organizations reads on this organization's OUs and root); null without scope.organizational_units."
  value       = length(local.organization_read_statements) == 0 ? null : data.aws_iam_policy_document.organizations.json
}

output "kms_key_policy_json" {
  description = "Key policy statements for kms_key_arn: the service principals (EventBridge, CloudWatch Logs) that use the key for this module, bound to its rules and log groups."
  value       = data.aws_iam_policy_document.kms_key.json
}

output "log_group_names" {
  description = "CloudWatch log group names of the functions, keyed like var.functions."
  value       = { for key, group in aws_cloudwatch_log_group.this : key => group.name }
}

output "powertools_layer_arn" {
  description = "Powertools layer version ARN attached to the functions."
  value       = local.powertools_layer_arn
}

################################################################################
# Schedules and events
################################################################################

output "schedule_arns" {
  description = "EventBridge Scheduler schedule ARNs, keyed by the scheduled function."
  value       = { for key, schedule in aws_scheduler_schedule.this : key => schedule.arn }
}

output "schedules" {
  description = "Schedules as deployed (arn, expression, timezone), keyed by the scheduled function."
  value = {
    for key, schedule in aws_scheduler_schedule.this : key => {
      arn        = schedule.arn
      expression = schedule.schedule_expression
      timezone   = schedule.schedule_expression_timezone
    }
  }
}

output "scheduler_role_arns" {
  description = "Roles EventBridge Scheduler uses to invoke the functions, keyed by the scheduled function."
  value       = { for key, role in aws_iam_role.scheduler : key => role.arn }
}

output "event_rule_arns" {
  description = "EventBridge rule ARNs forwarding events to the work queue, keyed like var.event_patterns."
  value       = { for key, rule in aws_cloudwatch_event_rule.this : key => rule.arn }
}

################################################################################
# Queues
################################################################################

output "work_queue_url" {
  description = "URL of the work queue."
  value       = aws_sqs_queue.work.url
}

output "work_queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the work queue (6 x the consuming function's timeout)."
  value       = aws_sqs_queue.work.visibility_timeout_seconds
}

output "work_queue_arn" {
  description = "ARN of the work queue."
  value       = aws_sqs_queue.work.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

################################################################################
# Tables
################################################################################

output "ledger_table_name" {
  description = "Name of the ledger DynamoDB table."
  value       = aws_dynamodb_table.ledger.name
}

output "ledger_table_arn" {
  description = "ARN of the ledger DynamoDB table."
  value       = aws_dynamodb_table.ledger.arn
}

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: DLQ messages, missed runs of each scheduled function, and event rules' failed invocations when a KMS key is set."
  value = merge(
    { dlq-messages = aws_cloudwatch_metric_alarm.dlq.arn },
    { for key, alarm in aws_cloudwatch_metric_alarm.missed_run : "${key}-missed-run" => alarm.arn },
    { for key, alarm in aws_cloudwatch_metric_alarm.event_rule_failed_invocations : "${key}-failed-invocations" => alarm.arn },
  )
}

output "missed_run_alarm_hours" {
  description = "Hours without an invocation before the missed-run alarm of each scheduled function fires, keyed by function."
  value       = local.missed_run_hours
}
