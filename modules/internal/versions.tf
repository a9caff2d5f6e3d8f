# The archive provider (used only by package.tf) is deliberately not listed here: Terraform allows a
# single required_providers block per module, and keeping hashicorp/archive out of it lets the tests
# swap package.tf for a stand-in and drop that provider entirely. See package.tf.
terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}
