output "policy_name" {
  description = "Name of the copy policy (value of the ops-automation:policy tag on the copies)."
  value       = var.name
}

output "source_policy_name" {
  description = "Name of the ebs-snapshot policy whose snapshots are copied."
  value       = var.source_policy_name
}

output "planner_function_name" {
  description = "Name of the copy policy's scheduled planner function."
  value       = module.snapshot_copy.planner_function_name
}

output "worker_function_name" {
  description = "Name of the copy policy's worker function."
  value       = module.snapshot_copy.worker_function_name
}

output "function_environments" {
  description = "Environment variables of each copy function, keyed planner/worker, as Terraform set them."
  value = {
    planner = module.snapshot_copy.function_environment_variables
    worker  = module.snapshot_copy.function_environment_variables
  }
}

output "planner_handler" {
  description = "Lambda handler string of the copy planner."
  value       = module.snapshot_copy.planner_handler
}

output "worker_handler" {
  description = "Lambda handler string of the copy worker."
  value       = module.snapshot_copy.worker_handler
}

output "work_queue_url" {
  description = "URL of the copy policy's work queue."
  value       = module.snapshot_copy.work_queue_url
}

output "dlq_url" {
  description = "URL of the copy policy's dead-letter queue."
  value       = module.snapshot_copy.dlq_url
}

output "ledger_table_name" {
  description = "Name of the copy policy's ledger DynamoDB table."
  value       = module.snapshot_copy.ledger_table_name
}

output "event_rule_arns" {
  description = "ARNs of the copy policy's EventBridge rules in the source region."
  value       = module.snapshot_copy.event_rule_arns
}

output "destination_rule_arns" {
  description = "ARNs of the forwarding rules in the destination region."
  value       = module.snapshot_copy_osaka.event_rule_arns
}

output "destination_kms_key_arn" {
  description = "ARN of the key encrypting the copies in the destination region."
  value       = aws_kms_key.osaka_copies.arn
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the alarms of both policies."
  value       = aws_sns_topic.alarms.arn
}
