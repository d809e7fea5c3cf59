"""The review workflow: QA reviewers confirm or correct the model's
labels, agents dispute scores, every change is audited, agreement is measured
and the corrected labels become training data.

Entry points: ``api.include_review(app, settings)`` (web page + JSON API),
``cli.register(subparsers)`` (``kefuqa review …``) and
``export.reviewed_training_conversations`` (``kefuqa train --from-reviews``).
"""
