"""Reports rendered from the registry's plans (self-contained HTML with inline SVG, and CSV)."""
