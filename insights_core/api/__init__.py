"""The REST API and monitoring endpoints, served by the dashboard's own Streamlit server.

`app.py` hands `routes.api_routes()` to `st.App`, so pages, API, `/metrics` and `/healthz` share
one process and one port. Modules: `routes` (Starlette handlers, errors as JSON), `auth` (bearer
tokens and roles), `params` (input validation), `views` (the pages' queries shaped as the original README's
JSON), `serializers`, `reads` (snapshot cursors), `metrics` (Prometheus), `openapi`.
"""
