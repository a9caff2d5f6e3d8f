# The hub (operations) account: the provider Terraform runs with. It holds every function, queue, ledger and
# schedule, and covers several regions through the modules' `regions` input: one deployment per module, not one
# per region.
provider "aws" {
  region = var.region
}

# The workload accounts' spoke pieces need a provider that acts in that account: IAM roles (global to an account,
# so one provider per account whatever the Region) and one event-forwarding rule per account AND Region (events
# are emitted in the resource's own Region). Terraform 1.x has no for_each on providers, hence one block per
# account and Region, written out: two accounts x two Regions.
provider "aws" {
  alias  = "workload_a"
  region = var.region

  assume_role {
    role_arn = var.workload_a_deploy_role_arn
  }
}

provider "aws" {
  alias  = "workload_a_second_region"
  region = var.second_region

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

provider "aws" {
  alias  = "workload_b_second_region"
  region = var.second_region

  assume_role {
    role_arn = var.workload_b_deploy_role_arn
  }
}

data "aws_caller_identity" "hub" {}

data "aws_partition" "hub" {}

locals {
  # Only the events the hub's two modules complete work on: forwarded events are billed by EventBridge, and instance
  # state changes (which instance-scheduler would need) are most of an estate's volume.
  forwarded_detail_types = ["EC2 AMI State Change", "EBS Snapshot Notification", "EBS Multi-Volume Snapshots Completion Status"]

  partition = data.aws_partition.hub.partition

  # The Regions backed up in every account of the OUs (the hub modules' regions). Not ["all-enabled"]: the events
  # of a Region reach the hub only through a forwarding rule deployed there, one provider per account and Region.
  regions = [var.region, var.second_region]

  # Every workload account's roles are "<role_name_prefix>-<module>" (modules/target-account-role names them
  # "${role_name_prefix}-${key}"): the hub modules reach each account of the OUs through that one name.
  target_role_names = {
    for module_key in ["ami-backup", "ebs-snapshot"] : module_key => "${var.role_name_prefix}-${module_key}"
  }

  # The hub's default bus, where the spokes forward their state events and the hub modules' rules pick them up.
  hub_event_bus_arn = "arn:${local.partition}:events:${var.region}:${data.aws_caller_identity.hub.account_id}:event-bus/default"

  # Each workload role grants exactly one hub module's target-role policy, trusted by that module's functions
  # only: ebs-snapshot's functions cannot assume the role that may deregister AMIs, and the other way round. The
  # planner and the worker both assume it: the worker resolves each account x Region scope item through it.
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
# Hub: the modules, run from the operations account against the accounts of the OUs
################################################################################

module "ami_backup" {
  source = "../../modules/ami-backup"

  name                = "${var.name}-ami-backup"
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "daily" }
  generations         = 3

  regions                     = local.regions
  target_organizational_units = var.organizational_units
  target_organization_id      = var.organization_id
  target_role_name            = local.target_role_names["ami-backup"]
  target_role_external_id     = var.external_id
  organizations_role_arn      = var.organizations_role_arn

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

  regions                     = local.regions
  target_organizational_units = var.organizational_units
  target_organization_id      = var.organization_id
  target_role_name            = local.target_role_names["ebs-snapshot"]
  target_role_external_id     = var.external_id
  organizations_role_arn      = var.organizations_role_arn

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

# The hub's default bus accepts PutEvents from every account of the organization, and from no other: the spoke
# rules below put their accounts' state events there. A statement of its own (PutPermission with a StatementId),
# not aws_cloudwatch_event_bus_policy, which would rewrite the whole policy of the default bus. Granting an
# organization obliges the spoke rules to deliver through a role (their RoleArn), which modules/event-forwarding
# creates ("If you grant permissions using an organization, then accounts in that organization must specify a
# RoleArn with proper permissions when they use PutTarget",
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html).
resource "aws_cloudwatch_event_permission" "organization" {
  principal      = "*"
  statement_id   = "${var.name}-organization-events"
  action         = "events:PutEvents"
  event_bus_name = "default"

  condition {
    type  = "StringEquals"
    key   = "aws:PrincipalOrgID"
    value = var.organization_id
  }
}

################################################################################
# Workload accounts: one role per hub module, and the event forwarding in each Region
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

module "workload_a_forwarding" {
  source = "../../modules/event-forwarding"

  providers = {
    aws = aws.workload_a
  }

  hub_event_bus_arn = local.hub_event_bus_arn
  detail_types      = local.forwarded_detail_types
  tags              = local.tags
}

module "workload_a_forwarding_second_region" {
  source = "../../modules/event-forwarding"

  providers = {
    aws = aws.workload_a_second_region
  }

  hub_event_bus_arn = local.hub_event_bus_arn
  detail_types      = local.forwarded_detail_types
  tags              = local.tags
}

module "workload_b_forwarding" {
  source = "../../modules/event-forwarding"

  providers = {
    aws = aws.workload_b
  }

  hub_event_bus_arn = local.hub_event_bus_arn
  detail_types      = local.forwarded_detail_types
  tags              = local.tags
}

module "workload_b_forwarding_second_region" {
  source = "../../modules/event-forwarding"

  providers = {
    aws = aws.workload_b_second_region
  }

  hub_event_bus_arn = local.hub_event_bus_arn
  detail_types      = local.forwarded_detail_types
  tags              = local.tags
}
