"""After-sales: cases, restock notices and review replies."""
