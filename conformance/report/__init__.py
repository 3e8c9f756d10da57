"""Reports: the Markdown summary, the HTML report and its templates, findings, the cross-backend
comparison, run-to-run diffs and timing."""
