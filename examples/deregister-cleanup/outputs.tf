output "policy_name" {
  description = "Name of the clean-up policy (prefix of its resources)."
  value       = var.name
}

output "sweeper_function_name" {
  description = "Name of the scheduled sweeper function."
  value       = module.deregister_cleanup.sweeper_function_name
}

output "worker_function_name" {
  description = "Name of the worker function."
  value       = module.deregister_cleanup.worker_function_name
}

output "function_environments" {
  description = "Environment variables of each function, keyed sweeper/worker, as Terraform set them."
  value = {
    sweeper = module.deregister_cleanup.function_environment_variables
    worker  = module.deregister_cleanup.function_environment_variables
  }
}

output "work_queue_url" {
  description = "URL of the work queue."
  value       = module.deregister_cleanup.work_queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.deregister_cleanup.dlq_url
}

output "ledger_table_name" {
  description = "Name of the ledger DynamoDB table."
  value       = module.deregister_cleanup.ledger_table_name
}

output "sweeper_handler" {
  description = "Lambda handler string of the sweeper."
  value       = module.deregister_cleanup.sweeper_handler
}

output "worker_handler" {
  description = "Lambda handler string of the worker."
  value       = module.deregister_cleanup.worker_handler
}

output "schedule_arn" {
  description = "ARN of the schedule invoking the sweeper."
  value       = module.deregister_cleanup.schedule_arn
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the alarms and the sweep's orphan summary."
  value       = aws_sns_topic.alarms.arn
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule forwarding AMI deregistrations to the work queue."
  value       = module.deregister_cleanup.event_rule_arn
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker for the chosen scope."
  value       = module.deregister_cleanup.worker_policy_json
}
