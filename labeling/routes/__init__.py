"""The review app's routes, one module per area: the page, the session, review items,
disputes, the leads' views, users and teams, and exchange with other tools."""
