provider "aws" {
  region = var.region
}

# Unencrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# aws/sns key; use a customer managed key whose policy allows cloudwatch.amazonaws.com instead.
resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
}

module "ami_backup" {
  source = "../../modules/ami-backup"

  name                = var.name
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "daily" }
  generations         = 3

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  # Weekly restore tests of every backed-up source, in the isolated subnet below.
  restore_test = {
    schedule_expression = "cron(0 3 ? * SUN *)"
    schedule_timezone   = "Asia/Tokyo"
    subnet_id           = aws_subnet.restore_test.id
    security_group_id   = aws_security_group.restore_test.id
  }

  tags = {
    Example = "ami-backup"
  }
}

################################################################################
# Restore tests: an isolated network for the restored copies (README, "Restore tests")
#
# Every Sunday at 03:00 Asia/Tokyo the restore tests boots the newest AMI of each instance here,
# checks it and deletes it. A restored copy of a production machine starts its applications: this VPC has no
# internet gateway, NAT, peering or endpoint, so nothing in it can reach production or the internet.
################################################################################

resource "aws_vpc" "restore_test" {
  #checkov:skip=CKV2_AWS_11:Nothing can leave this VPC (no gateway, no endpoint, security groups without rules); flow logs would record only refused packets of short-lived test copies and add a log group to pay for.
  cidr_block           = "10.213.0.0/24"
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name    = "${var.name}-restore-test"
    Example = "ami-backup"
  }
}

# The VPC's default security group, emptied: Terraform removes every rule of a default security group it adopts and
# adds none that is not written here (hashicorp/aws aws_default_security_group), so a launch that names no group
# cannot fall back to an open one.
resource "aws_default_security_group" "restore_test" {
  vpc_id = aws_vpc.restore_test.id

  tags = {
    Name    = "${var.name}-restore-test-default"
    Example = "ami-backup"
  }
}

resource "aws_subnet" "restore_test" {
  vpc_id                  = aws_vpc.restore_test.id
  cidr_block              = "10.213.0.0/26"
  map_public_ip_on_launch = false

  tags = {
    Name    = "${var.name}-restore-test"
    Example = "ami-backup"
  }
}

# No ingress and no egress rule: Terraform removes the allow-all egress rule AWS adds to a new security group
# (hashicorp/aws aws_security_group, "NOTE on Egress rules"). The worker refuses a group with ingress rules.
resource "aws_security_group" "restore_test" {
  #checkov:skip=CKV2_AWS_5:Attached at run time only, to the restored copies the worker launches (module.ami_backup restore_test.security_group_id).
  name        = "${var.name}-restore-test"
  description = "Restored copies of backups: no traffic in or out."
  vpc_id      = aws_vpc.restore_test.id

  tags = {
    Name    = "${var.name}-restore-test"
    Example = "ami-backup"
  }
}
