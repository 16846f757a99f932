"""The REST API under /api/v1: staff manage campaigns, data, generations, checkpoints and
exports; labelers see only their own assignments."""
