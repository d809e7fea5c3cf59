"""Alembic environment for the review store.

Run programmatically (``kefuqa.labeling.db.migrate``): the caller passes an open
connection in ``config.attributes["connection"]``, so no alembic.ini is needed
and it works from an installed wheel. ``alembic -x url=…`` from this folder
works too, for developers writing a new revision.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from kefuqa.labeling.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database: alembic -x url=sqlite:///reviews.db upgrade head")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()
