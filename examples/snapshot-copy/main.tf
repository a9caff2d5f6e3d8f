# Tokyo (the source: the default provider) -> Osaka (a destination: the aws.osaka provider).
provider "aws" {
  region = var.region
}

provider "aws" {
  alias  = "osaka"
  region = var.destination_region
}

# Unencrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# aws/sns key; use a customer managed key whose policy allows cloudwatch.amazonaws.com instead.
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic under the AWS managed aws/sns key; a customer managed key is the user's own (see the comment above).
  name = "${var.name}-alarms"
}

# The source: daily snapshots of the volumes tagged Snapshot = daily, made by an ebs-snapshot policy.
module "ebs_snapshot" {
  source = "../../modules/ebs-snapshot"

  name                = var.source_policy_name
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  volume_tags         = { Snapshot = "daily" }
  generations         = 3

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = {
    Example = "snapshot-copy"
  }
}

# The key of the copies in Osaka (KMS keys are regional). Its default key policy (the account may use it)
# lets the worker's IAM permissions apply.
resource "aws_kms_key" "osaka_copies" {
  provider = aws.osaka

  description         = "Encrypts the ${var.name} snapshot copies in ${var.destination_region}."
  enable_key_rotation = true
}

module "snapshot_copy" {
  source = "../../modules/snapshot-copy"

  name            = var.name
  source_policies = [var.source_policy_name]
  destinations = {
    (var.destination_region) = {
      kms_key_arn = aws_kms_key.osaka_copies.arn
    }
  }
  generations = 7

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = {
    Example = "snapshot-copy"
  }
}

# One block per destination region, with that region's provider: it forwards the copy results of Osaka
# to the work queue in Tokyo.
module "snapshot_copy_osaka" {
  source = "../../modules/snapshot-copy/modules/destination"

  providers = {
    aws = aws.osaka
  }

  name                     = var.name
  event_bus_arn            = module.snapshot_copy.event_bus_arn
  event_forwarder_role_arn = module.snapshot_copy.event_forwarder_role_arn
  copy_images              = module.snapshot_copy.copy_images

  tags = {
    Example = "snapshot-copy"
  }
}
