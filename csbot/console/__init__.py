"""Console: the agents' and supervisors' web UI, its login, live queue, KPIs and learning from feedback."""
