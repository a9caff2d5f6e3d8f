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
  description = "ARN of the planner's execution role (trust it from target_role_arns roles)."
  value       = module.this.role_arns["planner"]
}

output "worker_role_arn" {
  description = "ARN of the worker's execution role (trust it from target_role_arns roles)."
  value       = module.this.role_arns["worker"]
}

output "planner_policy_json" {
  description = "Business IAM policy of the planner (EC2/STS), as attached to its role."
  value       = module.this.business_policy_jsons["planner"]
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker (EC2/STS), as attached to its role."
  value       = module.this.business_policy_jsons["worker"]
}

output "target_role_policy_json" {
  description = "IAM policy each role in target_role_arns (or target_role_name in each target account) needs: the EC2 permissions of both functions with the same ownership conditions, plus ec2:DescribeRegions with regions = [\"all-enabled\"], without sts:AssumeRole."
  value       = module.this.target_role_policy_json
}

output "organizations_role_policy_json" {
  description = "IAM policy the role in organizations_role_arn needs: organizations:ListAccountsForParent and ListOrganizationalUnitsForParent on the OUs and root of target_organization_id (trust it from planner_role_arn); null without target_organizational_units."
  value       = module.this.organizations_policy_json
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

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: dead-letter messages, planner missed runs, and the event rule's failed invocations when kms_key_arn is set."
  value       = module.this.alarm_arns
}

output "missed_run_alarm_hours" {
  description = "Hours without a planner run before the backups-stopped alarm fires; null when the schedule runs less often than CloudWatch can watch (no such alarm)."
  value       = lookup(module.this.missed_run_alarm_hours, "planner", null)
}

################################################################################
# Restore tests (null when restore_test is null)
################################################################################

output "restore_function_name" {
  description = "Name of the restore-test planner function; null without restore_test."
  value       = lookup(module.this.function_names, "restore", null)
}

output "restore_handler" {
  description = "Lambda handler string of the restore-test planner; null without restore_test."
  value       = lookup(module.this.function_handlers, "restore", null)
}

output "restore_role_arn" {
  description = "Execution role ARN of the restore-test planner; null without restore_test."
  value       = lookup(module.this.role_arns, "restore", null)
}

output "restore_schedule" {
  description = "Schedule of the restore tests as deployed (arn, expression, timezone); null without restore_test."
  value       = lookup(module.this.schedules, "restore", null)
}

output "restore_event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding the state events of restored resources (instance-state) to the work queue; null without restore_test."
  value       = lookup(module.this.event_rule_arns, "instance-state", null)
}
