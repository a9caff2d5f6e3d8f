################################################################################
# Functions
################################################################################

output "starter_function_name" {
  description = "Name of the planner invoked by start_schedule; null without a start_schedule."
  value       = lookup(module.this.function_names, "starter", null)
}

output "stopper_function_name" {
  description = "Name of the planner invoked by stop_schedule; null without a stop_schedule."
  value       = lookup(module.this.function_names, "stopper", null)
}

output "planner_handler" {
  description = "Lambda handler string of both planners (the schedule's input names the action)."
  value       = local.functions.starter.handler
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
  description = "ARNs of the deployed functions, keyed starter/stopper/worker."
  value       = module.this.function_arns
}

output "function_environment_variables" {
  description = "Environment variables of every function (the same set for the planners and the worker)."
  value       = module.this.function_environment_variables
}

output "function_timeouts" {
  description = "Timeouts of the deployed functions in seconds, keyed starter/stopper/worker."
  value       = module.this.function_timeouts
}

output "role_arns" {
  description = "ARNs of the functions' execution roles, keyed starter/stopper/worker (trust them from target_role_arns roles)."
  value       = module.this.role_arns
}

output "planner_policy_json" {
  description = "Business IAM policy of each planner (EC2, and when enabled Auto Scaling and RDS, reads; STS), as attached to its role; null without any schedule."
  value       = try(coalesce(lookup(module.this.business_policy_jsons, "starter", null), lookup(module.this.business_policy_jsons, "stopper", null)), null)
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker (EC2 start/stop on the targets, kms:CreateGrant on volume_kms_key_arns, Auto Scaling group sizes in capacity mode, RDS start/stop with schedule_rds, STS), as attached to its role."
  value       = module.this.business_policy_jsons["worker"]
}

output "target_role_policy_json" {
  description = "IAM policy each role in target_role_arns (or target_role_name in each target account) needs: the EC2 (volume key, Auto Scaling, RDS) permissions of every function, plus ec2:DescribeRegions with regions = [\"all-enabled\"], without sts:AssumeRole."
  value       = module.this.target_role_policy_json
}

output "organizations_role_policy_json" {
  description = "IAM policy the role in organizations_role_arn needs: organizations:ListAccountsForParent and ListOrganizationalUnitsForParent on the OUs and root of target_organization_id (trust it from role_arns starter and stopper); null without target_organizational_units."
  value       = module.this.organizations_policy_json
}

output "kms_key_policy_json" {
  description = "Key policy statements kms_key_arn needs for the service principals of this module (EventBridge rule to the encrypted queues, CloudWatch Logs)."
  value       = module.this.kms_key_policy_json
}

output "log_group_names" {
  description = "CloudWatch log group names of the deployed functions, keyed starter/stopper/worker."
  value       = module.this.log_group_names
}

################################################################################
# Schedules and events
################################################################################

output "schedules" {
  description = "The schedules as deployed (arn, expression, timezone), keyed starter/stopper; an action without a schedule is absent."
  value       = module.this.schedules
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding EC2 Instance State-change Notification events (running, stopped) to the work queue."
  value       = module.this.event_rule_arns["instance-state"]
}

output "event_rule_arns" {
  description = "ARNs of the EventBridge rules forwarding events to the work queue, keyed instance-state, auto-scaling (capacity mode) and rds (schedule_rds)."
  value       = module.this.event_rule_arns
}

################################################################################
# Queues and tables
################################################################################

output "work_queue_url" {
  description = "URL of the work queue (start/stop batches, checks and instance state events)."
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
  description = "Name of the ledger DynamoDB table (each action and its verified outcome per instance and slot)."
  value       = module.this.ledger_table_name
}

################################################################################
# Alarms
################################################################################

output "alarm_arns" {
  description = "CloudWatch alarm ARNs: dead-letter messages, missed runs of each planner that has one, and the event rule's failed invocations when kms_key_arn is set."
  value       = module.this.alarm_arns
}

output "missed_run_alarm_hours" {
  description = "Hours without a run before the missed-run alarm of each planner fires, keyed starter/stopper; a planner whose schedule runs less often than CloudWatch can watch has none."
  value       = module.this.missed_run_alarm_hours
}
