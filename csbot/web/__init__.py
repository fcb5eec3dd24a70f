"""Web: routes, handlers and middlewares (HTTP only; the work happens in the stages)."""
