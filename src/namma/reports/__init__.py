"""Portfolio reports (JSON, CSV, XLSX) and the role dashboards. See docs/reports.md."""
