"""The browser admin console (server-rendered, served by the edge server at /admin)."""
