# Packaging of lambda_src, and nothing else: every other file reads local.package_file and
# local.package_hash only, so this file can be replaced by a stand-in built from a pre-made zip.
#
# hashicorp/archive is an implied provider here (Terraform resolves the "archive_" prefix to
# hashicorp/archive). It cannot be declared with a version: Terraform accepts only one
# required_providers block per module and versions.tf holds it; declaring archive there would make
# the module depend on it even when this file is swapped out.

locals {
  source_dir = coalesce(var.source_dir, "${path.module}/../../lambda_src")
  # Each module's functions ship the shared core and their own package only (no package imports another
  # module's): a smaller zip, and a change to one module does not redeploy the others.
  own_package = "ops_automation/${replace(var.service_name, "-", "_")}"
  other_packages = [
    for init in fileset(local.source_dir, "ops_automation/*/__init__.py") : dirname(init)
    if !contains(["ops_automation/core", local.own_package], dirname(init))
  ]
  # The core modules a service's code never imports, directly or through another core module, stay out of its zip
  # too (the restore machinery alone is a fifth of a zip). tests/python/test_packaging.py derives these lists from
  # the code's imports and fails when one would leave out a module the code needs, or misses one it could leave out.
  core_not_imported = {
    "ami-backup"         = ["claims"]
    "deregister-cleanup" = ["claims", "completion", "planner", "restore"]
    "ebs-snapshot"       = []
    "instance-scheduler" = ["image_links", "purge", "restore", "snapshots"]
    "snapshot-copy"      = ["restore"]
    "ssm-runcommand"     = ["image_links", "planner", "purge", "restore", "snapshots"]
  }
  excluded_core = [for module in lookup(local.core_not_imported, var.service_name, []) : "ops_automation/core/${module}.py"]
}

data "archive_file" "this" {
  type        = "zip"
  source_dir  = local.source_dir
  output_path = "${path.root}/.terraform/ops-automation/${var.name}.zip"
  excludes    = concat(["**/__pycache__/**", "**/*.pyc"], [for package in local.other_packages : "${package}/**"], local.excluded_core)
}

locals {
  package_file = data.archive_file.this.output_path
  package_hash = data.archive_file.this.output_base64sha256
}
