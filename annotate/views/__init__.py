"""Server-rendered pages: the labeler app (labeling) and the lead dashboard (dashboard)."""
