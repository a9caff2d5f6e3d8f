################################################################################
# Functions
################################################################################

output "planner_function_name" {
  description = "Name of the planner invoked by the schedule."
  value       = module.this.function_names["planner"]
}

output "planner_handler" {
  description = "Lambda handler string of the planner."
  value       = module.this.function_handlers["planner"]
}

output "worker_function_name" {
  description = "Name of the worker function consuming the work queue."
  value       = module.this.function_names["worker"]
}

output "worker_function_arn" {
  description = "ARN of the worker function consuming the work queue."
  value       = module.this.function_arns["worker"]
}

output "worker_handler" {
  description = "Lambda handler string of the worker."
  value       = module.this.function_handlers["worker"]
}

output "function_arns" {
  description = "ARNs of the deployed functions, keyed planner/worker."
  value       = module.this.function_arns
}

output "function_environment_variables" {
  description = "Environment variables of every function (the same set for the planner and the worker)."
  value       = module.this.function_environment_variables

  # Checked at plan time whenever parameters, instance_ids and target_tags are known (main.tf: the values
  # created in the same apply count at their longest); otherwise Lambda refuses the function at apply.
  precondition {
    condition     = local.environment_bytes <= local.environment_limit_bytes
    error_message = "The functions' environment would take ${local.environment_bytes} bytes (names and values in UTF-8, the queue URL, ledger table, alert topic and output bucket counted at their longest), above the ${local.environment_limit_bytes} bytes Lambda allows for all of a function's environment variables together. It grows with parameters (${length(jsonencode(var.parameters))} characters as JSON: put a long script into your own SSM document), instance_ids (${length(var.instance_ids)} ids, about 22 bytes each: tag the instances and use target_tags) and target_tags (${length(jsonencode(var.target_tags))} characters as JSON: use fewer or shorter tags)."
  }
}

output "function_timeouts" {
  description = "Timeouts of the deployed functions in seconds, keyed planner/worker."
  value       = module.this.function_timeouts
}

output "role_arns" {
  description = "ARNs of the functions' execution roles, keyed planner/worker (trust the worker's from target_role_arns roles)."
  value       = module.this.role_arns
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker (ssm:SendCommand on the document, the target instances and the output bucket, the SSM and EC2 reads, iam:PassRole on the notification role, STS), as attached to its role."
  value       = module.this.business_policy_jsons["worker"]
}

output "target_role_policy_json" {
  description = "IAM policy each role in target_role_arns needs: the EC2 and SSM permissions of the worker, without sts:AssumeRole."
  value       = module.this.target_role_policy_json
}

output "instance_output_policy_json" {
  description = "IAM policy the target instances' own role (instance profile) needs so SSM Agent can write the command output to the bucket prefix or log group; null without output."
  value       = one(data.aws_iam_policy_document.instance_output[*].json)
}

output "kms_key_policy_json" {
  description = "Key policy statements kms_key_arn needs for the service principals of this module (EventBridge rule to the encrypted queues, CloudWatch Logs for the function and command output log groups)."
  value       = module.this.kms_key_policy_json
}

output "log_group_names" {
  description = "CloudWatch log group names of the deployed functions, keyed planner/worker."
  value       = module.this.log_group_names
}

################################################################################
# Command
################################################################################

output "document_arn" {
  description = "ARN of the document as the worker's ssm:SendCommand statement names it (region and account * when several are targeted)."
  value       = local.document_arn
}

output "verify_deadline_minutes" {
  description = "Verification deadline in minutes after the send, as given or derived from the timeouts."
  value       = local.verify_deadline_minutes
}

output "output_log_group_name" {
  description = "CloudWatch Logs group the command output is written to; null without CloudWatch output."
  value       = local.output_log_group_name
}

output "output_log_group_arn" {
  description = "ARN of the command output log group the module created; null when it created none."
  value       = one(aws_cloudwatch_log_group.output[*].arn)
}

################################################################################
# Schedules and events
################################################################################

output "schedules" {
  description = "The schedule as deployed (arn, expression, timezone), keyed planner."
  value       = module.this.schedules
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding the document's EC2 Command Status-change and EC2 Command Invocation Status-change Notification events to the work queue."
  value       = module.this.event_rule_arns["command-status"]
}

output "event_rule_arns" {
  description = "ARNs of the EventBridge rules forwarding events to the work queue, keyed command-status."
  value       = module.this.event_rule_arns
}

################################################################################
# Queues and tables
################################################################################

output "work_queue_url" {
  description = "URL of the work queue (send items, checks and SSM status events)."
  value       = module.this.work_queue_url
}

output "work_queue_arn" {
  description = "ARN of the work queue."
  value       = module.this.work_queue_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.this.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = module.this.dlq_arn
}

output "ledger_table_name" {
  description = "Name of the ledger DynamoDB table (each command sent and each instance's final status per slot)."
  value       = module.this.ledger_table_name
}

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: dead-letter messages, missed runs of the planner when it has one, and the event rule's failed invocations when kms_key_arn is set."
  value       = module.this.alarm_arns
}

output "missed_run_alarm_hours" {
  description = "Hours without a run before the planner's missed-run alarm fires, keyed planner; absent when its schedule runs less often than CloudWatch can watch."
  value       = module.this.missed_run_alarm_hours
}
