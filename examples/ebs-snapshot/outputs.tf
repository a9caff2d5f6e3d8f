output "policy_name" {
  description = "Name of the snapshot policy (value of the ops-automation:policy tag)."
  value       = var.name
}

output "planner_function_name" {
  description = "Name of the scheduled planner function."
  value       = module.ebs_snapshot.planner_function_name
}

output "worker_function_name" {
  description = "Name of the worker function."
  value       = module.ebs_snapshot.worker_function_name
}

output "function_environments" {
  description = "Environment variables of each function, keyed planner/worker/restore, as Terraform set them."
  value = {
    planner = module.ebs_snapshot.function_environment_variables
    worker  = module.ebs_snapshot.function_environment_variables
    restore = module.ebs_snapshot.function_environment_variables
  }
}

output "work_queue_url" {
  description = "URL of the work queue."
  value       = module.ebs_snapshot.work_queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.ebs_snapshot.dlq_url
}

output "ledger_table_name" {
  description = "Name of the ledger DynamoDB table."
  value       = module.ebs_snapshot.ledger_table_name
}

output "planner_handler" {
  description = "Lambda handler string of the planner."
  value       = module.ebs_snapshot.planner_handler
}

output "worker_handler" {
  description = "Lambda handler string of the worker."
  value       = module.ebs_snapshot.worker_handler
}

output "schedule_arn" {
  description = "ARN of the schedule invoking the planner."
  value       = module.ebs_snapshot.schedule_arn
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the alarms."
  value       = aws_sns_topic.alarms.arn
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding snapshot completion events to the work queue."
  value       = module.ebs_snapshot.event_rule_arn
}

output "restore_function_name" {
  description = "Name of the scheduled restore-test planner function."
  value       = module.ebs_snapshot.restore_function_name
}

output "restore_handler" {
  description = "Lambda handler string of the restore-test planner."
  value       = module.ebs_snapshot.restore_handler
}

output "restore_subnet_id" {
  description = "Isolated subnet the restore tests run in."
  value       = aws_subnet.restore_test.id
}

output "restore_security_group_id" {
  description = "Security group (no rules) of the restored copies."
  value       = aws_security_group.restore_test.id
}
