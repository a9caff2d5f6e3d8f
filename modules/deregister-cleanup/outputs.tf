################################################################################
# Functions
################################################################################

output "sweeper_function_name" {
  description = "Name of the scheduled sweeper function."
  value       = module.this.function_names["sweeper"]
}

output "sweeper_function_arn" {
  description = "ARN of the scheduled sweeper function."
  value       = module.this.function_arns["sweeper"]
}

output "sweeper_handler" {
  description = "Lambda handler string of the sweeper."
  value       = module.this.function_handlers["sweeper"]
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

output "function_environment_variables" {
  description = "Environment variables of both functions (the same set for sweeper and worker)."
  value       = module.this.function_environment_variables
}

output "function_timeouts" {
  description = "Timeouts of the functions in seconds, keyed sweeper/worker."
  value       = module.this.function_timeouts
}

output "sweeper_role_arn" {
  description = "ARN of the sweeper's execution role (trust it from target_role_arns roles)."
  value       = module.this.role_arns["sweeper"]
}

output "worker_role_arn" {
  description = "ARN of the worker's execution role (trust it from target_role_arns roles)."
  value       = module.this.role_arns["worker"]
}

output "sweeper_policy_json" {
  description = "Business IAM policy of the sweeper (EC2 reads, STS), as attached to its role."
  value       = module.this.business_policy_jsons["sweeper"]
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker (EC2 reads, DeleteSnapshot per scope, the exclusion Deny, STS), as attached to its role."
  value       = module.this.business_policy_jsons["worker"]
}

output "target_role_policy_json" {
  description = "IAM policy each role in target_role_arns needs for the chosen scope: the EC2 permissions of both functions with the same conditions and the exclusion Deny, without sts:AssumeRole."
  value       = module.this.target_role_policy_json
}

output "kms_key_policy_json" {
  description = "Key policy statements kms_key_arn needs for the service principals of this module (EventBridge rules to the encrypted queues, CloudWatch Logs)."
  value       = module.this.kms_key_policy_json
}

output "log_group_names" {
  description = "CloudWatch log group names of the functions, keyed sweeper/worker."
  value       = module.this.log_group_names
}

################################################################################
# Schedule and events
################################################################################

output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule invoking the sweeper."
  value       = module.this.schedule_arns["sweeper"]
}

output "schedule" {
  description = "The sweeper's schedule as deployed: arn, expression and timezone."
  value       = module.this.schedules["sweeper"]
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding EC2 AMI State Change events with state deregistered to the work queue."
  value       = module.this.event_rule_arns["ami-deregistered"]
}

output "cloudtrail_event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding successful CloudTrail DeregisterImage calls to the work queue; null unless cloudtrail_events is true."
  value       = lookup(module.this.event_rule_arns, "deregister-image-call", null)
}

output "event_rule_arns" {
  description = "ARNs of every EventBridge rule of the module, keyed ami-deregistered and (with cloudtrail_events) deregister-image-call."
  value       = module.this.event_rule_arns
}

################################################################################
# Queues and tables
################################################################################

output "work_queue_url" {
  description = "URL of the work queue (AMI deregistration events, the sweep's purge_snapshots items and their delayed retries)."
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
  description = "Name of the ledger DynamoDB table (one item per AMI handled)."
  value       = module.this.ledger_table_name
}

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: dead-letter messages, sweeper missed runs, and the event rules' failed invocations when kms_key_arn is set."
  value       = module.this.alarm_arns
}

output "missed_run_alarm_hours" {
  description = "Hours without a sweeper run before the missed-run alarm fires; null when the schedule runs less often than CloudWatch can watch (no such alarm)."
  value       = lookup(module.this.missed_run_alarm_hours, "sweeper", null)
}
