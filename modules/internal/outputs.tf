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

output "role_arns" {
  description = "Execution role ARNs of the functions, keyed like var.functions."
  value       = { for key, role in aws_iam_role.this : key => role.arn }
}

output "role_names" {
  description = "Execution role names of the functions, keyed like var.functions."
  value       = { for key, role in aws_iam_role.this : key => role.name }
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

output "idempotency_table_name" {
  description = "Name of the Powertools idempotency DynamoDB table."
  value       = aws_dynamodb_table.idempotency.name
}

output "idempotency_table_arn" {
  description = "ARN of the Powertools idempotency DynamoDB table."
  value       = aws_dynamodb_table.idempotency.arn
}

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: function errors, DLQ messages and failure metrics."
  value = merge(
    { for key, alarm in aws_cloudwatch_metric_alarm.function_errors : "${key}-errors" => alarm.arn },
    { dlq-messages = aws_cloudwatch_metric_alarm.dlq.arn },
    { for key, alarm in aws_cloudwatch_metric_alarm.failure_metrics : key => alarm.arn },
  )
}
