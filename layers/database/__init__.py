"""How the domain talks to PostgreSQL beyond the ORM: where reads go (primary or replica), a
commit that may be lost on the wire, background jobs kept as rows, answers remembered briefly."""
