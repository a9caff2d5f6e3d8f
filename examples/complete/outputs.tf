output "alert_topic_arn" {
  description = "SNS topic receiving every module's alarms and failure alerts (subscribe to it yourself)."
  value       = aws_sns_topic.alerts.arn
}

output "kms_key_arn" {
  description = "Customer managed key shared by every module and the alert topic."
  value       = aws_kms_key.ops.arn
}

output "dr_kms_key_arn" {
  description = "Key encrypting the snapshot copies in the DR region."
  value       = aws_kms_key.osaka_copies.arn
}

output "policy_names" {
  description = "Policy name of each module block (its resources' prefix and, for the backups, the ops-automation:policy tag)."
  value       = local.policy_names
}

output "function_names" {
  description = "Names of the deployed functions, keyed by module block, then by function."
  value = {
    ami_backup          = { planner = module.ami_backup.planner_function_name, worker = module.ami_backup.worker_function_name }
    ebs_snapshot        = { planner = module.ebs_snapshot.planner_function_name, worker = module.ebs_snapshot.worker_function_name }
    ebs_snapshot_weekly = { planner = module.ebs_snapshot_weekly.planner_function_name, worker = module.ebs_snapshot_weekly.worker_function_name }
    snapshot_copy       = { planner = module.snapshot_copy.planner_function_name, worker = module.snapshot_copy.worker_function_name }
    deregister_cleanup  = { sweeper = module.deregister_cleanup.sweeper_function_name, worker = module.deregister_cleanup.worker_function_name }
    instance_scheduler = {
      starter = module.instance_scheduler.starter_function_name
      stopper = module.instance_scheduler.stopper_function_name
      worker  = module.instance_scheduler.worker_function_name
    }
    ssm_runcommand = { planner = module.ssm_runcommand.planner_function_name, worker = module.ssm_runcommand.worker_function_name }
  }
}

output "function_environments" {
  description = "Environment variables of each module's functions (one set per module), keyed by module block, as Terraform set them."
  value = {
    ami_backup          = module.ami_backup.function_environment_variables
    ebs_snapshot        = module.ebs_snapshot.function_environment_variables
    ebs_snapshot_weekly = module.ebs_snapshot_weekly.function_environment_variables
    snapshot_copy       = module.snapshot_copy.function_environment_variables
    deregister_cleanup  = module.deregister_cleanup.function_environment_variables
    instance_scheduler  = module.instance_scheduler.function_environment_variables
    ssm_runcommand      = module.ssm_runcommand.function_environment_variables
  }
}

output "schedules" {
  description = "Every schedule as deployed (arn, expression, timezone), keyed by module block, then by the function it invokes."
  value = {
    ami_backup          = { planner = module.ami_backup.schedule }
    ebs_snapshot        = { planner = module.ebs_snapshot.schedule }
    ebs_snapshot_weekly = { planner = module.ebs_snapshot_weekly.schedule }
    snapshot_copy       = { planner = module.snapshot_copy.schedule }
    deregister_cleanup  = { sweeper = module.deregister_cleanup.schedule }
    instance_scheduler  = module.instance_scheduler.schedules
    ssm_runcommand      = module.ssm_runcommand.schedules
  }
}

output "ledger_table_names" {
  description = "Ledger DynamoDB table of each module, keyed by module block."
  value = {
    ami_backup          = module.ami_backup.ledger_table_name
    ebs_snapshot        = module.ebs_snapshot.ledger_table_name
    ebs_snapshot_weekly = module.ebs_snapshot_weekly.ledger_table_name
    snapshot_copy       = module.snapshot_copy.ledger_table_name
    deregister_cleanup  = module.deregister_cleanup.ledger_table_name
    instance_scheduler  = module.instance_scheduler.ledger_table_name
    ssm_runcommand      = module.ssm_runcommand.ledger_table_name
  }
}

output "work_queue_urls" {
  description = "Work queue of each module, keyed by module block."
  value = {
    ami_backup          = module.ami_backup.work_queue_url
    ebs_snapshot        = module.ebs_snapshot.work_queue_url
    ebs_snapshot_weekly = module.ebs_snapshot_weekly.work_queue_url
    snapshot_copy       = module.snapshot_copy.work_queue_url
    deregister_cleanup  = module.deregister_cleanup.work_queue_url
    instance_scheduler  = module.instance_scheduler.work_queue_url
    ssm_runcommand      = module.ssm_runcommand.work_queue_url
  }
}

output "dr_event_rule_arns" {
  description = "ARNs of the rules forwarding the copy results from the DR region to the copy policy's work queue."
  value       = module.snapshot_copy_osaka.event_rule_arns
}

output "output_bucket_name" {
  description = "Bucket the always-on instances write the nightly command's output to, under the ssm-runcommand policy name."
  value       = aws_s3_bucket.command_output.id
}

output "instance_output_policy_arn" {
  description = "Managed policy to attach to the always-on instances' role so SSM Agent can write the output."
  value       = aws_iam_policy.instance_output.arn
}
