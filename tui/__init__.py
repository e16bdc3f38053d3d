"""The Textual app and the `aurora` command line."""

import os

# Aurora uses no pydantic plugins; without this, pydantic scans every installed package's entry points
# when the first model is built, about 30 ms of every start (measured with `python -X importtime`).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
