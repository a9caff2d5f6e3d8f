# The hub (operations) account: the provider Terraform runs with. It holds every function, queue, ledger and
# schedule, and covers several regions through the modules' `regions` input: one deployment per module, not one
# per region.
provider "aws" {
  region = var.region
}

# One alias per workload account: IAM is global to an account, so each account's role needs a provider that
# acts in that account, whatever the region. Terraform 1.x has no for_each on providers, hence one block per
# account, written out. The region only sets the STS/IAM endpoint used; nothing regional is created there.
provider "aws" {
  alias  = "workload_a"
  region = var.region

  assume_role {
    role_arn = var.workload_a_deploy_role_arn
  }
}

provider "aws" {
  alias  = "workload_b"
  region = var.region

  assume_role {
    role_arn = var.workload_b_deploy_role_arn
  }
}

locals {
  workload_accounts = {
    workload_a = split(":", var.workload_a_deploy_role_arn)[4]
    workload_b = split(":", var.workload_b_deploy_role_arn)[4]
  }
  partition = split(":", var.workload_a_deploy_role_arn)[1]

  # The workload roles' ARNs, built from their names rather than taken from module.workload_*_role: the roles
  # trust the hub functions' roles, so they are created after them, and the hub modules need these ARNs first.
  workload_role_arns = {
    for module_key in ["ami-backup", "ebs-snapshot"] : module_key => [
      for account in values(local.workload_accounts) :
      "arn:${local.partition}:iam::${account}:role/${var.role_name_prefix}-${module_key}"
    ]
  }

  # Each workload role grants exactly one hub module's target-role policy, trusted by that module's functions
  # only: ebs-snapshot's functions cannot assume the role that may deregister AMIs, and the other way round.
  grants = {
    ami-backup = {
      policy_json    = module.ami_backup.target_role_policy_json
      principal_arns = [module.ami_backup.planner_role_arn, module.ami_backup.worker_role_arn]
    }
    ebs-snapshot = {
      policy_json    = module.ebs_snapshot.target_role_policy_json
      principal_arns = [module.ebs_snapshot.planner_role_arn, module.ebs_snapshot.worker_role_arn]
    }
  }

  tags = {
    Example = "landing-zone"
  }
}

# Unencrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# aws/sns key; use a customer managed key whose policy allows cloudwatch.amazonaws.com instead.
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic under the AWS managed aws/sns key; a customer managed key is the user's own (see the comment above).
  name = "${var.name}-alarms"
}

################################################################################
# Hub: the modules, run from the operations account against the workload accounts
################################################################################

module "ami_backup" {
  source = "../../modules/ami-backup"

  name                = "${var.name}-ami-backup"
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "daily" }
  generations         = 3

  regions                 = var.regions
  target_role_arns        = local.workload_role_arns["ami-backup"]
  target_role_external_id = var.external_id

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

module "ebs_snapshot" {
  source = "../../modules/ebs-snapshot"

  name                = "${var.name}-ebs-snapshot"
  schedule_expression = "cron(0 2 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  volume_tags         = { Snapshot = "daily" }
  generations         = 7

  regions                 = var.regions
  target_role_arns        = local.workload_role_arns["ebs-snapshot"]
  target_role_external_id = var.external_id

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

################################################################################
# Workload accounts: one role per hub module, created in each account
################################################################################

module "workload_a_role" {
  source = "../../modules/target-account-role"

  providers = {
    aws = aws.workload_a
  }

  grants           = local.grants
  role_name_prefix = var.role_name_prefix
  external_id      = var.external_id
  organization_id  = var.organization_id

  tags = local.tags
}

module "workload_b_role" {
  source = "../../modules/target-account-role"

  providers = {
    aws = aws.workload_b
  }

  grants           = local.grants
  role_name_prefix = var.role_name_prefix
  external_id      = var.external_id
  organization_id  = var.organization_id

  tags = local.tags
}
