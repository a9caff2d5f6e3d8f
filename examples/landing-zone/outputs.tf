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
  description = "The roles created in each workload account, by account and module (named alike in every account: the hub modules' target_role_name)."
  value = {
    workload_a = module.workload_a_role.role_arns
    workload_b = module.workload_b_role.role_arns
  }
}

output "workload_account_ids" {
  description = "The workload accounts whose spoke pieces this configuration deploys, as read from the deploy role ARNs (the hub itself targets every ACTIVE account of var.organizational_units)."
  value = {
    workload_a = split(":", var.workload_a_deploy_role_arn)[4]
    workload_b = split(":", var.workload_b_deploy_role_arn)[4]
  }
}

output "hub_event_bus_arn" {
  description = "The hub's default event bus: the spokes forward their state events to it, and it accepts PutEvents from the organization only."
  value       = local.hub_event_bus_arn
}

output "forwarding_rule_arns" {
  description = "The event-forwarding rule of each workload account, by account and Region."
  value = {
    workload_a = {
      (var.region)        = module.workload_a_forwarding.rule_arn
      (var.second_region) = module.workload_a_forwarding_second_region.rule_arn
    }
    workload_b = {
      (var.region)        = module.workload_b_forwarding.rule_arn
      (var.second_region) = module.workload_b_forwarding_second_region.rule_arn
    }
  }
}

output "organizations_role_policy_json" {
  description = "What the role named by organizations_role_arn needs, by hub module (the Organizations reads of its planner); attach it in the management or delegated-administrator account."
  value = {
    ami-backup   = module.ami_backup.organizations_role_policy_json
    ebs-snapshot = module.ebs_snapshot.organizations_role_policy_json
  }
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
