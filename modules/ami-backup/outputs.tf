################################################################################
# Functions
################################################################################

output "planner_function_name" {
  description = "Name of the scheduled planner function."
  value       = module.this.function_names["planner"]
}

output "planner_function_arn" {
  description = "ARN of the scheduled planner function."
  value       = module.this.function_arns["planner"]
}

output "worker_function_name" {
  description = "Name of the worker function consuming the work queue."
  value       = module.this.function_names["worker"]
}

output "worker_function_arn" {
  description = "ARN of the worker function consuming the work queue."
  value       = module.this.function_arns["worker"]
}

output "function_environment_variables" {
  description = "Environment variables of both functions (the same set for planner and worker)."
  value       = module.this.function_environment_variables
}

output "function_timeouts" {
  description = "Timeouts of the functions in seconds, keyed planner/worker."
  value       = module.this.function_timeouts
}

output "planner_role_arn" {
  description = "ARN of the planner's execution role (trust it from target_role_arns roles)."
  value       = module.this.role_arns["planner"]
}

output "worker_role_arn" {
  description = "ARN of the worker's execution role (trust it from target_role_arns roles)."
  value       = module.this.role_arns["worker"]
}

output "planner_policy_json" {
  description = "Business IAM policy of the planner (EC2/STS), as attached to its role."
  value       = data.aws_iam_policy_document.planner.json
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker (EC2/STS), as attached to its role."
  value       = data.aws_iam_policy_document.worker.json
}

output "target_role_policy_json" {
  description = "IAM policy each role in target_role_arns needs: the EC2 permissions of both functions, with the same ownership conditions."
  value       = data.aws_iam_policy_document.target_role.json
}

output "log_group_names" {
  description = "CloudWatch log group names of the functions, keyed planner/worker."
  value       = module.this.log_group_names
}

################################################################################
# Schedule and events
################################################################################

output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule invoking the planner."
  value       = module.this.schedule_arns["planner"]
}

output "schedule" {
  description = "The planner's schedule as deployed: arn, expression and timezone."
  value       = module.this.schedules["planner"]
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding EC2 AMI State Change events to the work queue."
  value       = module.this.event_rule_arns["ami-state"]
}

################################################################################
# Queues and tables
################################################################################

output "work_queue_url" {
  description = "URL of the work queue (create/check work items and AMI state events)."
  value       = module.this.work_queue_url
}

output "work_queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the work queue in seconds (6 x the worker timeout)."
  value       = module.this.work_queue_visibility_timeout_seconds
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
  description = "Name of the ledger DynamoDB table."
  value       = module.this.ledger_table_name
}

output "idempotency_table_name" {
  description = "Name of the Powertools idempotency DynamoDB table."
  value       = module.this.idempotency_table_name
}

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: function errors, dead-letter messages and BackupsFailed."
  value       = module.this.alarm_arns
}
