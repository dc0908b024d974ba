"""``preflight``: check a deployment of this pattern against the rules it depends on.

One model of a deployment's effective settings (:mod:`.model`), filled from a
CloudFormation/SAM template or CDK synth output (:mod:`.cloudformation`), Terraform HCL
(:mod:`.terraform`) or the live APIs (:mod:`.live`); the rules (:mod:`.rules`) read only
the model, so each rule is written once for every source.
"""
