output "policy_name" {
  description = "Name of the run command policy."
  value       = var.name
}

output "planner_function_name" {
  description = "Name of the planner invoked at each slot."
  value       = module.ssm_runcommand.planner_function_name
}

output "worker_function_name" {
  description = "Name of the worker function."
  value       = module.ssm_runcommand.worker_function_name
}

output "planner_handler" {
  description = "Lambda handler string of the planner."
  value       = module.ssm_runcommand.planner_handler
}

output "worker_handler" {
  description = "Lambda handler string of the worker."
  value       = module.ssm_runcommand.worker_handler
}

output "function_environments" {
  description = "Environment variables of each function, keyed planner/worker, as Terraform set them."
  value = {
    planner = module.ssm_runcommand.function_environment_variables
    worker  = module.ssm_runcommand.function_environment_variables
  }
}

output "schedules" {
  description = "The schedule as deployed (arn, expression, timezone)."
  value       = module.ssm_runcommand.schedules
}

output "work_queue_url" {
  description = "URL of the work queue."
  value       = module.ssm_runcommand.work_queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.ssm_runcommand.dlq_url
}

output "ledger_table_name" {
  description = "Name of the ledger DynamoDB table."
  value       = module.ssm_runcommand.ledger_table_name
}

output "event_rule_arns" {
  description = "ARNs of the EventBridge rules forwarding events to the work queue (here only command-status)."
  value       = module.ssm_runcommand.event_rule_arns
}

output "worker_policy_json" {
  description = "Business IAM policy of the worker: SendCommand with AWS-RunShellScript on the instances tagged Backup = online-db and the output bucket."
  value       = module.ssm_runcommand.worker_policy_json
}

output "output_bucket_name" {
  description = "Bucket the instances write the command output to, under the policy name."
  value       = aws_s3_bucket.command_output.id
}

output "instance_output_policy_arn" {
  description = "Managed policy to attach to the target instances' role so SSM Agent can write the output."
  value       = aws_iam_policy.instance_output.arn
}

output "instance_output_policy_json" {
  description = "The same policy as JSON: s3:PutObject under the prefix and s3:GetEncryptionConfiguration on the bucket."
  value       = module.ssm_runcommand.instance_output_policy_json
}

output "alarm_arns" {
  description = "CloudWatch alarms of the policy (dead-letter messages, missed runs)."
  value       = module.ssm_runcommand.alarm_arns
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the alarms and the per-instance failure alerts."
  value       = aws_sns_topic.alarms.arn
}
