"""The service's routes, one module per area: scoring and probes. Grading and review
come from their rooms (``kefuqa.grading.api``, ``kefuqa.labeling.api``)."""
