terraform {
  # 1.6: unknown values refined as not null (see local.kms_key_arn).
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}
