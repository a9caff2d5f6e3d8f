"""The operator CLI (`ops-automation`): looks at a deployed policy with the functions' own code. Never shipped in
a function's zip (modules/internal/package.tf zips core and the module's own package only), and no handler
imports it."""
