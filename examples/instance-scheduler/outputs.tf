output "policy_name" {
  description = "Name of the schedule policy."
  value       = var.name
}

output "starter_function_name" {
  description = "Name of the planner invoked at the start slots."
  value       = module.instance_scheduler.starter_function_name
}

output "stopper_function_name" {
  description = "Name of the planner invoked at the stop slots."
  value       = module.instance_scheduler.stopper_function_name
}

output "worker_function_name" {
  description = "Name of the worker function."
  value       = module.instance_scheduler.worker_function_name
}

output "planner_handler" {
  description = "Lambda handler string of both planners."
  value       = module.instance_scheduler.planner_handler
}

output "worker_handler" {
  description = "Lambda handler string of the worker."
  value       = module.instance_scheduler.worker_handler
}

output "function_environments" {
  description = "Environment variables of each function, keyed starter/stopper/worker, as Terraform set them."
  value = {
    starter = module.instance_scheduler.function_environment_variables
    stopper = module.instance_scheduler.function_environment_variables
    worker  = module.instance_scheduler.function_environment_variables
  }
}

output "schedules" {
  description = "The start and stop schedules as deployed (arn, expression, timezone)."
  value       = module.instance_scheduler.schedules
}

output "work_queue_url" {
  description = "URL of the work queue."
  value       = module.instance_scheduler.work_queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.instance_scheduler.dlq_url
}

output "ledger_table_name" {
  description = "Name of the ledger DynamoDB table."
  value       = module.instance_scheduler.ledger_table_name
}

output "event_rule_arns" {
  description = "ARNs of the EventBridge rules forwarding events to the work queue (here only instance-state)."
  value       = module.instance_scheduler.event_rule_arns
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker: EC2 start/stop on the instances carrying Schedule = office-hours."
  value       = module.instance_scheduler.worker_policy_json
}

output "alarm_arns" {
  description = "CloudWatch alarms of the policy (dead-letter messages, missed runs)."
  value       = module.instance_scheduler.alarm_arns
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the alarms."
  value       = aws_sns_topic.alarms.arn
}
