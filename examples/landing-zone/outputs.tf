output "ami_backup_policy_name" {
  description = "Name of the AMI backup policy (value of the ops-automation:policy tag on its AMIs in the workload accounts)."
  value       = "${var.name}-ami-backup"
}

output "ebs_snapshot_policy_name" {
  description = "Name of the EBS snapshot policy (value of the ops-automation:policy tag on its snapshots)."
  value       = "${var.name}-ebs-snapshot"
}

output "hub_role_arns" {
  description = "The hub functions' roles, by module and function: the only principals the workload roles trust."
  value = {
    ami-backup   = { planner = module.ami_backup.planner_role_arn, worker = module.ami_backup.worker_role_arn }
    ebs-snapshot = { planner = module.ebs_snapshot.planner_role_arn, worker = module.ebs_snapshot.worker_role_arn }
  }
}

output "workload_role_arns" {
  description = "The roles created in each workload account, by account and module."
  value = {
    workload_a = module.workload_a_role.role_arns
    workload_b = module.workload_b_role.role_arns
  }
}

output "workload_account_ids" {
  description = "The workload accounts, as read from the deploy role ARNs."
  value       = local.workload_accounts
}

output "function_environments" {
  description = "Environment variables of each hub module's functions, as Terraform set them."
  value = {
    ami-backup   = module.ami_backup.function_environment_variables
    ebs-snapshot = module.ebs_snapshot.function_environment_variables
  }
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the alarms of both hub modules."
  value       = aws_sns_topic.alarms.arn
}
