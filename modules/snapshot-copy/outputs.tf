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

output "function_environment_variables" {
  description = "Environment variables of both functions (the same set for planner and worker)."
  value       = module.this.function_environment_variables
}

output "function_timeouts" {
  description = "Timeouts of the functions in seconds, keyed planner/worker."
  value       = module.this.function_timeouts
}

output "planner_role_arn" {
  description = "ARN of the planner's execution role (the trust policy of every destination role_arn must name it too: the planner lists the copies there)."
  value       = module.this.role_arns["planner"]
}

output "worker_role_arn" {
  description = "ARN of the worker's execution role (the trust policy of every destination role_arn must name it and planner_role_arn)."
  value       = module.this.role_arns["worker"]
}

output "planner_policy_json" {
  description = "Business IAM policy of the planner (EC2 reads), as attached to its role."
  value       = module.this.business_policy_jsons["planner"]
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker (EC2 copy, share and delete, KMS through EBS, STS on the destination roles), as attached to its role."
  value       = module.this.business_policy_jsons["worker"]
}

output "kms_key_policy_json" {
  description = "Key policy statements kms_key_arn needs for the service principals of this module (EventBridge rule to the encrypted queues, CloudWatch Logs)."
  value       = module.this.kms_key_policy_json
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

output "event_rule_arns" {
  description = "ARNs of the module's EventBridge rules in the source region, keyed snapshot-created, snapshot-set-created (snapshots) or ami-state (AMIs), and copy-result (forwarded copy results)."
  value       = module.this.event_rule_arns
}

################################################################################
# Destination regions (inputs of modules/destination)
################################################################################

output "event_bus_arn" {
  description = "ARN of the source region's default event bus, the target of each destination sub-module's forwarding rules (its event_bus_arn input)."
  value       = local.event_bus_arn
}

output "event_forwarder_role_arn" {
  description = "ARN of the role EventBridge assumes to forward copy results from the destination regions (the sub-module's event_forwarder_role_arn input); null without a same-account destination."
  value       = one(aws_iam_role.forwarder[*].arn)
}

output "copy_images" {
  description = "Whether the sources are AMIs (the sub-module's copy_images input: AMI state events are forwarded too)."
  value       = var.copy_images
}

output "destination_regions" {
  description = "Destination regions whose copies are made in this account, each needing one destination sub-module block with its provider."
  value       = local.same_account_regions
}

output "destination_role_policy_json" {
  description = "IAM policy each destination role_arn (DR account) needs to copy the shared sources into its account, tag and delete only its own copies and use the keys; null without a cross-account destination."
  value       = one(data.aws_iam_policy_document.destination_role[*].json)
}

################################################################################
# Queues and tables
################################################################################

output "work_queue_url" {
  description = "URL of the work queue (copy/check/purge work items, source and copy completion events)."
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

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: dead-letter messages, planner missed runs, and the event rule's failed invocations when kms_key_arn is set."
  value       = module.this.alarm_arns
}

output "missed_run_alarm_hours" {
  description = "Hours without a planner run before the copies-stopped alarm fires; null when the schedule runs less often than CloudWatch can watch (no such alarm)."
  value       = lookup(module.this.missed_run_alarm_hours, "planner", null)
}
