"""PostgreSQL migrations of the node, `NNNN_name.sql`, applied like the SQLite ones."""
