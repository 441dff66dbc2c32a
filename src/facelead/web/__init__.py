"""The examiners' web application: server-rendered pages over the same services."""
